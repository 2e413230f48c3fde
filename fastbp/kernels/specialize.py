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
_VERSION = 9            # bump when the generated text changes meaning
_loaded = {}            # generated modules by key and by digest of their text
EVAL_MAX_MACS = 4096    # predict/evaluate a row at a time up to this many multiply-adds per row
_PREDICT, _EVALUATE, _GRADS = 0, 1, 2       # what the generated ``rows`` does with each row


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
    """``correct_one``: :func:`fastbp.kernels.network.count_correct` for sample i
    (inlined where it is called: no function of its own to compile)."""
    emit(0, '@njit(inline="always")')
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


def _emit_loss_settings(emit, loss_code, k):
    """The loss's settings, read once per call."""
    emit(1, "n = X.shape[0]")
    emit(1, f"sum_red = {'lf[%d] != 0.0' % P.L_SUM if loss_code == P.MSE else 'False'}")
    if loss_code == P.MSE:
        emit(1, f"f = 0.5 if lf[{P.L_HALF}] != 0.0 else 1.0")
        emit(1, f"D = 1 if lf[{P.L_SUM}] != 0.0 else {k}")
        emit(1, "coef = T(2.0 * f / D)")


def _emit_opt_settings(emit, opt_code, fold):
    """The optimizer's settings, read once per call (plain SGD reads the learning rate only)."""
    if fold:
        return
    emit(1, f"wd, use_wd = T(of[{P.O_WD}]), of[{P.O_WD}] != 0.0")
    if opt_code == P.ADAM:
        emit(1, f"b1, b2 = T(of[{P.O_BETA1}]), T(of[{P.O_BETA2}])")
        emit(1, f"c1, c2 = T(1.0 - of[{P.O_BETA1}]), T(1.0 - of[{P.O_BETA2}])")
        emit(1, f"eps, eps_hat = T(of[{P.O_EPS}]), of[{P.O_EPS_HAT}] != 0.0")
    else:
        emit(1, f"mom = T(of[{P.O_MOMENTUM}])")
        emit(1, f"use_mom = of[{P.O_MOMENTUM}] != 0.0")
        emit(1, f"nesterov = of[{P.O_NESTEROV}] != 0.0")


def _emit_loss_and_grad(emit, ind, loss_code, k, o_last):
    """:func:`fastbp.kernels.network.loss_and_grad` for sample i: loss, gradient in ga[0:k]."""
    if loss_code == P.MSE:
        emit(ind, "acc = 0.0")
        emit(ind, f"for c in range({k}):")
        emit(ind + 1, f"d = ws[{o_last} + c] - Yf[i, c]")
        emit(ind + 1, "ga[c] = coef * d")
        emit(ind + 1, "acc += d * d")
        emit(ind, "loss = f * acc / D")
    elif loss_code == P.BCE:
        emit(ind, "acc = 0.0")
        emit(ind, f"for c in range({k}):")
        emit(ind + 1, f"term, sig = _bce_one(ws[{o_last} + c], Yf[i, c], T(1), T(0))")
        emit(ind + 1, "acc += term")
        emit(ind + 1, f"ga[c] = (sig - Yf[i, c]) / T({k})")
        emit(ind, f"loss = acc / {k}")
    else:
        emit(ind, f"m = ws[{o_last}]")
        emit(ind, f"for c in range(1, {k}):")
        emit(ind + 1, f"if ws[{o_last} + c] > m:")
        emit(ind + 2, f"m = ws[{o_last} + c]")
        emit(ind, "ssum = T(0)")
        emit(ind, f"for c in range({k}):")
        emit(ind + 1, f"ex = np.exp(ws[{o_last} + c] - m)")
        emit(ind + 1, f"ga[{k} + c] = ex")
        emit(ind + 1, "ssum += ex")
        emit(ind, "lab = Yi[i]")
        emit(ind, f"for c in range({k}):")
        emit(ind + 1, f"pr = ga[{k} + c] / ssum")
        emit(ind + 1, "ga[c] = pr - T(1) if c == lab else pr")
        emit(ind, f"loss = (m + np.log(ssum)) - ws[{o_last} + lab]")


def _emit_backward(emit, plan, fold, store="="):
    """:func:`fastbp.kernels.network.backward` for sample i; the running gradient
    alternates between ga[0:half] and ga[half:2*half]. fold: plain SGD steps each
    weight where its gradient is formed; store "+=": add the sample's gradient to
    ``grads``."""
    cur, nxt = "0", "half"
    for r in range(plan.shape[0] - 1, -1, -1):
        kind, n_out = int(plan[r, P.KIND]), int(plan[r, P.N_OUT])
        o, act = int(plan[r, P.OUT]), int(plan[r, P.ACTV])
        if kind == P.DENSE:
            _emit_dense_backward(emit, plan, r, cur, nxt, fold, store)
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


