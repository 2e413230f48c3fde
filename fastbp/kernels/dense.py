"""Numba kernels of :mod:`fastbp.reference.dense` (see there for the maths).

Products of fewer than ``SMALL_GEMM`` multiply-adds run as plain loops (a BLAS
call costs about a microsecond before it does any work); larger ones call
``np.dot`` with an output argument, which Numba maps to SciPy's BLAS GEMM
without allocating. Transposed operands are F-contiguous views, which GEMM
takes as they are.
"""
import numpy as np

from .._config import SMALL_GEMM, njit


@njit
def dense_forward(x, W, b, out):
    """Numba kernel of :func:`fastbp.reference.dense.dense_forward`."""
    # x (n, i), W (i, o), b (o,) or (0,), out (n, o)
    n, i = x.shape
    o = W.shape[1]
    if n * i * o < SMALL_GEMM:
        zero = out.dtype.type(0)
        for r in range(n):
            for c in range(o):
                out[r, c] = zero
            for k in range(i):  # sum over k in order, row of W contiguous
                xv = x[r, k]
                for c in range(o):
                    out[r, c] += xv * W[k, c]
    else:
        np.dot(x, W, out)  # (n, o)
    if b.size != 0:
        for r in range(n):
            for c in range(o):
                out[r, c] += b[c]


@njit
def dense_backward(dout, x, W, dx, dW, db):
    """Numba kernel of :func:`fastbp.reference.dense.dense_backward`."""
    # dout (n, o), x (n, i), W (i, o), dx (n, i) or (0, i), dW (i, o), db (o,) or (0,)
    n, o = dout.shape
    i = x.shape[1]
    small = n * i * o < SMALL_GEMM
    zero = dW.dtype.type(0)
    if dx.shape[0] != 0:
        if small:
            for r in range(n):
                for k in range(i):  # dx[r, k] = dout[r, :] . W[k, :]
                    acc = zero
                    for c in range(o):
                        acc += dout[r, c] * W[k, c]
                    dx[r, k] = acc
        else:
            np.dot(dout, W.T, dx)  # (n, o) @ (o, i) -> (n, i)
    if small:
        for k in range(i):
            for c in range(o):
                dW[k, c] = zero
        for r in range(n):  # dW += outer(x[r], dout[r]), rows in order
            for k in range(i):
                xv = x[r, k]
                for c in range(o):
                    dW[k, c] += xv * dout[r, c]
    else:
        np.dot(x.T, dout, dW)  # (i, n) @ (n, o) -> (i, o)
    if db.size != 0:
        for c in range(o):
            db[c] = zero
        for r in range(n):
            for c in range(o):
                db[c] += dout[r, c]
