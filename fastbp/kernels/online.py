"""Numba kernel of :mod:`fastbp.reference.online`: per-sample SGD, whole epochs per call.

Same signature and the same steps as :func:`fastbp.kernels.network.train_epochs`
with a batch of one, written for speed at that size. With one sample the
arithmetic is tens of nanoseconds, so what costs is the bookkeeping: a Numba
call or a view that takes arrays costs reference-count updates (~5-20 ns
each). This kernel therefore makes no array view and calls no array-taking
function inside the sample loop; it reads the flat parameter buffer and the
flat workspace by index, with the plan's offsets. Only scalar helpers (which
LLVM inlines) are called.

Rows supported: Dense (+ fused activation), activation, Dropout; BatchNorm
needs a batch of at least two and never reaches here. Losses: MSE, softmax
cross-entropy, BCE on logits; optimizers: the shared SGD and Adam ops of
:mod:`fastbp.kernels.optim` (one call per sample).
"""
import math

import numpy as np

from .._config import RELU, SIGMOID, TANH, njit
from .activations import _relu, _relu_grad, _sigmoid, _sigmoid_grad, _tanh_grad
from ..plan import (ACT, ACTV, ADAM, AUX, BCE, C_DROPOUT, C_OPT, DENSE, F_A, KEY, KIND, L_HALF,
                    L_SUM, MSE, N_IN, N_OUT, O_BETA1, O_BETA2, O_EPS, O_MOMENTUM, O_NESTEROV,
                    O_WD, OUT, P_A, P_B, SOFTMAX_CE, STATUS_ACCURACY, STATUS_DIVERGED,
                    STATUS_DONE, STATUS_INTERRUPTED)
from .losses import _bce_one
from .optim import adam_update, sgd_update
from .rng import stream_base, uniform53_at


@njit
def _act(v, act, one, zero):
    # one element of bias_act_forward's activation (the batch kernels' scalar helpers)
    if act == SIGMOID:
        return _sigmoid(v, one)
    if act == RELU:
        return _relu(v, zero)
    if act == TANH:
        return np.tanh(v)
    return v


@njit
def _act_grad(g, y, act, one, zero):
    # one element of act_backward: d loss / d x from g and the output y
    if act == SIGMOID:
        return _sigmoid_grad(g, y, one)
    if act == RELU:
        return _relu_grad(g, y, zero)
    if act == TANH:
        return _tanh_grad(g, y, one)
    return g


@njit
def _forward_one(plan, pf, params, X, i, ws, training, counter):
    """Forward pass of sample ``X[i]``; row r's output at ``ws[plan[r, OUT]:]``."""
    one = ws.dtype.type(1)
    zero = ws.dtype.type(0)
    for r in range(plan.shape[0]):
        kind = plan[r, KIND]
        n_in = plan[r, N_IN]
        n_out = plan[r, N_OUT]
        o = plan[r, OUT]
        src = plan[r - 1, OUT] if r > 0 else 0
        if kind == DENSE:
            pa = plan[r, P_A]
            pb = plan[r, P_B]
            act = plan[r, ACTV]
            # out[c] = sum over j (ascending) of x[j] W[j, c]; c innermost walks W's rows
            for c in range(n_out):
                ws[o + c] = 0
            for j in range(n_in):
                xv = X[i, j] if r == 0 else ws[src + j]
                for c in range(n_out):
                    ws[o + c] += xv * params[pa + j * n_out + c]
            for c in range(n_out):
                acc = ws[o + c]
                if pb >= 0:
                    acc = acc + params[pb + c]
                ws[o + c] = _act(acc, act, one, zero)
        elif kind == ACT:
            act = plan[r, ACTV]
            for c in range(n_out):
                ws[o + c] = _act(X[i, c] if r == 0 else ws[src + c], act, one, zero)
        else:  # DROPOUT
            p = pf[r, F_A]
            if training and p > 0.0:
                base = stream_base(plan[r, KEY], counter)
                scale = ws.dtype.type(1.0 / (1.0 - p))
                a = plan[r, AUX]
                for c in range(n_out):
                    m = scale if uniform53_at(base, c) >= p else ws.dtype.type(0)
                    ws[a + c] = m
                    ws[o + c] = (X[i, c] if r == 0 else ws[src + c]) * m
            else:
                for c in range(n_out):
                    ws[o + c] = X[i, c] if r == 0 else ws[src + c]


