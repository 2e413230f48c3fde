"""Per-sample epoch kernels specialised on one network's shape.

:func:`fastbp.kernels.online.train_epochs_online` reads the layer sizes and
offsets from the plan at run time. For a network of a few dozen weights those
loop bounds and look-ups cost as much as the arithmetic. This module writes
the same loop as Python source with every size, offset, activation, the loss
and the optimizer baked in as constants, so LLVM unrolls the small loops and
keeps values in registers. It also compiles as ONE function (the generic path
compiles a dozen helpers), which cuts the cold first-call time.

The module runs from the text generated here (:func:`fastbp._cache.load_generated`);
a copy named by a hash of that text goes to fastbp's private, versioned cache
folder, where Numba caches its machine code: a second process that trains the
same shape loads the machine code instead of compiling.
Set ``FASTBP_SPECIALIZE=0`` to use the generic kernel instead.

The arithmetic is the generic kernel's, in the same order, so both give the
same bits (the tests check it), and the NumPy reference stays the truth.
"""
import hashlib

from .. import _cache, _config
from .. import plan as P
from .._config import RELU, SIGMOID, TANH

ENABLED = _config.SPECIALIZE
_VERSION = 5            # bump when the generated text changes meaning
_loaded = {}


def supports(plan):
    """Dense, activation and Dropout rows only (what a batch of one can train)."""
    return all(k in (P.DENSE, P.ACT, P.DROPOUT) for k in plan[:, P.KIND])


class _Src:
    def __init__(self):
        self.lines = []

    def __call__(self, indent, text):
        self.lines.append("    " * indent + text)


def _emit_act(emit, ind, act, src, dst):
    """dst = act(src): the batch kernels' scalar helpers (fastbp.kernels.activations)."""
    if act == SIGMOID:
        emit(ind, f"{dst} = _sigmoid({src}, T(1))")
    elif act == RELU:
        emit(ind, f"{dst} = _relu({src}, T(0))")
    elif act == TANH:
        emit(ind, f"{dst} = np.tanh({src})")
    else:
        emit(ind, f"{dst} = {src}")


def _act_grad(act, g, y):
    """The expression of d loss / d x from ``g`` and the output ``y`` (None: identity)."""
    if act == SIGMOID:
        return f"_sigmoid_grad({g}, {y}, T(1))"
    if act == RELU:
        return f"_relu_grad({g}, {y}, T(0))"
    if act == TANH:
        return f"_tanh_grad({g}, {y}, T(1))"
    return None


def _inp(r, plan, j):
    """Expression for element j of row r's input."""
    return f"X[i, {j}]" if r == 0 else f"ws[{int(plan[r - 1, P.OUT])} + {j}]"


def _emit_forward(emit, ind, plan, training):
    """Forward pass of sample ``X[i]``: row r's output into ws[plan[r, OUT]:]."""
    for r in range(plan.shape[0]):
        kind, n_in, n_out = int(plan[r, P.KIND]), int(plan[r, P.N_IN]), int(plan[r, P.N_OUT])
        o, act = int(plan[r, P.OUT]), int(plan[r, P.ACTV])
        if kind == P.DENSE:
            pa, pb = int(plan[r, P.P_A]), int(plan[r, P.P_B])
            # out[c] = sum over j (ascending) of x[j] W[j, c]; c innermost walks W's rows
            emit(ind, f"for c in range({n_out}):")
            emit(ind + 1, f"ws[{o} + c] = T(0)")
            emit(ind, f"for j in range({n_in}):")
            emit(ind + 1, f"xv = {_inp(r, plan, 'j')}")
            emit(ind + 1, f"for c in range({n_out}):")
            emit(ind + 2, f"ws[{o} + c] += xv * params[{pa} + j * {n_out} + c]")
            emit(ind, f"for c in range({n_out}):")
            if pb >= 0:
                emit(ind + 1, f"acc = ws[{o} + c] + params[{pb} + c]")
            else:
                emit(ind + 1, f"acc = ws[{o} + c]")
            _emit_act(emit, ind + 1, act, "acc", f"ws[{o} + c]")
        elif kind == P.ACT:
            emit(ind, f"for c in range({n_out}):")
            _emit_act(emit, ind + 1, act, _inp(r, plan, "c"), f"ws[{o} + c]")
        elif training:
            a = int(plan[r, P.AUX])
            emit(ind, f"p = pf[{r}, {P.F_A}]")
            emit(ind, "if p > 0.0:")
            emit(ind + 1, f"base = stream_base(plan[{r}, {P.KEY}], n_drop)")
            emit(ind + 1, "scale = T(1.0 / (1.0 - p))")
            emit(ind + 1, f"for c in range({n_out}):")
            emit(ind + 2, "keep = scale if uniform53_at(base, c) >= p else T(0)")
            emit(ind + 2, f"ws[{a} + c] = keep")
            emit(ind + 2, f"ws[{o} + c] = {_inp(r, plan, 'c')} * keep")
            emit(ind, "else:")
            emit(ind + 1, f"for c in range({n_out}):")
            emit(ind + 2, f"ws[{o} + c] = {_inp(r, plan, 'c')}")
        else:
            emit(ind, f"for c in range({n_out}):")
            emit(ind + 1, f"ws[{o} + c] = {_inp(r, plan, 'c')}")