def _emit_dense_backward(emit, plan, r, cur, nxt, fold, store):
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
    emit(3, f"for j in range({n_in}):")
    emit(4, f"xv = {_inp(r, plan, 'j')}")
    emit(4, f"for c in range({n_out}):")
    if fold:
        emit(5, f"params[{pa} + j * {n_out} + c] -= lrf * (xv * ga[{cur} + c])")
    else:
        emit(5, f"grads[{pa} + j * {n_out} + c] {store} xv * ga[{cur} + c]")
    if pb >= 0:
        emit(3, f"for c in range({n_out}):")
        if fold:
            emit(4, f"params[{pb} + c] -= lrf * ga[{cur} + c]")
        else:
            emit(4, f"grads[{pb} + c] {store} ga[{cur} + c]")


def _emit_apply_update(emit, opt_code, fold):
    """:func:`fastbp.kernels.network._apply_update`: the optimizer step over the flat buffer,
    term for term as :func:`fastbp.kernels.optim.adam_update` / ``sgd_update``."""
    emit(3, "n_opt += 1")
    if opt_code == P.ADAM:
        emit(3, "step = n_opt")
        emit(3, f"step_size = T(lrs[e] / (1.0 - math.pow(of[{P.O_BETA1}], float(step))))")
        emit(3, f"bc2 = math.sqrt(1.0 - math.pow(of[{P.O_BETA2}], float(step)))")
        emit(3, "sq2 = T(bc2)")
        emit(3, f"epsf = T(of[{P.O_EPS}] / bc2) if eps_hat else eps")  # eps before the correction
        emit(3, "for j in range(params.shape[0]):")
        emit(4, "gj = grads[j]")
        emit(4, "if use_wd:")
        emit(5, "gj = gj + wd * params[j]")
        emit(4, "mj = b1 * opt_a[j] + c1 * gj")
        emit(4, "vj = b2 * opt_b[j] + (c2 * gj) * gj")
        emit(4, "opt_a[j] = mj")
        emit(4, "opt_b[j] = vj")
        emit(4, "params[j] -= step_size * mj / (np.sqrt(vj) / sq2 + epsf)")
    elif not fold:          # (plain SGD stepped inside the backward pass)
        emit(3, "for j in range(params.shape[0]):")
        emit(4, "gj = grads[j]")
        emit(4, "if use_wd:")
        emit(5, "gj = gj + wd * params[j]")
        emit(4, "if use_mom:")
        emit(5, "vel = mom * opt_a[j] + gj")
        emit(5, "opt_a[j] = vel")
        emit(5, "gj = gj + mom * vel if nesterov else vel")
        emit(4, "params[j] -= lrf * gj")


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


def _start(plan, loss_code, dtype_name):
    """(emitter, outputs k, offset of the last row's output) of a new generated module,
    its header emitted: imports, the dtype ``T`` and ``correct_one``."""
    emit = _Src()
    R = plan.shape[0]
    k = int(plan[R - 1, P.N_OUT])
    o_last = int(plan[R - 1, P.OUT])
    _emit_header(emit, dtype_name, k, o_last, loss_code)
    emit(0, "")
    return emit, k, o_last


def _emit_header(emit, dtype_name, k, o_last, loss_code):
    """Imports, the dtype ``T`` and ``correct_one``: what every generated module starts with."""
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


def source(plan, loss_code, opt_code, dtype_name, fold=True):
    """The Python source of a ``train_epochs_online`` for this plan, loss and optimizer.

    fold (with SGD): no momentum and no weight decay, so each weight steps where
    its gradient is formed (:func:`fastbp.kernels.network.train_epochs`' fold);
    the kernel then has no optimizer state to read. A kernel is generated for
    each case, so neither carries the other's code.

    It follows :func:`fastbp.kernels.network.train_epochs` step by step, each
    step emitted by the function named after it, with every size and offset
    written in as a constant.
    """
    emit, k, o_last = _start(plan, loss_code, dtype_name)
    emit(0, "@njit")
    emit(0, "def train_epochs_online(net, t, opt, data, bufs, run):")
    _emit_unpack(emit)
    fold = fold and opt_code == P.SGD
    _emit_loss_settings(emit, loss_code, k)
    emit(1, "half = ga.shape[0] // 2")
    _emit_opt_settings(emit, opt_code, fold)
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
    _emit_loss_and_grad(emit, 3, loss_code, k, o_last)
    emit(3, "if not math.isfinite(loss):")
    emit(4, "losses[e] = loss")
    emit(4, "corrects[e] = correct")
    _emit_return(emit, 4, f"e, {P.STATUS_DIVERGED}")
    emit(3, "total += loss")
    emit(3, "if correct_one(ws, Yf, Yi, i, threshold):")
    emit(4, "correct += 1")
    _emit_backward(emit, plan, fold)
    _emit_apply_update(emit, opt_code, fold)
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


