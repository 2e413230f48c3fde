"""Numba kernels of :mod:`fastbp.reference.network`: the layer loop and whole epochs.

Same functions, same signatures, same steps in the same order; see the
reference for the maths and the buffer layouts. A whole training run of
``lrs.shape[0]`` epochs is one call of :func:`train_epochs`, so Python's
per-call overhead is paid once per call, not once per sample or batch.
"""
import math

import numpy as np

from numba.core import cgutils, types
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic
from numba.np.arrayobj import populate_array

from .._config import IDENTITY, njit
from ..plan import (ACT, ACTV, ADAM, AUX, BATCHNORM, BCE, C_DROPOUT, C_OPT, DENSE,
                    F_A, F_B, KEY, KIND, L_HALF, L_SUM, MSE, N_IN, N_OUT, O_BETA1, O_BETA2,
                    O_EPS, O_EPS_HAT, O_MOMENTUM, O_NESTEROV, O_WD, OUT, P_A, P_B, SGD, SOFTMAX_CE,
                    STATE, STATUS_ACCURACY, STATUS_DIVERGED, STATUS_DONE, STATUS_INTERRUPTED)
from .activations import act_backward, act_forward, bias_act_forward, identity_forward
from .batchnorm import batchnorm_backward, batchnorm_forward_eval, batchnorm_forward_train
from .dense import dense_backward, dense_backward_sgd, dense_forward
from .dropout import dropout_backward, dropout_forward, dropout_mask
from .losses import (bce_with_logits, bce_with_logits_weighted, mse_loss, mse_loss_weighted,
                     softmax_cross_entropy, softmax_cross_entropy_weighted)
from .optim import adam_update, sgd_update

# Flags passed between kernels as typed values, not literals: a literal True/False/0 would
# compile the callee once more for each (Numba specialises on literal arguments), and
# the callers from Python pass plain bool and int64.
_YES, _NO, _ZERO = np.bool_(True), np.bool_(False), np.int64(0)


@intrinsic
def _view2d(typingctx, buf, off, rows, cols):
    """The (rows, cols) C-ordered view of ``buf[off:]``, built directly.

    What ``buf[off:off + rows * cols].reshape((rows, cols))`` gives, without
    reshape's size check and the error formatting that comes with it (seconds
    of compile time); the plan's offsets are correct by construction.
    """
    ret = types.Array(buf.dtype, 2, "C")

    def codegen(context, builder, signature, args):
        src = context.make_array(signature.args[0])(context, builder, args[0])
        dst = context.make_array(ret)(context, builder)
        off_, r, c = (context.cast(builder, v, t, types.intp)
                      for v, t in zip(args[1:], signature.args[1:]))
        data = cgutils.gep_inbounds(builder, src.data, off_)
        populate_array(dst, data=data, shape=(r, c), strides=(builder.mul(c, src.itemsize),
                                                              src.itemsize),
                       itemsize=src.itemsize, meminfo=src.meminfo, parent=src.parent)
        return impl_ret_borrowed(context, builder, ret, dst._getvalue())

    return ret(buf, off, rows, cols), codegen


@njit
def _view(buf, off, rows, cols):
    return _view2d(buf, off, rows, cols)


@njit
def _vec(buf, off, n):
    if off < 0:
        return buf[:0]
    return buf[off:off + n]


@njit
def layer_output(plan, ws, b):
    """Numba kernel of :func:`fastbp.reference.network.layer_output`."""
    r = plan.shape[0] - 1
    return _view(ws, plan[r, OUT], b, plan[r, N_OUT])