@njit
def _correct_one(loss_code, ws, o, k, Yf, Yi, i, threshold):
    if k == 1:
        return (ws[o] > threshold) == (Yf[i, 0] > 0.5)
    best = 0
    for c in range(1, k):
        if ws[o + c] > ws[o + best]:
            best = c
    if loss_code == SOFTMAX_CE:
        return best == Yi[i]
    label = 0
    for c in range(1, k):
        if Yf[i, c] > Yf[i, label]:
            label = c
    return best == label


@njit
def _loss_one(loss_code, lf, ws, o, k, Yf, Yi, i, g):
    """Loss of one sample (output at ws[o:o+k]) and its gradient into g[0:k]."""
    t = ws.dtype.type
    if loss_code == MSE:
        f = 0.5 if lf[L_HALF] != 0.0 else 1.0
        D = 1 if lf[L_SUM] != 0.0 else k
        coef = t(2.0 * f / D)
        acc = 0.0
        for c in range(k):
            d = ws[o + c] - Yf[i, c]
            g[c] = coef * d
            acc += d * d
        return f * acc / D
    if loss_code == BCE:
        acc = 0.0
        kf = t(k)
        for c in range(k):
            term, sig = _bce_one(ws[o + c], Yf[i, c], t(1), t(0))
            acc += term
            g[c] = (sig - Yf[i, c]) / kf
        return acc / k
    # softmax cross-entropy; g[k:2k] holds the probabilities
    m = ws[o]
    for c in range(1, k):
        if ws[o + c] > m:
            m = ws[o + c]
    s = t(0)
    for c in range(k):
        e = np.exp(ws[o + c] - m)
        g[k + c] = e
        s += e
    lab = Yi[i]
    for c in range(k):
        pr = g[k + c] / s
        g[c] = pr - t(1) if c == lab else pr
    return (m + np.log(s)) - ws[o + lab]


@njit
def _backward_one(plan, pf, params, grads, X, i, ws, g, half):
    """Backpropagate g[0:n_out_last] (d loss / d output) into ``grads``.

    g holds two halves of ``half`` elements that take turns as the running
    gradient.
    """
    one = ws.dtype.type(1)
    zero = ws.dtype.type(0)
    cur = 0
    nxt = half
    for r in range(plan.shape[0] - 1, -1, -1):
        kind = plan[r, KIND]
        n_in = plan[r, N_IN]
        n_out = plan[r, N_OUT]
        o = plan[r, OUT]
        if kind == DENSE:
            act = plan[r, ACTV]
            pa = plan[r, P_A]
            pb = plan[r, P_B]
            for c in range(n_out):
                g[cur + c] = _act_grad(g[cur + c], ws[o + c], act, one, zero)
            if r > 0:
                for j in range(n_in):
                    acc = ws.dtype.type(0)
                    for c in range(n_out):
                        acc += g[cur + c] * params[pa + j * n_out + c]
                    g[nxt + j] = acc
            src = plan[r - 1, OUT] if r > 0 else 0
            for j in range(n_in):
                xv = X[i, j] if r == 0 else ws[src + j]
                for c in range(n_out):
                    grads[pa + j * n_out + c] = xv * g[cur + c]
            if pb >= 0:
                for c in range(n_out):
                    grads[pb + c] = g[cur + c]
            cur, nxt = nxt, cur
        elif kind == ACT:
            act = plan[r, ACTV]
            for c in range(n_out):
                g[cur + c] = _act_grad(g[cur + c], ws[o + c], act, one, zero)
        elif pf[r, F_A] > 0.0:  # DROPOUT
            a = plan[r, AUX]
            for c in range(n_out):
                g[cur + c] = g[cur + c] * ws[a + c]
    return cur


