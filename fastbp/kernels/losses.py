"""Numba kernels of :mod:`fastbp.reference.losses` (see there for the maths).

Elementwise terms in the arrays' dtype; the scalar loss accumulates in float64.
"""
import numpy as np

from .._config import njit


@njit
def mse_loss(pred, target, sum_reduction, half, dpred):
    """Numba kernel of :func:`fastbp.reference.losses.mse_loss`."""
    # pred (n, k), target (n, k), dpred (n, k)
    n, k = pred.shape
    f = 0.5 if half else 1.0
    D = 1 if sum_reduction else n * k
    coef = dpred.dtype.type(2.0 * f / D)
    acc = 0.0  # float64
    for r in range(n):
        for c in range(k):
            d = pred[r, c] - target[r, c]
            dpred[r, c] = coef * d
            acc += d * d
    return f * acc / D


@njit
def _zero(a):
    # a (n, k) = 0, as loops (a slice assignment compiles a shape-error path)
    zero = a.dtype.type(0)
    for r in range(a.shape[0]):
        for c in range(a.shape[1]):
            a[r, c] = zero


@njit
def _softmax_row(logits, r, probs):
    # probs[r] = softmax(logits[r]), max subtracted first; returns log-sum-exp (m + log s)
    k = logits.shape[1]
    t = logits.dtype.type
    m = logits[r, 0]
    for c in range(1, k):
        if logits[r, c] > m:
            m = logits[r, c]
    s = t(0)
    for c in range(k):
        e = np.exp(logits[r, c] - m)  # in (0, 1]
        probs[r, c] = e
        s += e
    for c in range(k):
        probs[r, c] = probs[r, c] / s
    return m + np.log(s)


@njit
def softmax_cross_entropy(logits, labels, probs, dlogits):
    """Numba kernel of :func:`fastbp.reference.losses.softmax_cross_entropy`."""
    # logits (n, k), labels (n,) int64, probs (n, k), dlogits (n, k)
    n, k = logits.shape
    t = logits.dtype.type
    nf = t(n)
    one = t(1)
    acc = 0.0  # float64
    for r in range(n):
        lse = _softmax_row(logits, r, probs)
        lab = labels[r]
        acc += lse - logits[r, lab]
        for c in range(k):
            g = probs[r, c]
            if c == lab:
                g = g - one
            dlogits[r, c] = g / nf
    return acc / n


@njit(inline="always")
def _bce_one(v, tv, one, zero):
    """One logit's BCE term and sigmoid: ``(max(v, 0) - v*t + log1p(exp(-|v|)), sigmoid(v))``.

    Every BCE kernel (batch, weighted, per-sample, generated) calls this;
    ``one``/``zero`` are in the data's dtype."""
    e = np.exp(-abs(v))  # in (0, 1]
    if v >= zero:
        sig = one / (one + e)
        pos = v
    else:
        sig = e / (one + e)
        pos = zero
    return (pos - v * tv) + np.log1p(e), sig


@njit
def bce_with_logits(z, target, dz):
    """Numba kernel of :func:`fastbp.reference.losses.bce_with_logits`."""
    # z (n, k), target (n, k), dz (n, k)
    n, k = z.shape
    t = z.dtype.type
    N = n * k
    Nf = t(N)
    one = t(1)
    zero = t(0)
    acc = 0.0  # float64
    for r in range(n):
        for c in range(k):
            term, sig = _bce_one(z[r, c], target[r, c], one, zero)
            tv = target[r, c]
            acc += term
            dz[r, c] = (sig - tv) / Nf
    return acc / N


@njit
def _total_weight(sw):
    acc = 0.0  # float64
    for r in range(sw.shape[0]):
        acc += sw[r]
    return acc


@njit
def mse_loss_weighted(pred, target, sw, sum_reduction, half, dpred):
    """Numba kernel of :func:`fastbp.reference.losses.mse_loss_weighted`."""
    # pred (n, k), target (n, k), sw (n,), dpred (n, k)
    n, k = pred.shape
    f = 0.5 if half else 1.0
    W = _total_weight(sw)
    D = 1.0 if sum_reduction else k * W
    if D == 0.0:
        _zero(dpred)
        return 0.0
    acc = 0.0  # float64
    for r in range(n):
        coef = dpred.dtype.type((2.0 * f / D) * sw[r])
        row = 0.0
        for c in range(k):
            d = pred[r, c] - target[r, c]
            dpred[r, c] = coef * d
            row += d * d
        acc += sw[r] * row
    return f * acc / D


@njit
def softmax_cross_entropy_weighted(logits, labels, sw, probs, dlogits):
    """Numba kernel of :func:`fastbp.reference.losses.softmax_cross_entropy_weighted`."""
    # logits (n, k), labels (n,) int64, sw (n,), probs (n, k), dlogits (n, k)
    n, k = logits.shape
    t = logits.dtype.type
    one = t(1)
    W = _total_weight(sw)
    acc = 0.0  # float64
    for r in range(n):
        lse = _softmax_row(logits, r, probs)
        if W == 0.0:
            continue
        lab = labels[r]
        acc += sw[r] * (lse - logits[r, lab])
        coef = t(sw[r] / W)
        for c in range(k):
            g = probs[r, c]
            if c == lab:
                g = g - one
            dlogits[r, c] = g * coef
    if W == 0.0:
        _zero(dlogits)
        return 0.0
    return acc / W


@njit
def bce_with_logits_weighted(z, target, sw, dz):
    """Numba kernel of :func:`fastbp.reference.losses.bce_with_logits_weighted`."""
    # z (n, k), target (n, k), sw (n,), dz (n, k)
    n, k = z.shape
    t = z.dtype.type
    one = t(1)
    zero = t(0)
    D = k * _total_weight(sw)
    if D == 0.0:
        _zero(dz)
        return 0.0
    acc = 0.0  # float64
    for r in range(n):
        coef = t(sw[r] / D)
        row = 0.0
        for c in range(k):
            term, sig = _bce_one(z[r, c], target[r, c], one, zero)
            tv = target[r, c]
            row += term
            dz[r, c] = coef * (sig - tv)
        acc += sw[r] * row
    return acc / D
