"""Numba kernels of :mod:`fastbp.reference.dropout` (see there for the maths)."""
from .._config import njit
from .rng import stream_base, uniform53_at


@njit
def dropout_mask(key, counter, p, mask):
    """Numba kernel of :func:`fastbp.reference.dropout.dropout_mask`."""
    # mask (n, d); element (r, c) uses flat C index j = r*d + c
    n, d = mask.shape
    base = stream_base(key, counter)
    scale = mask.dtype.type(1.0 / (1.0 - p))
    zero = mask.dtype.type(0)
    for r in range(n):
        for c in range(d):
            u = uniform53_at(base, r * d + c)  # float64 for every dtype
            mask[r, c] = scale if u >= p else zero


@njit
def dropout_forward(x, mask, out):
    """Numba kernel of :func:`fastbp.reference.dropout.dropout_forward`."""
    # x (n, d), mask (n, d), out (n, d)
    for r in range(x.shape[0]):
        for c in range(x.shape[1]):
            out[r, c] = x[r, c] * mask[r, c]


@njit
def dropout_backward(dout, mask, dx):
    """Numba kernel of :func:`fastbp.reference.dropout.dropout_backward`."""
    # dout (n, d), mask (n, d), dx (n, d)
    for r in range(dout.shape[0]):
        for c in range(dout.shape[1]):
            dx[r, c] = dout[r, c] * mask[r, c]