@njit
def train_epochs_online(net, t, opt, data, bufs, run):
    """Numba kernel of :func:`fastbp.reference.online.train_epochs_online`."""
    plan, pf, loss_code, lf, threshold = net.plan, net.pf, net.loss_code, net.lf, net.threshold
    params, grads, counters, of = t.params, t.grads, t.counters, opt.of
    X, Yf, Yi, ws, ga = data.X, data.Yf, data.Yi, bufs.ws, bufs.ga
    order, lrs, stop_flag = run.order, run.lrs, run.stop_flag
    losses, corrects = run.losses, run.corrects
    n = X.shape[0]
    R = plan.shape[0]
    o_last = plan[R - 1, OUT]
    k = plan[R - 1, N_OUT]
    half = ga.shape[0] // 2
    sum_red = loss_code == MSE and lf[L_SUM] != 0.0
    for e in range(lrs.shape[0]):
        row = e % order.shape[0]
        total = 0.0
        correct = 0
        for s in range(n):
            i = order[row, s]
            _forward_one(plan, pf, params, X, i, ws, True, counters[C_DROPOUT])
            loss = _loss_one(loss_code, lf, ws, o_last, k, Yf, Yi, i, ga)
            if not math.isfinite(loss):
                losses[e] = loss
                corrects[e] = correct
                return e, STATUS_DIVERGED
            total += loss
            if _correct_one(loss_code, ws, o_last, k, Yf, Yi, i, threshold):
                correct += 1
            _backward_one(plan, pf, params, grads, X, i, ws, ga, half)
            counters[C_OPT] += 1
            if opt.code == ADAM:
                adam_update(params, grads, t.opt_a, t.opt_b, counters[C_OPT], lrs[e],
                            of[O_BETA1], of[O_BETA2], of[O_EPS], of[O_WD])
            else:
                sgd_update(params, grads, t.opt_a, lrs[e], of[O_MOMENTUM], of[O_WD],
                           of[O_NESTEROV] != 0.0)
            counters[C_DROPOUT] += 1
            if stop_flag[0] != 0:
                losses[e] = total if sum_red else total / (s + 1)
                corrects[e] = correct
                return e, STATUS_INTERRUPTED
        losses[e] = total if sum_red else total / n
        corrects[e] = correct
        if run.stop_correct > 0:
            right = 0
            for i in range(n):
                _forward_one(plan, pf, params, X, i, ws, False, 0)
                if _correct_one(loss_code, ws, o_last, k, Yf, Yi, i, threshold):
                    right += 1
            if right >= run.stop_correct:
                return e + 1, STATUS_ACCURACY
    return lrs.shape[0], STATUS_DONE


def select_online(plan, loss_code, opt_code, dtype_name, fold):
    """The per-sample epoch function for this network: one specialised on its
    shape (:mod:`fastbp.kernels.specialize_online`) when available, else the generic
    :func:`train_epochs_online`. Same signature either way. fold: the optimizer is
    plain SGD (no momentum, no weight decay) for every call of the function returned."""
    from .specialize_online import kernel

    return kernel(plan, loss_code, opt_code, dtype_name, fold) or train_epochs_online


def select_eval(plan, loss_code, dtype_name):
    """(predict, evaluate, loss_and_grads or None) run a row at a time, generated for
    this network's shape (:func:`fastbp.kernels.specialize_online.eval_kernels`) when it is
    small and per-sample capable, else None (the batch kernels serve). predict and
    evaluate have the signatures of :func:`fastbp.kernels.network.predict` and ``evaluate``."""
    from .specialize_online import eval_kernels

    return eval_kernels(plan, loss_code, dtype_name)
