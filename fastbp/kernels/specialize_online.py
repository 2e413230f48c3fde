"""The per-sample training kernel and the row-at-a-time eval passes, generated
for one network's shape from the emitters of :mod:`fastbp.kernels.specialize`.

:func:`source` writes ``train_epochs_online`` (see :mod:`fastbp.kernels.specialize`
for why), and for a small network (:func:`fastbp.kernels.specialize.small`) the
eval passes ``predict``, ``evaluate`` and ``loss_and_grads`` in the same compiled
function, ``kernel``, so that after a per-sample fit they need no compile of their
own. :func:`eval_source` writes those eval passes as a module of their own, for
networks trained in mini-batches or not at all. Their eval passes, and the
training kernel's accuracy check, call ``fwd``, the eval-mode forward pass of
one row (:func:`emit_fwd`); the training step has its forward pass written in.

For the smallest networks and plain SGD (:func:`scalar`) the training step is
written out unit by unit, every value in a local variable instead of the
``ws`` and ``ga`` buffers; the arithmetic and its order are the loops'.

The eval loss is the batch kernels' up to the order of the additions; each row's
gradient (scaled by 1/n unless the loss sums) is backpropagated into ``grads``.
"""
from .. import plan as P
from . import specialize as S

_PREDICT, _EVALUATE, _GRADS = S._PREDICT, S._EVALUATE, S._GRADS


SCALAR_MAX_MACS = 32    # a plain-SGD step written out unit by unit up to this many multiply-adds
_CALLED = "_called"     # the written-out step calls the activations' called forms


def scalar(plan, fold):
    """Whether the training step is written out unit by unit, each value in a local
    (:func:`emit_forward_scalar`, :func:`emit_backward_scalar`): plain SGD folded
    into the backward pass, Dense and activation rows only, at most
    ``SCALAR_MAX_MACS`` multiply-adds. A step through ``ws`` and ``ga`` stores
    and reloads every value, and as the compiler cannot tell those buffers from
    ``params``, each store orders the loads after it: 5-12% of a [2,4,4,1] step.
    Written out, the step's source grows with the weights and Numba's compile
    time faster still (a 54-weight step compiles about 1 s longer, a 336-weight
    one 20-30 s, even with the activations called rather than inlined by
    Numba), so only the smallest networks, where the step is cheapest and the
    buffers' share of it largest, are written out."""
    return (fold and all(k in (P.DENSE, P.ACT) for k in plan[:, P.KIND])
            and P.dense_macs(plan) <= SCALAR_MAX_MACS)


def _sum(first, terms):
    """``first + a + b + ...`` added left to right, as the loops' ``acc +=`` does."""
    return " + ".join([first] + terms)


def emit_forward_scalar(emit, ind, plan, o_last):
    """:func:`S._emit_forward` (training, no Dropout) for sample X[i], each unit's value
    in a local: the inputs ``x{j}``, row r's outputs ``v{r}_{c}``, with the same
    additions in the same order. The last row's outputs are also stored at
    ``ws[o_last:]`` for the loss. Returns the names: [inputs, row 0's outputs, ...]."""
    names = [[f"x{j}" for j in range(int(plan[0, P.N_IN]))]]
    for j, name in enumerate(names[0]):
        emit(ind, f"{name} = X[i, {j}]")
    for r in range(plan.shape[0]):
        n_in, n_out, act = int(plan[r, P.N_IN]), int(plan[r, P.N_OUT]), int(plan[r, P.ACTV])
        pa, pb = int(plan[r, P.P_A]), int(plan[r, P.P_B])
        inp, out = names[-1], [f"v{r}_{c}" for c in range(n_out)]
        for c in range(n_out):
            if plan[r, P.KIND] == P.ACT:
                S._emit_act(emit, ind, act, inp[c], out[c], _CALLED)
                continue
            emit(ind, f"{out[c]} = " + _sum("T(0)", [f"{inp[j]} * params[{pa + j * n_out + c}]"
                                                     for j in range(n_in)]))
            if pb >= 0:
                emit(ind, f"{out[c]} = {out[c]} + params[{pb + c}]")
            S._emit_act(emit, ind, act, out[c], out[c], _CALLED)
        names.append(out)
    for c, name in enumerate(names[-1]):
        emit(ind, f"ws[{o_last} + {c}] = {name}")
    return names


