"""Losses in NumPy: the readable truth for :mod:`fastbp.kernels.losses`.

Each loss returns its value as a Python float and writes the gradient with
respect to its first argument. Elementwise terms are computed in the arrays'
dtype; the final sum that makes the scalar loss is accumulated in float64 in
both backends (the loss is a report, not a gradient: float32 models then report
the same loss from either backend regardless of summation order).
"""
import numpy as np


def mse_loss(pred, target, sum_reduction, half, dpred):
    """Mean (or summed) squared error, PyTorch ``MSELoss`` conventions.

    Parameters
    ----------
    pred, target : (n, k) arrays
    sum_reduction : bool
        True: sum over all elements (D = 1). False: mean over ALL n*k elements
        (D = n*k), as PyTorch's ``reduction="mean"``.
    half : bool
        True multiplies the loss by f = 1/2 (so the gradient has no factor 2).
    dpred : (n, k) array, written
        ``dpred = (2 f / D) * (pred - target)``; the coefficient is formed in
        float64 and rounded once to the dtype.

    Returns ``loss = f * sum((pred - target)**2) / D``.
    """
    f = 0.5 if half else 1.0
    D = 1 if sum_reduction else pred.size
    d = pred - target  # (n, k)
    np.multiply(pred.dtype.type(2.0 * f / D), d, out=dpred)
    return float(f * np.sum(d * d, dtype=np.float64) / D)


def softmax_cross_entropy(logits, labels, probs, dlogits):
    """Softmax cross-entropy with integer labels, mean over the batch (PyTorch
    ``CrossEntropyLoss``).

    Parameters
    ----------
    logits : (n, k) array
    labels : (n,) int64 array, values in [0, k)
    probs : (n, k) array, written: ``softmax(logits)`` row by row
    dlogits : (n, k) array, written: ``(probs - onehot(labels)) / n``

    Returns ``loss = mean_r (logsumexp(logits[r]) - logits[r, labels[r]])``.

    Numerical trick: with ``m = max_j logits[r, j]``, ``exp(logits - m)`` lies in
    (0, 1] (no overflow) and has at least one 1 (the sum is >= 1, its log never
    -inf); ``logsumexp = m + log(sum exp(logits - m))`` and
    ``softmax = exp(logits - m) / sum``. Finite for logits of +-1e4.
    """
    n = logits.shape[0]
    rows = np.arange(n)
    m = logits.max(axis=1, keepdims=True)  # (n, 1)
    e = np.exp(logits - m)  # (n, k), in (0, 1]
    s = e.sum(axis=1, keepdims=True)  # (n, 1), >= 1
    np.divide(e, s, out=probs)
    per_row = (m[:, 0] + np.log(s[:, 0])) - logits[rows, labels]  # (n,)
    dlogits[...] = probs
    dlogits[rows, labels] -= 1
    dlogits /= n
    return float(np.sum(per_row, dtype=np.float64) / n)


def bce_with_logits(z, target, dz):
    """Binary cross-entropy of ``sigmoid(z)`` against targets, from the logits z.

    Parameters
    ----------
    z : (n, k) array
        Pre-sigmoid values.
    target : (n, k) array, values in [0, 1]
    dz : (n, k) array, written: ``(sigmoid(z) - target) / (n*k)``

    Returns the mean over all n*k elements of
    ``-(t log sigmoid(z) + (1-t) log(1 - sigmoid(z)))``, computed as

        max(z, 0) - z*t + log1p(exp(-|z|))

    which is the same function but never forms log(0) or overflows exp (the
    argument of exp is <= 0), so it is finite for z = +-1e4 (PyTorch
    ``BCEWithLogitsLoss``). sigmoid(z) uses the same ``e = exp(-|z|)``:
    ``1/(1+e)`` for z >= 0, ``e/(1+e)`` otherwise.
    """
    N = z.size
    e = np.exp(-np.abs(z))  # (n, k), in (0, 1]
    sig = np.where(z >= 0, e.dtype.type(1), e) / (1 + e)  # (n, k)
    terms = (np.maximum(z, 0) - z * target) + np.log1p(e)  # (n, k)
    np.divide(sig - target, N, out=dz)
    return float(np.sum(terms, dtype=np.float64) / N)


# --------------------------------------------------------------------------- per-sample weights
# The weighted losses take one non-negative weight per row, ``sw (n,)``. A row's
# terms count ``sw[r]`` times and the "mean" divides by the total weight instead
# of the row count, so weights of 1 give the unweighted loss, an integer weight
# equals repeating the row, and scaling every weight by c changes nothing. A
# batch whose weights sum to 0 has loss 0 and a zero gradient (it teaches nothing).