@njit
def forward(plan, pf, params, state, x, ws, training, counter):
    """Numba kernel of :func:`fastbp.reference.network.forward`."""
    b = x.shape[0]
    for r in range(plan.shape[0]):
        kind = plan[r, KIND]
        n_in = plan[r, N_IN]
        n_out = plan[r, N_OUT]
        if r == 0:
            inp = x
        else:
            inp = _view(ws, plan[r - 1, OUT], b, n_in)
        out = _view(ws, plan[r, OUT], b, n_out)
        if kind == DENSE:
            W = _view(params, plan[r, P_A], n_in, n_out)
            bias = _vec(params, plan[r, P_B], n_out)
            dense_forward(inp, W, bias[:0], out)
            bias_act_forward(out, bias, plan[r, ACTV], out)
        elif kind == ACT:
            act_forward(inp, plan[r, ACTV], out)
        elif kind == BATCHNORM:
            gamma = params[plan[r, P_A]:plan[r, P_A] + n_out]
            beta = params[plan[r, P_B]:plan[r, P_B] + n_out]
            s = plan[r, STATE]
            mean = state[s:s + n_out]
            var = state[s + n_out:s + 2 * n_out]
            if training:
                a = plan[r, AUX]
                xhat = _view(ws, a, b, n_out)
                inv_std = ws[a + b * n_out:a + b * n_out + n_out]
                batchnorm_forward_train(inp, gamma, beta, mean, var, pf[r, F_A], pf[r, F_B],
                                        xhat, inv_std, out)
            else:
                batchnorm_forward_eval(inp, gamma, beta, mean, var, pf[r, F_B], out)
        else:
            if training and pf[r, F_A] > 0.0:
                mask = _view(ws, plan[r, AUX], b, n_out)
                dropout_mask(plan[r, KEY], counter, pf[r, F_A], mask)
                dropout_forward(inp, mask, out)
            else:
                identity_forward(inp, out)




@njit
def _sgd_slice(params, grads, off, n, lr):
    sgd_update(params[off:off + n], grads[off:off + n], params[:0], lr, 0.0, 0.0, False)


@njit
def backward(plan, pf, params, x, ws, ga, gb, grads, step, lr):
    """Numba kernel of :func:`fastbp.reference.network.backward`."""
    b = x.shape[0]
    cur = ga
    nxt = gb
    for r in range(plan.shape[0] - 1, -1, -1):
        kind = plan[r, KIND]
        n_in = plan[r, N_IN]
        n_out = plan[r, N_OUT]
        dout = _view(cur, 0, b, n_out)
        y = _view(ws, plan[r, OUT], b, n_out)
        if r > 0:
            inp = _view(ws, plan[r - 1, OUT], b, n_in)
            dx = _view(nxt, 0, b, n_in)
        else:
            inp = x
            dx = _view(nxt, 0, 0, n_in)
        if kind == DENSE:
            if plan[r, ACTV] != IDENTITY:   # identity: the gradient passes as it is
                # out of place, into the free buffer (see the reference)
                g = _view(nxt, 0, b, n_out)
                act_backward(dout, y, plan[r, ACTV], g)
                dout = g
                cur, nxt = nxt, cur
                dx = _view(nxt, 0, dx.shape[0], n_in)
            W = _view(params, plan[r, P_A], n_in, n_out)
            dW = _view(grads, plan[r, P_A], n_in, n_out)
            db = _vec(grads, plan[r, P_B], n_out)
            if step:
                dense_backward_sgd(dout, inp, W, lr, dx, db)
                if plan[r, P_B] >= 0:
                    _sgd_slice(params, grads, plan[r, P_B], n_out, lr)
            else:
                dense_backward(dout, inp, W, dx, dW, db)
            cur, nxt = nxt, cur
        elif kind == ACT:
            act_backward(dout, y, plan[r, ACTV], _view(nxt, 0, b, n_out))
            cur, nxt = nxt, cur
        elif kind == BATCHNORM:
            a = plan[r, AUX]
            xhat = _view(ws, a, b, n_out)
            inv_std = ws[a + b * n_out:a + b * n_out + n_out]
            pa = plan[r, P_A]
            pb = plan[r, P_B]
            batchnorm_backward(dout, xhat, inv_std, params[pa:pa + n_out], dx,
                               grads[pa:pa + n_out], grads[pb:pb + n_out])
            if step:
                _sgd_slice(params, grads, pa, n_out, lr)
                _sgd_slice(params, grads, pb, n_out, lr)
            cur, nxt = nxt, cur
        elif pf[r, F_A] > 0.0:
            dropout_backward(dout, _view(ws, plan[r, AUX], b, n_out), dout)


@njit
def loss_and_grad(loss_code, lf, out, yf, yi, probs, dout):
    """Numba kernel of :func:`fastbp.reference.network.loss_and_grad`."""
    if loss_code == MSE:
        return mse_loss(out, yf, lf[L_SUM] != 0.0, lf[L_HALF] != 0.0, dout)
    if loss_code == BCE:
        return bce_with_logits(out, yf, dout)
    return softmax_cross_entropy(out, yi, probs, dout)


