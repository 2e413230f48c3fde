"""Numba kernels of :mod:`fastbp.reference.activations` (see there for the maths).

Elementwise loops over (n, d) arrays; every output may alias its first input
(each element is read before it is written). Scalar constants are made in the
array's dtype so float32 arithmetic stays float32, as in NumPy.
"""
import numpy as np

from .._config import RELU, SIGMOID, TANH, njit  # else: IDENTITY


# One element of each activation and of its gradient: every kernel that computes
# them (the batch loops here, the per-sample kernels in online.py and the
# generated ones) calls these, inlined where they are called. ``one``/``zero``
# are in the array's dtype.
@njit(inline="always")
def _sigmoid(v, one):
    # exp of a non-positive argument only: no overflow for any finite v
    if v >= 0:
        return one / (one + np.exp(-v))
    e = np.exp(v)
    return e / (one + e)


@njit(inline="always")
def _relu(v, zero):
    # max(v, 0) as np.maximum computes it: NaN and -0.0 pass through
    return zero if v < zero else v


@njit(inline="always")
def _sigmoid_grad(g, y, one):
    # d loss / d x from g = d loss / d y and the output y, left to right
    return (g * y) * (one - y)


@njit(inline="always")
def _relu_grad(g, y, zero):
    # a select: an infinite g where the unit is off gives 0, not NaN
    return g if y > zero else zero


@njit(inline="always")
def _tanh_grad(g, y, one):
    return g * (one - y * y)


# The same five, compiled once to be called: for straight-line code that uses them
# many times over (the per-sample step written out unit by unit, see
# fastbp.kernels.specialize_online). Numba inlines an ``inline="always"`` function
# at every call site, each costing tens of milliseconds of compile; a call is
# inlined by LLVM instead, at no cost to the step's speed.
_CALLED = dict(no_cpython_wrapper=True, no_cfunc_wrapper=True)


@njit(**_CALLED)
def _sigmoid_called(v, one):
    return _sigmoid(v, one)


@njit(**_CALLED)
def _relu_called(v, zero):
    return _relu(v, zero)


@njit(**_CALLED)
def _sigmoid_grad_called(g, y, one):
    return _sigmoid_grad(g, y, one)


@njit(**_CALLED)
def _relu_grad_called(g, y, zero):
    return _relu_grad(g, y, zero)


@njit(**_CALLED)
def _tanh_grad_called(g, y, one):
    return _tanh_grad(g, y, one)


@njit
def sigmoid_forward(x, out):
    """Numba kernel of :func:`fastbp.reference.activations.sigmoid_forward`."""
    # x (n, d), out (n, d)
    one = out.dtype.type(1)
    for r in range(x.shape[0]):
        for c in range(x.shape[1]):
            out[r, c] = _sigmoid(x[r, c], one)


@njit
def sigmoid_backward(dout, y, dx):
    """Numba kernel of :func:`fastbp.reference.activations.sigmoid_backward`."""
    # dout (n, d), y (n, d), dx (n, d)
    one = dx.dtype.type(1)
    for r in range(dout.shape[0]):
        for c in range(dout.shape[1]):
            dx[r, c] = _sigmoid_grad(dout[r, c], y[r, c], one)


@njit
def relu_forward(x, out):
    """Numba kernel of :func:`fastbp.reference.activations.relu_forward`."""
    # x (n, d), out (n, d)
    zero = out.dtype.type(0)
    for r in range(x.shape[0]):
        for c in range(x.shape[1]):
            out[r, c] = _relu(x[r, c], zero)


@njit
def relu_backward(dout, y, dx):
    """Numba kernel of :func:`fastbp.reference.activations.relu_backward`."""
    # dout (n, d), y (n, d), dx (n, d)
    zero = dx.dtype.type(0)
    for r in range(dout.shape[0]):
        for c in range(dout.shape[1]):
            dx[r, c] = _relu_grad(dout[r, c], y[r, c], zero)


@njit
def tanh_forward(x, out):
    """Numba kernel of :func:`fastbp.reference.activations.tanh_forward`."""
    # x (n, d), out (n, d)
    for r in range(x.shape[0]):
        for c in range(x.shape[1]):
            out[r, c] = np.tanh(x[r, c])