def _total_weight(sw):
    """``sum(sw)`` in float64, or 0.0 (the caller then writes zeros)."""
    return float(np.sum(sw, dtype=np.float64))


def mse_loss_weighted(pred, target, sw, sum_reduction, half, dpred):
    """:func:`mse_loss` with a weight per row.

    Parameters
    ----------
    pred, target : (n, k) arrays
    sw : (n,) array of non-negative row weights
    sum_reduction, half : bool, as in :func:`mse_loss`
    dpred : (n, k) array, written: ``(2 f sw[r] / D) * (pred - target)``

    Returns ``f * sum_r sw[r] * sum_c (pred - target)[r, c]**2 / D`` with
    ``D = 1`` (sum) or ``D = k * sum(sw)`` (mean: the weighted mean over rows of
    the row's mean over its k outputs). The coefficients ``2 f sw[r] / D`` are
    formed in float64 and rounded once to the dtype.
    """
    f = 0.5 if half else 1.0
    W = _total_weight(sw)
    D = 1.0 if sum_reduction else pred.shape[1] * W
    if D == 0.0:
        dpred[...] = 0
        return 0.0
    d = pred - target  # (n, k)
    coef = (2.0 * f / D) * sw.astype(np.float64)  # (n,)
    np.multiply(coef.astype(pred.dtype)[:, None], d, out=dpred)
    rows = np.sum(d * d, axis=1, dtype=np.float64)  # (n,)
    return float(f * np.dot(sw.astype(np.float64), rows) / D)


def softmax_cross_entropy_weighted(logits, labels, sw, probs, dlogits):
    """:func:`softmax_cross_entropy` with a weight per row (PyTorch's
    ``reduction="none"`` times the weights, summed, over ``sum(sw)``).

    Parameters
    ----------
    logits : (n, k) array
    labels : (n,) int64 array, values in [0, k)
    sw : (n,) array of non-negative row weights
    probs : (n, k) array, written: ``softmax(logits)`` row by row
    dlogits : (n, k) array, written: ``(sw[r] / sum(sw)) * (probs - onehot(labels))``

    Returns ``sum_r sw[r] * (logsumexp(logits[r]) - logits[r, labels[r]]) / sum(sw)``,
    with the max-subtraction of :func:`softmax_cross_entropy`.
    """
    n = logits.shape[0]
    rows = np.arange(n)
    m = logits.max(axis=1, keepdims=True)  # (n, 1)
    e = np.exp(logits - m)  # (n, k), in (0, 1]
    s = e.sum(axis=1, keepdims=True)  # (n, 1), >= 1
    np.divide(e, s, out=probs)
    W = _total_weight(sw)
    if W == 0.0:
        dlogits[...] = 0
        return 0.0
    per_row = (m[:, 0] + np.log(s[:, 0])) - logits[rows, labels]  # (n,)
    coef = (sw.astype(np.float64) / W).astype(logits.dtype)  # (n,)
    dlogits[...] = probs
    dlogits[rows, labels] -= 1
    dlogits *= coef[:, None]
    return float(np.dot(sw.astype(np.float64), per_row.astype(np.float64)) / W)


def bce_with_logits_weighted(z, target, sw, dz):
    """:func:`bce_with_logits` with a weight per row.

    Parameters
    ----------
    z : (n, k) array of pre-sigmoid values
    target : (n, k) array, values in [0, 1]
    sw : (n,) array of non-negative row weights
    dz : (n, k) array, written: ``(sw[r] / (k sum(sw))) * (sigmoid(z) - target)``

    Returns ``sum_r sw[r] * sum_c bce[r, c] / (k * sum(sw))``, each term computed
    stably as in :func:`bce_with_logits`.
    """
    W = _total_weight(sw)
    D = z.shape[1] * W
    if D == 0.0:
        dz[...] = 0
        return 0.0
    e = np.exp(-np.abs(z))  # (n, k), in (0, 1]
    sig = np.where(z >= 0, e.dtype.type(1), e) / (1 + e)  # (n, k)
    terms = (np.maximum(z, 0) - z * target) + np.log1p(e)  # (n, k)
    coef = (sw.astype(np.float64) / D).astype(z.dtype)  # (n,)
    np.multiply(coef[:, None], sig - target, out=dz)
    rows = np.sum(terms, axis=1, dtype=np.float64)  # (n,)
    return float(np.dot(sw.astype(np.float64), rows) / D)