def eval_source(plan, loss_code, dtype_name):
    """The source of ``predict``, ``evaluate`` and (without Dropout) ``loss_and_grads``
    for this plan (laid out for one row) and loss.

    ``predict`` and ``evaluate`` have the signatures of :func:`fastbp.kernels.network.predict`
    and ``evaluate``. All three call ``rows`` (one function, so one compile): the
    per-sample kernel's eval-mode forward pass row by row, then, as ``mode`` asks,
    the output stored, the loss and right answers added up, or each row's loss
    gradient (scaled by 1/n unless the loss sums) backpropagated into ``grads``.
    The loss is the batch kernels' up to the order of the additions.
    """
    emit, k, o_last = _start(plan, loss_code, dtype_name)
    backprop = not (plan[:, P.KIND] == P.DROPOUT).any()     # training pass == eval pass
    emit(0, "from fastbp.plan import Data")
    emit(0, "")
    emit(0, "@njit")
    emit(0, "def rows(mode, net, params, data, ws, ga, out, grads):")
    emit(1, "lf, threshold = net.lf, net.threshold")
    emit(1, "X, Yf, Yi = data.X, data.Yf, data.Yi")
    _emit_loss_settings(emit, loss_code, k)
    if backprop:
        emit(1, "half = ga.shape[0] // 2")
        emit(1, "scale = T(1) if sum_red else T(1.0 / n)")
    emit(1, "total = 0.0")
    emit(1, "correct = 0")
    emit(1, "for i in range(n):")
    _emit_forward(emit, 2, plan, training=False)
    emit(2, f"if mode == {_PREDICT}:")
    emit(3, f"for c in range({k}):")
    if loss_code == P.BCE:          # the sigmoid the loss folded away
        emit(4, f"out[i, c] = _sigmoid(ws[{o_last} + c], T(1))")
    else:
        emit(4, f"out[i, c] = ws[{o_last} + c]")
    emit(3, "continue")
    _emit_loss_and_grad(emit, 2, loss_code, k, o_last)
    emit(2, "total += loss")
    emit(2, f"if mode == {_EVALUATE}:")
    emit(3, "if correct_one(ws, Yf, Yi, i, threshold):")
    emit(4, "correct += 1")
    emit(3, "continue")
    if backprop:
        emit(2, f"for c in range({k}):")
        emit(3, "ga[c] = ga[c] * scale")
        _emit_backward(lambda ind, text: emit(ind - 1, text), plan, False, store="+=")
    emit(1, "if not sum_red:")
    emit(2, "total /= n")
    emit(1, "return total, correct")
    emit(0, "")
    emit(0, "def predict(net, params, state, X, ws, batch, out):")
    emit(1, "none = np.zeros(0, dtype=X.dtype)")
    emit(1, "data = Data(X, none.reshape(0, 0), np.zeros(0, dtype=np.int64), none)")
    emit(1, f"rows({_PREDICT}, net, params, data, ws, none, out, none)")
    emit(0, "")
    emit(0, "def evaluate(net, params, state, data, bufs, batch):")
    emit(1, "none = np.zeros(0, dtype=data.X.dtype)")
    emit(1, f"return rows({_EVALUATE}, net, params, data, bufs.ws, bufs.ga, "
            "none.reshape(0, 0), none)")
    if backprop:
        emit(0, "")
        emit(0, "def loss_and_grads(net, params, data, bufs, grads):")
        emit(1, f"return rows({_GRADS}, net, params, data, bufs.ws, bufs.ga, "
                "grads[:0].reshape(0, 0), grads)[0]")
    return "\n".join(emit.lines) + "\n"


def _load(prefix, key, make_text):
    """The module generated by ``make_text()``, imported once per process and per text."""
    module = _loaded.get(key)
    if module is not None:
        return module
    text = make_text()
    digest = hashlib.sha256(f"{_VERSION}\n{text}".encode()).hexdigest()[:20]
    module = _loaded.get(digest)
    if module is None:
        module = _cache.load_generated(f"{prefix}_{digest}", text)
    _loaded[digest] = _loaded[key] = module
    return module


def small(plan):
    """Whether a row at a time beats the batch kernels' products: at most
    ``EVAL_MAX_MACS`` multiply-adds per row (the per-sample kernels' networks)."""
    return P.dense_macs(plan) <= EVAL_MAX_MACS


def eval_kernels(plan, loss_code, dtype_name):
    """(predict, evaluate, loss_and_grads or None) generated for this network, or None
    (not per-sample capable or not small)."""
    if not ENABLED or not supports(plan) or not small(plan):
        return None
    key = ("eval", plan.tobytes(), plan.shape, loss_code, dtype_name)
    module = _load("fastbp_eval", key, lambda: eval_source(plan, loss_code, dtype_name))
    return module.predict, module.evaluate, getattr(module, "loss_and_grads", None)


def kernel(plan, loss_code, opt_code, dtype_name, fold=True):
    """The specialised ``train_epochs_online`` for this network, or None if unavailable.

    fold: the optimizer is plain SGD (see :func:`source`); it must hold for every call."""
    if not ENABLED or not supports(plan):
        return None
    fold = bool(fold) and opt_code == P.SGD
    key = (plan.tobytes(), plan.shape, loss_code, opt_code, dtype_name, fold)
    return _load("fastbp_online", key,
                 lambda: source(plan, loss_code, opt_code, dtype_name, fold)).train_epochs_online
