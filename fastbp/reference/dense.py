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


def dense_backward_sgd(dout, x, W, lr, dx, db):
    """:func:`dense_backward` with the plain SGD step of ``W`` applied at once.

    Parameters
    ----------
    dout : (n, o) array
        dL/d out.
    x : (n, i) array
        The forward input.
    W : (i, o) array, updated
        ``W -= lr * (x.T @ dout)``, after ``dx`` is computed from the old ``W``.
    lr : float
        Learning rate, used as :func:`fastbp.reference.optim.sgd_update` uses it.
    dx : (n, i) array, written; or (0, i) when the input gradient is not wanted
        ``dx = dout @ W.T`` with the weights before the step.
    db : (o,) array, written; or (0,) for a layer without bias
        ``db = dout.sum(axis=0)``, rows summed in order (the caller steps the bias).

    The same numbers as :func:`dense_backward` followed by ``sgd_update`` with no
    momentum or weight decay on ``W``; the Numba kernel does the weight step as
    one GEMM with alpha = -lr and beta = 1, so the weight gradient is never stored.
    """
    if dx.shape[0] != 0:
        np.matmul(dout, W.T, out=dx)  # (n, o) @ (o, i) -> (n, i)
    W -= lr * (x.T @ dout)  # (i, o), the arithmetic of sgd_update's ``params -= lr * g``
    if db.size != 0:
        np.sum(dout, axis=0, out=db)  # (o,)
