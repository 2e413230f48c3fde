"""Per-sample epoch kernels specialised on one network's shape: the emitters.

:func:`fastbp.kernels.online.train_epochs_online` reads the layer sizes and
offsets from the plan at run time. For a network of a few dozen weights those
loop bounds and look-ups cost as much as the arithmetic. The functions here
write the same loop's steps as Python source with every size, offset,
activation, the loss and the optimizer baked in as constants, so LLVM unrolls
the small loops and keeps values in registers; :mod:`fastbp.kernels.specialize_online`
puts them together (and :mod:`fastbp.kernels.specialize_batch` reuses the
activation and optimizer steps). A generated kernel compiles as a function or
two (the generic path compiles a dozen helpers), which cuts the cold first-call time.

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
# the modes of the generated kernels: each eval pass, and training
_PREDICT, _EVALUATE, _GRADS, _TRAIN = 0, 1, 2, 3


def supports(plan):
    """Dense, activation and Dropout rows only (what a batch of one can train)."""
    return all(k in (P.DENSE, P.ACT, P.DROPOUT) for k in plan[:, P.KIND])


class _Src:
    def __init__(self):
        self.lines = []

    def __call__(self, indent, text):
        self.lines.append("    " * indent + text)


def _emit_act(emit, ind, act, src, dst, called=""):
    """dst = act(src): the batch kernels' scalar helpers (fastbp.kernels.activations);
    ``called="_called"`` names their called forms, for straight-line code."""
    if act == SIGMOID:
        emit(ind, f"{dst} = _sigmoid{called}({src}, T(1))")
    elif act == RELU:
        emit(ind, f"{dst} = _relu{called}({src}, T(0))")
    elif act == TANH:
        emit(ind, f"{dst} = np.tanh({src})")
    else:
        emit(ind, f"{dst} = {src}")


def _act_grad(act, g, y, called=""):
    """The expression of d loss / d x from ``g`` and the output ``y`` (None: identity);
    ``called`` as in :func:`_emit_act`."""
    if act == SIGMOID:
        return f"_sigmoid_grad{called}({g}, {y}, T(1))"
    if act == RELU:
        return f"_relu_grad{called}({g}, {y}, T(0))"
    if act == TANH:
        return f"_tanh_grad{called}({g}, {y}, T(1))"
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
    emit(4, "fwd(params, X, i, ws)")
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
    emit(0, "from fastbp.plan import Buffers, Data, Optim, Run, Tensors")
    emit(0, f"T = np.{dtype_name}")
    emit(0, "ZERO = np.int64(0)")
    # functions only the kernels call: no wrappers for calls from Python
    emit(0, "INNER = dict(no_cpython_wrapper=True, no_cfunc_wrapper=True)")
    emit(0, "")
    _emit_count_correct(emit, k, o_last, loss_code)


def _emit_stand_ins(emit):
    """What an eval pass gives the one entry point ``kernel`` in place of the
    training-only arguments: no output rows, no sample order, no optimizer, and
    ``eval_run()``, whose ``losses[0]`` and ``corrects[0]`` receive the pass's
    loss and count. Their types are the training call's, so one compile serves both."""
    emit(0, "NO_OUT, NO_ORDER = np.zeros((0, 0), dtype=T), np.zeros((0, 0), dtype=np.int64)")
    emit(0, "NO_OPT = Optim(0, np.zeros(0), 0.0)")
    emit(0, "")
    emit(0, "")
    emit(0, "def eval_run():")
    emit(1, "return Run(NO_ORDER, np.zeros(0), 0, np.zeros(1, dtype=np.int64), np.zeros(1), "
            "np.zeros(1, dtype=np.int64))")
    emit(0, "")
    emit(0, "")


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