def _emit_count_correct(emit, k, o_last, loss_code):
    """``correct_one``: :func:`fastbp.kernels.network.count_correct` for sample i."""
    emit(0, "@njit")
    emit(0, "def correct_one(ws, Yf, Yi, i, threshold):")
    if k == 1:
        emit(1, f"return (ws[{o_last}] > threshold) == (Yf[i, 0] > 0.5)")
        return
    emit(1, "best = 0")
    emit(1, f"for c in range(1, {k}):")
    emit(2, f"if ws[{o_last} + c] > ws[{o_last} + best]:")
    emit(3, "best = c")
    if loss_code == P.SOFTMAX_CE:
        emit(1, "return best == Yi[i]")
    else:
        emit(1, "label = 0")
        emit(1, f"for c in range(1, {k}):")
        emit(2, "if Yf[i, c] > Yf[i, label]:")
        emit(3, "label = c")
        emit(1, "return best == label")


def _emit_unpack(emit):
    """The records' fields the kernel reads, as locals (the generic kernel's names)."""
    emit(1, "plan, pf, lf, threshold, of = net.plan, net.pf, net.lf, net.threshold, opt.of")
    emit(1, "params, grads, opt_a, opt_b, counters = t.params, t.grads, t.opt_a, t.opt_b, "
            "t.counters")
    emit(1, "X, Yf, Yi, ws, ga = data.X, data.Yf, data.Yi, bufs.ws, bufs.ga")
    emit(1, "order, lrs, stop_flag, stop_correct = run.order, run.lrs, run.stop_flag, "
            "run.stop_correct")
    emit(1, "losses, corrects = run.losses, run.corrects")


def _emit_settings(emit, loss_code, opt_code, k):
    """The loss's and the optimizer's settings, read once per call."""
    emit(1, "n = X.shape[0]")
    emit(1, "half = ga.shape[0] // 2")
    emit(1, f"sum_red = {'lf[%d] != 0.0' % P.L_SUM if loss_code == P.MSE else 'False'}")
    if loss_code == P.MSE:
        emit(1, f"f = 0.5 if lf[{P.L_HALF}] != 0.0 else 1.0")
        emit(1, f"D = 1 if lf[{P.L_SUM}] != 0.0 else {k}")
        emit(1, "coef = T(2.0 * f / D)")
    emit(1, f"wd = T(of[{P.O_WD}])")
    emit(1, f"use_wd = of[{P.O_WD}] != 0.0")
    if opt_code == P.ADAM:
        emit(1, f"b1 = T(of[{P.O_BETA1}])")
        emit(1, f"b2 = T(of[{P.O_BETA2}])")
        emit(1, f"c1 = T(1.0 - of[{P.O_BETA1}])")
        emit(1, f"c2 = T(1.0 - of[{P.O_BETA2}])")
        emit(1, f"eps = T(of[{P.O_EPS}])")
    else:
        emit(1, f"mom = T(of[{P.O_MOMENTUM}])")
        emit(1, f"use_mom = of[{P.O_MOMENTUM}] != 0.0")
        emit(1, f"nesterov = of[{P.O_NESTEROV}] != 0.0")
        # plain SGD: each weight steps where its gradient is formed (train_epochs' fold)
        emit(1, "fold = not use_mom and not use_wd")