@njit
def loss_and_grad_weighted(loss_code, lf, out, yf, yi, sw, probs, dout):
    """Numba kernel of :func:`fastbp.reference.network.loss_and_grad_weighted`."""
    if loss_code == MSE:
        return mse_loss_weighted(out, yf, sw, lf[L_SUM] != 0.0, lf[L_HALF] != 0.0, dout)
    if loss_code == BCE:
        return bce_with_logits_weighted(out, yf, sw, dout)
    return softmax_cross_entropy_weighted(out, yi, sw, probs, dout)


@njit
def add_l2(plan, params, grads, coef):
    """Numba kernel of :func:`fastbp.reference.network.add_l2`."""
    c = params.dtype.type(coef)
    total = 0.0
    for r in range(plan.shape[0]):
        if plan[r, KIND] == DENSE:
            lo = plan[r, P_A]
            for j in range(lo, lo + plan[r, N_IN] * plan[r, N_OUT]):
                w = params[j]
                grads[j] += c * w
                total += w * w
    return total


@njit
def count_correct(loss_code, out, yf, yi, threshold):
    """Numba kernel of :func:`fastbp.reference.network.count_correct`."""
    b, k = out.shape
    right = 0
    for i in range(b):
        if k == 1:
            if (out[i, 0] > threshold) == (yf[i, 0] > 0.5):
                right += 1
            continue
        best = 0
        for j in range(1, k):
            if out[i, j] > out[i, best]:
                best = j
        if loss_code == SOFTMAX_CE:
            label = yi[i]
        else:
            label = 0
            for j in range(1, k):
                if yf[i, j] > yf[i, label]:
                    label = j
        if best == label:
            right += 1
    return right


@njit
def _apply_update(opt_code, of, params, grads, opt_a, opt_b, counters, lr):
    counters[C_OPT] += 1
    if opt_code == ADAM:
        eps = of[O_EPS]
        if of[O_EPS_HAT] != 0.0:   # eps added to sqrt(v) before the bias correction
            eps = eps / math.sqrt(1.0 - math.pow(of[O_BETA2], float(counters[C_OPT])))
        adam_update(params, grads, opt_a, opt_b, counters[C_OPT], lr,
                    of[O_BETA1], of[O_BETA2], eps, of[O_WD])
    else:
        sgd_update(params, grads, opt_a, lr, of[O_MOMENTUM], of[O_WD], of[O_NESTEROV] != 0.0)


@njit
def _gather(X, Yf, Yi, perm, start, b, xb, yfb, yib):
    d = X.shape[1]
    for i in range(b):
        src = perm[start + i]
        for j in range(d):
            xb[i, j] = X[src, j]
        if Yf.shape[0] > 0:
            for j in range(Yf.shape[1]):
                yfb[i, j] = Yf[src, j]
        if Yi.shape[0] > 0:
            yib[i] = Yi[src]


@njit
def evaluate(net, params, state, data, bufs, batch):
    """Numba kernel of :func:`fastbp.reference.network.evaluate`."""
    plan, pf, loss_code, lf = net.plan, net.pf, net.loss_code, net.lf
    X, Yf, Yi = data.X, data.Yf, data.Yi
    ws, ga, probs = bufs.ws, bufs.ga, bufs.probs
    n = X.shape[0]
    sum_red = loss_code == MSE and lf[L_SUM] != 0.0
    total = 0.0
    correct = 0
    for start in range(0, n, batch):
        stop = min(start + batch, n)
        b = stop - start
        forward(plan, pf, params, state, X[start:stop], ws, _NO, _ZERO)
        out = layer_output(plan, ws, b)
        k = out.shape[1]
        yf = Yf[start:stop] if Yf.shape[0] > 0 else Yf
        yi = Yi[start:stop] if Yi.shape[0] > 0 else Yi
        loss = loss_and_grad(loss_code, lf, out, yf, yi, _view(probs, 0, b, k), _view(ga, 0, b, k))
        total += loss if sum_red else loss * b
        correct += count_correct(loss_code, out, yf, yi, net.threshold)
    if not sum_red:
        total /= n
    return total, correct


@njit
def predict(net, params, state, X, ws, batch, out):
    """Numba kernel of :func:`fastbp.reference.network.predict`."""
    plan, pf = net.plan, net.pf
    n = X.shape[0]
    for start in range(0, n, batch):
        stop = min(start + batch, n)
        forward(plan, pf, params, state, X[start:stop], ws, _NO, _ZERO)
        res = layer_output(plan, ws, stop - start)
        if net.out_sigmoid:
            act_forward(res, 1, out[start:stop])
        else:
            identity_forward(res, out[start:stop])