def emit_backward_scalar(emit, ind, plan, names):
    """:func:`S._emit_backward` with the plain-SGD fold, on the locals of
    :func:`emit_forward_scalar`: the loss gradient read from ``ga[0:k]``, each
    unit's gradient in a local, each weight stepped where its gradient is formed
    (after the input gradient has used the old weights), term for term."""
    R = plan.shape[0]
    cur = [f"g{R}_{c}" for c in range(int(plan[R - 1, P.N_OUT]))]
    for c, name in enumerate(cur):
        emit(ind, f"{name} = ga[{c}]")
    for r in range(R - 1, -1, -1):
        n_in, n_out, act = int(plan[r, P.N_IN]), int(plan[r, P.N_OUT]), int(plan[r, P.ACTV])
        inp, out = names[r], names[r + 1]
        grads = [S._act_grad(act, cur[c], out[c], _CALLED) for c in range(n_out)]
        if grads[0] is not None:        # (None: the identity)
            cur = [f"h{r}_{c}" for c in range(n_out)]
            for name, grad in zip(cur, grads):
                emit(ind, f"{name} = {grad}")
        if plan[r, P.KIND] != P.DENSE:
            continue
        pa, pb = int(plan[r, P.P_A]), int(plan[r, P.P_B])
        nxt = [f"g{r}_{j}" for j in range(n_in)]
        if r > 0:
            for j in range(n_in):
                emit(ind, f"{nxt[j]} = " + _sum("T(0)", [f"{cur[c]} * params[{pa + j * n_out + c}]"
                                                         for c in range(n_out)]))
        for j in range(n_in):
            for c in range(n_out):
                emit(ind, f"params[{pa + j * n_out + c}] -= lrf * ({inp[j]} * {cur[c]})")
        if pb >= 0:
            for c in range(n_out):
                emit(ind, f"params[{pb + c}] -= lrf * {cur[c]}")
        cur = nxt


def backprop(plan):
    """Whether ``loss_and_grads`` can run a row at a time: no Dropout, so the
    training pass and the eval pass agree."""
    return not (plan[:, P.KIND] == P.DROPOUT).any()


def emit_fwd(emit, plan):
    """``fwd``: the eval-mode forward pass of row i of X."""
    emit(0, "@njit(**INNER)")
    emit(0, "def fwd(params, X, i, ws):")
    S._emit_forward(emit, 1, plan, training=False)
    emit(1, "return")
    emit(0, "")


def emit_rows(emit, ind, plan, loss_code, k, o_last):
    """The eval passes over every row of X, as ``mode`` asks: the output stored in
    ``out``, the loss and right answers added up (``total``, ``correct``), or the
    loss gradient added to ``grads``. Uses the locals of :func:`S._emit_loss_settings`."""
    if backprop(plan):
        emit(ind, "half = ga.shape[0] // 2")
        emit(ind, "scale = T(1) if sum_red else T(1.0 / n)")
    emit(ind, "total = 0.0")
    emit(ind, "correct = 0")
    emit(ind, "for i in range(n):")
    emit(ind + 1, "fwd(params, X, i, ws)")
    emit(ind + 1, f"if mode == {_PREDICT}:")
    emit(ind + 2, f"for c in range({k}):")
    if loss_code == P.BCE:          # the sigmoid the loss folded away
        emit(ind + 3, f"out[i, c] = _sigmoid(ws[{o_last} + c], T(1))")
    else:
        emit(ind + 3, f"out[i, c] = ws[{o_last} + c]")
    emit(ind + 2, "continue")
    S._emit_loss_and_grad(emit, ind + 1, loss_code, k, o_last)
    emit(ind + 1, "total += loss")
    emit(ind + 1, f"if mode == {_EVALUATE}:")
    emit(ind + 2, "if correct_one(ws, Yf, Yi, i, threshold):")
    emit(ind + 3, "correct += 1")
    emit(ind + 2, "continue")
    if backprop(plan):
        emit(ind + 1, f"for c in range({k}):")
        emit(ind + 2, "ga[c] = ga[c] * scale")
        S._emit_backward(lambda i, text: emit(i - 2 + ind, text), plan, False, store="+=")
    emit(ind, "if not sum_red:")
    emit(ind + 1, "total /= n")