@njit
def tanh_backward(dout, y, dx):
    """Numba kernel of :func:`fastbp.reference.activations.tanh_backward`."""
    # dout (n, d), y (n, d), dx (n, d)
    one = dx.dtype.type(1)
    for r in range(dout.shape[0]):
        for c in range(dout.shape[1]):
            dx[r, c] = _tanh_grad(dout[r, c], y[r, c], one)


@njit
def identity_forward(x, out):
    """Numba kernel of :func:`fastbp.reference.activations.identity_forward`."""
    # x (n, d), out (n, d)
    for r in range(x.shape[0]):
        for c in range(x.shape[1]):
            out[r, c] = x[r, c]


@njit
def identity_backward(dout, y, dx):
    """Numba kernel of :func:`fastbp.reference.activations.identity_backward`."""
    # dout (n, d), y (n, d) unused, dx (n, d)
    for r in range(dout.shape[0]):
        for c in range(dout.shape[1]):
            dx[r, c] = dout[r, c]


@njit
def act_forward(x, act, out):
    """Numba kernel of :func:`fastbp.reference.activations.act_forward`."""
    # x (n, d), out (n, d)
    if act == SIGMOID:
        sigmoid_forward(x, out)
    elif act == RELU:
        relu_forward(x, out)
    elif act == TANH:
        tanh_forward(x, out)
    else:  # IDENTITY
        identity_forward(x, out)


@njit
def act_backward(dout, y, act, dx):
    """Numba kernel of :func:`fastbp.reference.activations.act_backward`."""
    # dout (n, d), y (n, d), dx (n, d). In place (dx is dout), the same array is
    # passed as both, so the compiler sees one pointer and vectorises the sigmoid
    # and tanh loops instead of falling back to scalar code after its overlap
    # check. ReLU in place still becomes a branch per element (it stores only
    # where the unit is off), so network.backward writes the gradient out of place.
    if dout.ctypes.data == dx.ctypes.data:
        _act_backward(dx, y, act, dx)
    else:
        _act_backward(dout, y, act, dx)


@njit
def _act_backward(dout, y, act, dx):
    if act == SIGMOID:
        sigmoid_backward(dout, y, dx)
    elif act == RELU:
        relu_backward(dout, y, dx)
    elif act == TANH:
        tanh_backward(dout, y, dx)
    else:  # IDENTITY
        identity_backward(dout, y, dx)


@njit
def bias_act_forward(z, b, act, out):
    """Numba kernel of :func:`fastbp.reference.activations.bias_act_forward`."""
    # z (n, d), b (d,) or (0,), out (n, d); one pass: add bias, apply act, store.
    # The activation is chosen once, outside the loops, so each inner loop is
    # branch-free over a contiguous row and vectorises (in place: one array, as
    # in act_backward).
    if z.ctypes.data == out.ctypes.data:
        _bias_act(out, b, act, out)
    else:
        _bias_act(z, b, act, out)


@njit
def _bias_act(z, b, act, out):
    if b.size == 0:
        act_forward(z, act, out)
    elif act == SIGMOID:
        _bias_sigmoid(z, b, out)
    elif act == RELU:
        _bias_relu(z, b, out)
    elif act == TANH:
        _bias_tanh(z, b, out)
    else:  # IDENTITY
        _bias_identity(z, b, out)


@njit
def _bias_sigmoid(z, b, out):
    one = out.dtype.type(1)
    for r in range(z.shape[0]):
        for c in range(z.shape[1]):
            out[r, c] = _sigmoid(z[r, c] + b[c], one)


@njit
def _bias_relu(z, b, out):
    zero = out.dtype.type(0)
    for r in range(z.shape[0]):
        for c in range(z.shape[1]):
            out[r, c] = _relu(z[r, c] + b[c], zero)


@njit
def _bias_tanh(z, b, out):
    for r in range(z.shape[0]):
        for c in range(z.shape[1]):
            out[r, c] = np.tanh(z[r, c] + b[c])


@njit
def _bias_identity(z, b, out):
    for r in range(z.shape[0]):
        for c in range(z.shape[1]):
            out[r, c] = z[r, c] + b[c]
