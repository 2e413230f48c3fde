"""Elementwise activations in NumPy: the readable truth for :mod:`fastbp.kernels.activations`.

Every forward takes ``x`` (n, d) and writes ``out`` (n, d); ``out`` may be ``x``
itself. Every backward takes the upstream gradient ``dout`` (n, d) and the
forward OUTPUT ``y`` (n, d) -- never the input: each of these derivatives is a
function of the output alone, so the input need not be kept -- and writes
``dx`` (n, d); ``dx`` may be ``dout`` itself.

Activation codes (see :mod:`fastbp._config`): IDENTITY=0, SIGMOID=1, RELU=2, TANH=3.
"""
import numpy as np

from .._config import IDENTITY, RELU, SIGMOID, TANH


def sigmoid_forward(x, out):
    """Logistic function ``out = 1 / (1 + exp(-x))``, without overflow.

    x : (n, d) array; out : (n, d) array, written (may be ``x``).

    Numerical trick: with ``e = exp(-|x|)``, which lies in (0, 1] and so never
    overflows, ``sigmoid(x) = 1 / (1 + e)`` for x >= 0 and ``e / (1 + e)`` for
    x < 0 (multiply top and bottom by exp(x)). The naive form overflows exp for
    x < -709 (float64) and warns; this one gives exactly 1 and 0 at +-1e4 with no
    warning (exp underflowing to 0 is silent).
    """
    e = np.exp(-np.abs(x))  # (n, d), in (0, 1]
    num = np.where(x >= 0, e.dtype.type(1), e)  # (n, d)
    np.divide(num, 1 + e, out=out)


def sigmoid_backward(dout, y, dx):
    """Gradient of the sigmoid: ``dx = dout * y * (1 - y)``, with ``y = sigmoid(x)``.

    dout : (n, d); y : (n, d) forward output; dx : (n, d) written (may be ``dout``).
    Evaluated left to right: ``(dout * y) * (1 - y)``.
    """
    np.multiply(dout * y, 1 - y, out=dx)


def relu_forward(x, out):
    """Rectifier ``out = max(x, 0)``.

    x : (n, d); out : (n, d) written (may be ``x``). NaN propagates (np.maximum).
    """
    np.maximum(x, 0, out=out)


def relu_backward(dout, y, dx):
    """Gradient of ReLU: ``dx = dout where y > 0, else 0`` (the subgradient at 0 is 0).

    dout : (n, d); y : (n, d) forward output; dx : (n, d) written (may be ``dout``).
    A select, not ``dout * (y > 0)``: an infinite ``dout`` where the unit is off
    gives 0, not NaN.
    """
    dx[...] = np.where(y > 0, dout, 0)


def tanh_forward(x, out):
    """Hyperbolic tangent ``out = tanh(x)``.

    x : (n, d); out : (n, d) written (may be ``x``). np.tanh saturates to +-1
    without overflow.
    """
    np.tanh(x, out=out)


def tanh_backward(dout, y, dx):
    """Gradient of tanh: ``dx = dout * (1 - y * y)``, with ``y = tanh(x)``.

    dout : (n, d); y : (n, d) forward output; dx : (n, d) written (may be ``dout``).
    """
    np.multiply(dout, 1 - y * y, out=dx)


def identity_forward(x, out):
    """Identity ``out = x`` (a copy; nothing when ``out`` is ``x``).

    x : (n, d); out : (n, d) written.
    """
    np.copyto(out, x)


def identity_backward(dout, y, dx):
    """Gradient of the identity: ``dx = dout`` (a copy).

    dout : (n, d); y : (n, d) unused; dx : (n, d) written (may be ``dout``).
    """
    np.copyto(dx, dout)


_FORWARD = {IDENTITY: identity_forward, SIGMOID: sigmoid_forward, RELU: relu_forward,
            TANH: tanh_forward}
_BACKWARD = {IDENTITY: identity_backward, SIGMOID: sigmoid_backward, RELU: relu_backward,
             TANH: tanh_backward}


def act_forward(x, act, out):
    """The forward of activation code ``act`` (IDENTITY, SIGMOID, RELU or TANH).

    x : (n, d); act : int code; out : (n, d) written (may be ``x``).
    """
    _FORWARD[act](x, out)


def act_backward(dout, y, act, dx):
    """The backward of activation code ``act``, from the forward output ``y``.

    dout : (n, d); y : (n, d) forward output; act : int code;
    dx : (n, d) written (may be ``dout``).
    """
    _BACKWARD[act](dout, y, dx)


def bias_act_forward(z, b, act, out):
    """Bias then activation, the pass that follows each GEMM: ``out = act(z + b)``.

    Parameters
    ----------
    z : (n, d) array
        Pre-activations without bias (the GEMM output).
    b : (d,) array, or (0,) for no bias
        Added to every row before the activation.
    act : int
        Activation code.
    out : (n, d) array, written; may be ``z``.

    The kernel does it in one pass over memory; here it is two NumPy passes with
    the same arithmetic (``z + b`` rounded, then the activation).
    """
    if b.size != 0:
        np.add(z, b, out=out)  # (n, d) + (d,)
    else:
        np.copyto(out, z)
    act_forward(out, act, out)