def emit_api(emit, plan, call):
    """``predict``, ``evaluate`` and (see :func:`backprop`) ``loss_and_grads``, with
    the signatures of :func:`fastbp.kernels.network.predict` and ``evaluate``,
    through ``call`` (the name of a Python function taking ``mode, net, params,
    data, ws, ga, out, grads``)."""
    emit(0, "def predict(net, params, state, X, ws, batch, out):")
    emit(1, "none = np.zeros(0, dtype=X.dtype)")
    emit(1, "data = Data(X, none.reshape(0, 0), np.zeros(0, dtype=np.int64), none)")
    emit(1, f"{call}({_PREDICT}, net, params, data, ws, none, out, none)")
    emit(0, "")
    emit(0, "")
    emit(0, "def evaluate(net, params, state, data, bufs, batch):")
    emit(1, "none = np.zeros(0, dtype=data.X.dtype)")
    emit(1, f"return {call}({_EVALUATE}, net, params, data, bufs.ws, bufs.ga, "
            "none.reshape(0, 0), none)")
    if backprop(plan):
        emit(0, "")
        emit(0, "")
        emit(0, "def loss_and_grads(net, params, data, bufs, grads):")
        emit(1, f"return {call}({_GRADS}, net, params, data, bufs.ws, bufs.ga, "
                "grads[:0].reshape(0, 0), grads)[0]")


def eval_source(plan, loss_code, dtype_name):
    """The source of ``predict``, ``evaluate`` and (see :func:`backprop`)
    ``loss_and_grads`` for this plan (laid out for one row) and loss, all three
    through ``rows`` (one function, so one compile)."""
    emit, k, o_last = S._start(plan, loss_code, dtype_name)
    emit_fwd(emit, plan)
    emit(0, "")
    emit(0, "@njit")
    emit(0, "def rows(mode, net, params, data, ws, ga, out, grads):")
    emit(1, "lf, threshold = net.lf, net.threshold")
    emit(1, "X, Yf, Yi = data.X, data.Yf, data.Yi")
    S._emit_loss_settings(emit, loss_code, k)
    emit_rows(emit, 1, plan, loss_code, k, o_last)
    emit(1, "return total, correct")
    emit(0, "")
    emit(0, "")
    emit_api(emit, plan, "rows")
    return "\n".join(emit.lines) + "\n"