def _emit_loss_and_grad(emit, loss_code, k, o_last):
    """:func:`fastbp.kernels.network.loss_and_grad` for sample i: loss, gradient in ga[0:k]."""
    if loss_code == P.MSE:
        emit(3, "acc = 0.0")
        emit(3, f"for c in range({k}):")
        emit(4, f"d = ws[{o_last} + c] - Yf[i, c]")
        emit(4, "ga[c] = coef * d")
        emit(4, "acc += d * d")
        emit(3, "loss = f * acc / D")
    elif loss_code == P.BCE:
        emit(3, "acc = 0.0")
        emit(3, f"for c in range({k}):")
        emit(4, f"term, sig = _bce_one(ws[{o_last} + c], Yf[i, c], T(1), T(0))")
        emit(4, "acc += term")
        emit(4, f"ga[c] = (sig - Yf[i, c]) / T({k})")
        emit(3, f"loss = acc / {k}")
    else:
        emit(3, f"m = ws[{o_last}]")
        emit(3, f"for c in range(1, {k}):")
        emit(4, f"if ws[{o_last} + c] > m:")
        emit(5, f"m = ws[{o_last} + c]")
        emit(3, "ssum = T(0)")
        emit(3, f"for c in range({k}):")
        emit(4, f"ex = np.exp(ws[{o_last} + c] - m)")
        emit(4, f"ga[{k} + c] = ex")
        emit(4, "ssum += ex")
        emit(3, "lab = Yi[i]")
        emit(3, f"for c in range({k}):")
        emit(4, f"pr = ga[{k} + c] / ssum")
        emit(4, "ga[c] = pr - T(1) if c == lab else pr")
        emit(3, f"loss = (m + np.log(ssum)) - ws[{o_last} + lab]")


def _emit_backward(emit, plan, opt_code):
    """:func:`fastbp.kernels.network.backward` for sample i; the running gradient
    alternates between ga[0:half] and ga[half:2*half]."""
    cur, nxt = "0", "half"
    for r in range(plan.shape[0] - 1, -1, -1):
        kind, n_out = int(plan[r, P.KIND]), int(plan[r, P.N_OUT])
        o, act = int(plan[r, P.OUT]), int(plan[r, P.ACTV])
        if kind == P.DENSE:
            _emit_dense_backward(emit, plan, r, cur, nxt, opt_code != P.ADAM)
            cur, nxt = nxt, cur
        elif kind == P.ACT:
            d = _act_grad(act, f"ga[{cur} + c]", f"ws[{o} + c]")
            if d is not None:
                emit(3, f"for c in range({n_out}):")
                emit(4, f"ga[{cur} + c] = {d}")
        else:
            a = int(plan[r, P.AUX])
            emit(3, f"if pf[{r}, {P.F_A}] > 0.0:")
            emit(4, f"for c in range({n_out}):")
            emit(5, f"ga[{cur} + c] = ga[{cur} + c] * ws[{a} + c]")


