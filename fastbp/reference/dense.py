"""Dense (fully-connected) layer in NumPy: the readable truth for :mod:`fastbp.kernels.dense`.

Weights are stored (in, out), so the forward pass is ``out = x @ W + b`` with no
transpose; a batch is the rows of ``x``.
"""
import numpy as np


def dense_forward(x, W, b, out):
    """Affine map of a batch: ``out = x @ W + b``.

    Parameters
    ----------
    x : (n, i) array
        Inputs, one sample a row.
    W : (i, o) array
        Weights.
    b : (o,) array, or (0,) for a layer without bias
        Bias, added to every row.
    out : (n, o) array, written
        ``out[r, c] = sum_k x[r, k] * W[k, c] + b[c]``.

    The product is one GEMM (BLAS); the bias is added afterwards, so the sum over
    ``k`` is the same whether or not there is a bias.
    """
    np.matmul(x, W, out=out)  # (n, o)
    if b.size != 0:
        out += b  # (n, o) + (o,)


def dense_backward(dout, x, W, dx, dW, db):
    """Gradients of :func:`dense_forward`, given the gradient of its output.

    Parameters
    ----------
    dout : (n, o) array
        dL/d out.
    x : (n, i) array
        The forward input.
    W : (i, o) array
        The weights.
    dx : (n, i) array, written; or (0, i) when the input gradient is not wanted
        ``dx = dout @ W.T``  (dL/dx[r, k] = sum_c dout[r, c] W[k, c]).
    dW : (i, o) array, written
        ``dW = x.T @ dout``  (dL/dW[k, c] = sum_r x[r, k] dout[r, c]).
    db : (o,) array, written; or (0,) for a layer without bias
        ``db = dout.sum(axis=0)``, rows summed in order.

    All outputs are overwritten, never accumulated into.
    """
    if dx.shape[0] != 0:
        np.matmul(dout, W.T, out=dx)  # (n, o) @ (o, i) -> (n, i)
    np.matmul(x.T, dout, out=dW)  # (i, n) @ (n, o) -> (i, o)
    if db.size != 0:
        np.sum(dout, axis=0, out=db)  # (o,)
