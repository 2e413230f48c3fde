"""Numba kernels of :mod:`fastbp.reference.dense` (see there for the maths).

Products of fewer than ``SMALL_GEMM`` multiply-adds run as plain loops (a BLAS
call costs about a microsecond before it does any work); larger ones call
``np.dot`` with an output argument, which Numba maps to SciPy's BLAS GEMM
without allocating. Transposed operands are F-contiguous views, which GEMM
takes as they are; operands Numba types as non-contiguous views take the loops.
"""
import numpy as np
from numba.extending import overload

from .._config import SMALL_GEMM, njit


@njit
def _matmul_loops(a, b, out):
    # a (m, k), b (k, n), out (m, n): out = a @ b, sum over k in order; any layout
    m, k = a.shape
    n = b.shape[1]
    zero = out.dtype.type(0)
    for r in range(m):
        for c in range(n):
            out[r, c] = zero
        for j in range(k):
            av = a[r, j]
            for c in range(n):
                out[r, c] += av * b[j, c]


def _gemm(a, b, out):
    """``out = a @ b``: BLAS for contiguous operands, loops otherwise.

    Numba's ``np.dot(a, b, out)`` copies operands it cannot prove contiguous (an
    allocation) and does not compile for such an ``out``; array views made inside
    other kernels (``out[:, :k]``) can have that type, so they take the loops.
    """
    np.matmul(a, b, out=out)


@overload(_gemm)
def _gemm_typed(a, b, out):
    if a.layout in "CF" and b.layout in "CF" and out.layout == "C":
        def impl(a, b, out):
            np.dot(a, b, out)
    else:
        def impl(a, b, out):
            _matmul_loops(a, b, out)
    return impl


@njit
def dense_forward(x, W, b, out):
    """Numba kernel of :func:`fastbp.reference.dense.dense_forward`."""
    # x (n, i), W (i, o), b (o,) or (0,), out (n, o)
    n, i = x.shape
    o = W.shape[1]
    if n * i * o < SMALL_GEMM:
        _matmul_loops(x, W, out)  # (n, o)
    else:
        _gemm(x, W, out)  # (n, o)
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
            _gemm(dout, W.T, dx)  # (n, o) @ (o, i) -> (n, i)
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
        _gemm(x.T, dout, dW)  # (i, n) @ (n, o) -> (i, o)
    if db.size != 0:
        for c in range(o):
            db[c] = zero
        for r in range(n):
            for c in range(o):
                db[c] += dout[r, c]