def _emit_dense_backward(emit, plan, r, cur, nxt, may_fold):
    """:func:`fastbp.kernels.dense.dense_backward` (after the activation's) for row r;
    with ``fold`` (plain SGD) :func:`fastbp.kernels.dense.dense_backward_sgd`: the
    step ``p -= lr * g`` taken where each gradient is formed, after the input
    gradient has used the old weights."""
    n_in, n_out = int(plan[r, P.N_IN]), int(plan[r, P.N_OUT])
    o, act = int(plan[r, P.OUT]), int(plan[r, P.ACTV])
    pa, pb = int(plan[r, P.P_A]), int(plan[r, P.P_B])
    d = _act_grad(act, f"ga[{cur} + c]", f"ws[{o} + c]")
    if d is not None:
        emit(3, f"for c in range({n_out}):")
        emit(4, f"ga[{cur} + c] = {d}")
    if r > 0:
        emit(3, f"for j in range({n_in}):")
        emit(4, "acc = T(0)")
        emit(4, f"for c in range({n_out}):")
        emit(5, f"acc += ga[{cur} + c] * params[{pa} + j * {n_out} + c]")
        emit(4, f"ga[{nxt} + j] = acc")
    ind = 3
    if may_fold:
        emit(3, "if fold:")
        emit(4, f"for j in range({n_in}):")
        emit(5, f"xv = {_inp(r, plan, 'j')}")
        emit(5, f"for c in range({n_out}):")
        emit(6, f"params[{pa} + j * {n_out} + c] -= lrf * (xv * ga[{cur} + c])")
        if pb >= 0:
            emit(4, f"for c in range({n_out}):")
            emit(5, f"params[{pb} + c] -= lrf * ga[{cur} + c]")
        emit(3, "else:")
        ind = 4
    emit(ind, f"for j in range({n_in}):")
    emit(ind + 1, f"xv = {_inp(r, plan, 'j')}")
    emit(ind + 1, f"for c in range({n_out}):")
    emit(ind + 2, f"grads[{pa} + j * {n_out} + c] = xv * ga[{cur} + c]")
    if pb >= 0:
        emit(ind, f"for c in range({n_out}):")
        emit(ind + 1, f"grads[{pb} + c] = ga[{cur} + c]")


def _emit_apply_update(emit, opt_code):
    """:func:`fastbp.kernels.network._apply_update`: the optimizer step over the flat buffer,
    term for term as :func:`fastbp.kernels.optim.adam_update` / ``sgd_update``."""
    emit(3, "n_opt += 1")
    if opt_code == P.ADAM:
        emit(3, "step = n_opt")
        emit(3, f"step_size = T(lrs[e] / (1.0 - math.pow(of[{P.O_BETA1}], float(step))))")
        emit(3, f"sq2 = T(math.sqrt(1.0 - math.pow(of[{P.O_BETA2}], float(step))))")
        emit(3, "for j in range(params.shape[0]):")
        emit(4, "gj = grads[j]")
        emit(4, "if use_wd:")
        emit(5, "gj = gj + wd * params[j]")
        emit(4, "mj = b1 * opt_a[j] + c1 * gj")
        emit(4, "vj = b2 * opt_b[j] + (c2 * gj) * gj")
        emit(4, "opt_a[j] = mj")
        emit(4, "opt_b[j] = vj")
        emit(4, "params[j] -= step_size * mj / (np.sqrt(vj) / sq2 + eps)")
    else:
        emit(3, "if not fold:        # (plain SGD stepped inside the backward pass)")
        emit(4, "for j in range(params.shape[0]):")
        emit(5, "gj = grads[j]")
        emit(5, "if use_wd:")
        emit(6, "gj = gj + wd * params[j]")
        emit(5, "if use_mom:")
        emit(6, "vel = mom * opt_a[j] + gj")
        emit(6, "opt_a[j] = vel")
        emit(6, "gj = gj + mom * vel if nesterov else vel")
        emit(5, "params[j] -= lrf * gj")


def _emit_return(emit, ind, value):
    """Store the step counters back, then return ``value``."""
    emit(ind, f"counters[{P.C_OPT}] = n_opt")
    emit(ind, f"counters[{P.C_DROPOUT}] = n_drop")
    emit(ind, f"return {value}")


def _emit_evaluate(emit, plan):
    """The eval-mode pass after an epoch (:func:`fastbp.kernels.network.evaluate`'s count)."""
    emit(2, "if stop_correct > 0:")
    emit(3, "right = 0")
    emit(3, "for i in range(n):")
    _emit_forward(emit, 4, plan, training=False)
    emit(4, "pass")
    emit(4, "if correct_one(ws, Yf, Yi, i, threshold):")
    emit(5, "right += 1")
    emit(3, "if right >= stop_correct:")
    _emit_return(emit, 4, f"e + 1, {P.STATUS_ACCURACY}")