@njit
def train_epochs(net, t, opt, data, bufs, run):
    """Numba kernel of :func:`fastbp.reference.network.train_epochs`."""
    plan, pf, loss_code, lf = net.plan, net.pf, net.loss_code, net.lf
    params, grads, state, counters = t.params, t.grads, t.state, t.counters
    X, Yf, Yi, sw = data.X, data.Yf, data.Yi, data.sw
    ws, ga, gb, probs = bufs.ws, bufs.ga, bufs.gb, bufs.probs
    xb, yfb, yib, swb = bufs.xb, bufs.yfb, bufs.yib, bufs.swb
    order, lrs, stop_flag = run.order, run.lrs, run.stop_flag
    losses, corrects, l2 = run.losses, run.corrects, opt.l2
    n = X.shape[0]
    B = xb.shape[0]
    sum_red = loss_code == MSE and lf[L_SUM] != 0.0
    fold = opt.code == SGD and opt.of[O_MOMENTUM] == 0.0 and opt.of[O_WD] == 0.0 and l2 == 0.0
    for e in range(lrs.shape[0]):
        perm = order[e % order.shape[0]]
        total = 0.0
        correct = 0
        for start in range(0, n, B):
            stop = min(start + B, n)
            b = stop - start
            _gather(X, Yf, Yi, perm, start, b, xb, yfb, yib)
            x = xb[:b]
            forward(plan, pf, params, state, x, ws, _YES, counters[C_DROPOUT])
            out = layer_output(plan, ws, b)
            k = out.shape[1]
            yf = yfb[:b] if yfb.shape[0] > 0 else yfb
            yi = yib[:b] if yib.shape[0] > 0 else yib
            bw = float(b)
            if sw.shape[0] > 0:
                bw = 0.0
                for i in range(b):
                    swb[i] = sw[perm[start + i]]
                    bw += swb[i]
                loss = loss_and_grad_weighted(loss_code, lf, out, yf, yi, swb[:b],
                                              _view(probs, 0, b, k), _view(ga, 0, b, k))
            else:
                loss = loss_and_grad(loss_code, lf, out, yf, yi, _view(probs, 0, b, k),
                                     _view(ga, 0, b, k))
            if not math.isfinite(loss):
                losses[e] = loss
                corrects[e] = correct
                return e, STATUS_DIVERGED
            correct += count_correct(loss_code, out, yf, yi, net.threshold)
            if fold:    # plain SGD: each layer steps inside backward
                counters[C_OPT] += 1
                backward(plan, pf, params, x, ws, ga, gb, grads, _YES, lrs[e])
            else:
                backward(plan, pf, params, x, ws, ga, gb, grads, _NO, 0.0)
                if l2 != 0.0 and bw > 0.0:
                    loss += 0.5 * l2 / bw * add_l2(plan, params, grads, l2 / bw)
                _apply_update(opt.code, opt.of, params, grads, t.opt_a, t.opt_b, counters, lrs[e])
            total += loss if sum_red else loss * b
            counters[C_DROPOUT] += 1
            if stop_flag[0] != 0:
                losses[e] = total if sum_red else total / stop
                corrects[e] = correct
                return e, STATUS_INTERRUPTED
        losses[e] = total if sum_red else total / n
        corrects[e] = correct
        if run.stop_correct > 0:
            right = evaluate(net, params, state, data, bufs, B)[1]
            if right >= run.stop_correct:
                return e + 1, STATUS_ACCURACY
    return lrs.shape[0], STATUS_DONE


def select_batch(plan, loss_code, opt_code, dtype_name, fold, weighted=False, l2=False):
    """The mini-batch functions generated for this network (a module with ``train_epochs``,
    ``predict``, ``evaluate`` and ``loss_and_grads``; :mod:`fastbp.kernels.specialize_batch`),
    or None (``FASTBP_SPECIALIZE=0``): then the generic functions here serve. fold: the
    optimizer is plain SGD, weighted: the runs have sample weights, l2: an L2 term,
    for every call of its ``train_epochs``."""
    from .specialize_batch import module

    return module(plan, loss_code, opt_code, dtype_name, fold, weighted, l2)