def source(plan, loss_code, opt_code, dtype_name, fold=True):
    """The Python source of a ``train_epochs_online`` for this plan, loss and optimizer,
    and (for a small network, :func:`fastbp.kernels.specialize.small`) the row-at-a-time
    ``predict``, ``evaluate`` and ``loss_and_grads`` (:func:`emit_rows`).

    fold (with SGD): no momentum and no weight decay, so each weight steps where
    its gradient is formed (:func:`fastbp.kernels.network.train_epochs`' fold);
    the kernel then has no optimizer state to read. A kernel is generated for
    each case, so neither carries the other's code.

    It follows :func:`fastbp.kernels.network.train_epochs` step by step, each
    step emitted by the function named after it, with every size and offset
    written in as a constant. Training and the eval passes are one function,
    ``kernel``, so that one compile serves a fit and the calls after it.
    """
    emit, k, o_last = S._start(plan, loss_code, dtype_name)
    rows = S.small(plan)
    fold = fold and opt_code == P.SGD
    unit_by_unit = scalar(plan, fold)
    if unit_by_unit:
        emit(0, "from fastbp.kernels.activations import (_relu_called, _relu_grad_called, "
                "_sigmoid_called, _sigmoid_grad_called, _tanh_grad_called)")
        emit(0, "")
    emit_fwd(emit, plan)
    emit(0, "")
    emit(0, "@njit")
    emit(0, "def kernel(mode, net, t, opt, data, bufs, run, out):")
    S._emit_unpack(emit)
    S._emit_loss_settings(emit, loss_code, k)
    if rows:
        emit(1, f"if mode != {S._TRAIN}:")
        emit_rows(emit, 2, plan, loss_code, k, o_last)
        emit(2, "losses[0] = total")
        emit(2, "corrects[0] = correct")
        emit(2, "return ZERO, ZERO")
    emit(1, "half = ga.shape[0] // 2")
    S._emit_opt_settings(emit, opt_code, fold)
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
    # the training step's forward pass written in (a call here costs ~10% per sample);
    # the eval passes and the accuracy check call ``fwd``
    if unit_by_unit:
        names = emit_forward_scalar(emit, 3, plan, o_last)
    else:
        S._emit_forward(emit, 3, plan, training=True)
    S._emit_loss_and_grad(emit, 3, loss_code, k, o_last)
    emit(3, "if not math.isfinite(loss):")
    emit(4, "losses[e] = loss")
    emit(4, "corrects[e] = correct")
    S._emit_return(emit, 4, f"e, {P.STATUS_DIVERGED}")
    emit(3, "total += loss")
    emit(3, "if correct_one(ws, Yf, Yi, i, threshold):")
    emit(4, "correct += 1")
    if unit_by_unit:
        emit_backward_scalar(emit, 3, plan, names)
    else:
        S._emit_backward(emit, plan, fold)
    S._emit_apply_update(emit, opt_code, fold)
    emit(3, "n_drop += 1")
    emit(3, "if stop_flag[0] != 0:")
    emit(4, "losses[e] = total if sum_red else total / (s + 1)")
    emit(4, "corrects[e] = correct")
    S._emit_return(emit, 4, f"e, {P.STATUS_INTERRUPTED}")
    emit(2, "losses[e] = total if sum_red else total / n")
    emit(2, "corrects[e] = correct")
    S._emit_evaluate(emit, plan)
    S._emit_return(emit, 1, f"lrs.shape[0], {P.STATUS_DONE}")
    emit(0, "")
    emit(0, "")
    S._emit_stand_ins(emit)
    emit(0, "def train_epochs_online(net, t, opt, data, bufs, run):")
    emit(1, f"return kernel({S._TRAIN}, net, t, opt, data, bufs, run, NO_OUT)")
    if rows:
        emit(0, "")
        emit(0, "")
        emit(0, "def _rows(mode, net, params, data, ws, ga, out, grads):")
        emit(1, "none = np.zeros(0, dtype=T)")
        emit(1, "run = eval_run()")
        emit(1, "bufs = Buffers(ws, ga, none, NO_OUT, NO_OUT, np.zeros(0, dtype=np.int64), none, "
                "none)")
        emit(1, "kernel(mode, net, Tensors(params, grads, none, none, none, "
                "np.zeros(2, dtype=np.int64)), NO_OPT, data, bufs, run, out)")
        emit(1, "return run.losses[0], run.corrects[0]")
        emit(0, "")
        emit(0, "")
        emit_api(emit, plan, "_rows")
    return "\n".join(emit.lines) + "\n"


def eval_kernels(plan, loss_code, dtype_name):
    """(predict, evaluate, loss_and_grads or None) generated for this network, or None
    (not per-sample capable or not small)."""
    if not S.ENABLED or not S.supports(plan) or not S.small(plan):
        return None
    key = ("eval", plan.tobytes(), plan.shape, loss_code, dtype_name)
    return _eval_fns(S._load("fastbp_eval", key, lambda: eval_source(plan, loss_code, dtype_name)))


def _eval_fns(module):
    """A generated module's (predict, evaluate, loss_and_grads or None)."""
    return module.predict, module.evaluate, getattr(module, "loss_and_grads", None)


def kernel(plan, loss_code, opt_code, dtype_name, fold=True):
    """The specialised ``train_epochs_online`` for this network, or None if unavailable.

    fold: the optimizer is plain SGD (see :func:`source`); it must hold for every call."""
    if not S.ENABLED or not S.supports(plan):
        return None
    fold = bool(fold) and opt_code == P.SGD
    key = (plan.tobytes(), plan.shape, loss_code, opt_code, dtype_name, fold)
    module = S._load("fastbp_online", key,
                     lambda: source(plan, loss_code, opt_code, dtype_name, fold))
    train = module.train_epochs_online
    if hasattr(module, "predict"):      # its eval passes, compiled with it (see eval_kernels)
        train.rows = _eval_fns(module)
    return train