def source(plan, loss_code, opt_code, dtype_name):
    """The Python source of a ``train_epochs_online`` for this plan, loss and optimizer.

    It follows :func:`fastbp.kernels.network.train_epochs` step by step, each
    step emitted by the function named after it, with every size and offset
    written in as a constant.
    """
    emit = _Src()
    R = plan.shape[0]
    k = int(plan[R - 1, P.N_OUT])
    o_last = int(plan[R - 1, P.OUT])
    emit(0, '"""Generated by fastbp.kernels.specialize; see there. Do not edit."""')
    emit(0, "import math")
    emit(0, "import numpy as np")
    emit(0, "from fastbp._config import njit")
    emit(0, "from fastbp.kernels.activations import (_relu, _relu_grad, _sigmoid, "
            "_sigmoid_grad, _tanh_grad)")
    emit(0, "from fastbp.kernels.losses import _bce_one")
    emit(0, "from fastbp.kernels.rng import stream_base, uniform53_at")
    emit(0, f"T = np.{dtype_name}")
    emit(0, "")
    _emit_count_correct(emit, k, o_last, loss_code)
    emit(0, "")
    emit(0, "@njit")
    emit(0, "def train_epochs_online(net, t, opt, data, bufs, run):")
    _emit_unpack(emit)
    _emit_settings(emit, loss_code, opt_code, k)
    # the step counters live in locals during the call (stores into ``counters`` in the
    # sample loop would have to be ordered against every parameter access)
    emit(1, f"n_opt = counters[{P.C_OPT}]")
    emit(1, f"n_drop = counters[{P.C_DROPOUT}]")
    emit(1, "for e in range(lrs.shape[0]):")
    emit(2, "row = e % order.shape[0]")
    emit(2, "lrf = T(lrs[e])")
    emit(2, "total = 0.0")
    emit(2, "correct = 0")
    emit(2, "for s in range(n):")
    emit(3, "i = order[row, s]")
    _emit_forward(emit, 3, plan, training=True)
    _emit_loss_and_grad(emit, loss_code, k, o_last)
    emit(3, "if not math.isfinite(loss):")
    emit(4, "losses[e] = loss")
    emit(4, "corrects[e] = correct")
    _emit_return(emit, 4, f"e, {P.STATUS_DIVERGED}")
    emit(3, "total += loss")
    emit(3, "if correct_one(ws, Yf, Yi, i, threshold):")
    emit(4, "correct += 1")
    _emit_backward(emit, plan, opt_code)
    _emit_apply_update(emit, opt_code)
    emit(3, "n_drop += 1")
    emit(3, "if stop_flag[0] != 0:")
    emit(4, "losses[e] = total if sum_red else total / (s + 1)")
    emit(4, "corrects[e] = correct")
    _emit_return(emit, 4, f"e, {P.STATUS_INTERRUPTED}")
    emit(2, "losses[e] = total if sum_red else total / n")
    emit(2, "corrects[e] = correct")
    _emit_evaluate(emit, plan)
    _emit_return(emit, 1, f"lrs.shape[0], {P.STATUS_DONE}")
    return "\n".join(emit.lines) + "\n"


def kernel(plan, loss_code, opt_code, dtype_name):
    """The specialised ``train_epochs_online`` for this network, or None if unavailable."""
    if not ENABLED or not supports(plan):
        return None
    key = (plan.tobytes(), plan.shape, loss_code, opt_code, dtype_name)
    fn = _loaded.get(key)
    if fn is not None:
        return fn
    text = source(plan, loss_code, opt_code, dtype_name)
    digest = hashlib.sha256(f"{_VERSION}\n{text}".encode()).hexdigest()[:20]
    fn = _loaded.get(digest)
    if fn is not None:
        return fn
    module = _cache.load_generated(f"fastbp_online_{digest}", text)
    fn = module.train_epochs_online
    _loaded[digest] = _loaded[key] = fn
    return fn
