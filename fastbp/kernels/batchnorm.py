"""Numba kernels of :mod:`fastbp.reference.batchnorm` (see there for the maths).

Row-major passes over (n, d) arrays with the same operations, in the same
order, as the reference; the per-feature scratch of the forward pass lives in
the ``inv_std`` output, so nothing is allocated. Scalars (n, eps, momentum)
are rounded to the arrays' dtype first, as NumPy does with Python scalars.
"""
import numpy as np

from .._config import njit


@njit
def batchnorm_forward_train(x, gamma, beta, running_mean, running_var, momentum, eps,
                            xhat, inv_std, out):
    """Numba kernel of :func:`fastbp.reference.batchnorm.batchnorm_forward_train`."""
    # x (n, d), gamma/beta/running_mean/running_var (d,), xhat (n, d), inv_std (d,),
    # out (n, d)
    n, d = x.shape
    t = x.dtype.type
    nf = t(n)
    zero = t(0)
    one = t(1)
    mom = t(momentum)
    keep = t(1.0 - momentum)
    epsf = t(eps)
    acc = inv_std  # (d,) scratch: first the column sums of x, then of (x - mean)**2
    for c in range(d):
        acc[c] = zero
    for r in range(n):
        for c in range(d):
            acc[c] += x[r, c]
    for c in range(d):
        mean = acc[c] / nf
        acc[c] = mean
        running_mean[c] = keep * running_mean[c] + mom * mean
    for r in range(n):  # centre: xhat holds x - mean until the last pass
        for c in range(d):
            xhat[r, c] = x[r, c] - acc[c]
    for c in range(d):
        acc[c] = zero
    for r in range(n):
        for c in range(d):
            v = xhat[r, c]
            acc[c] += v * v
    for c in range(d):
        var = acc[c] / nf  # biased
        running_var[c] = keep * running_var[c] + ((mom * var) * nf) / t(n - 1)
        inv_std[c] = one / np.sqrt(var + epsf)
    for r in range(n):
        for c in range(d):
            xh = xhat[r, c] * inv_std[c]
            xhat[r, c] = xh
            out[r, c] = gamma[c] * xh + beta[c]


@njit
def batchnorm_forward_eval(x, gamma, beta, running_mean, running_var, eps, out):
    """Numba kernel of :func:`fastbp.reference.batchnorm.batchnorm_forward_eval`."""
    # x (n, d), gamma/beta/running_mean/running_var (d,), out (n, d)
    n, d = x.shape
    epsf = out.dtype.type(eps)
    for r in range(n):
        for c in range(d):
            std = np.sqrt(running_var[c] + epsf)
            out[r, c] = gamma[c] * (x[r, c] - running_mean[c]) / std + beta[c]


@njit
def batchnorm_backward(dout, xhat, inv_std, gamma, dx, dgamma, dbeta):
    """Numba kernel of :func:`fastbp.reference.batchnorm.batchnorm_backward`."""
    # dout (n, d), xhat (n, d), inv_std/gamma (d,), dx (n, d) or (0, d),
    # dgamma/dbeta (d,)
    n, d = dout.shape
    t = dout.dtype.type
    nf = t(n)
    zero = t(0)
    for c in range(d):
        dbeta[c] = zero
        dgamma[c] = zero
    for r in range(n):
        for c in range(d):
            g = dout[r, c]
            dbeta[c] += g
            dgamma[c] += g * xhat[r, c]
    if dx.shape[0] != 0:
        for r in range(n):
            for c in range(d):
                k = gamma[c] * inv_std[c] / nf
                dx[r, c] = k * ((nf * dout[r, c] - dbeta[c]) - xhat[r, c] * dgamma[c])
