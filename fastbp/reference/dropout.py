"""Inverted dropout in NumPy: the readable truth for :mod:`fastbp.kernels.dropout`.

Training multiplies by a mask that is 0 with probability p and 1/(1-p)
otherwise, so E[out] = x and evaluation needs no rescaling. The mask comes from
the counter-based stream of :mod:`fastbp.reference.rng`; no global RNG is used.
"""
import numpy as np

from .rng import stream_bits, uniform53


def dropout_mask(key, counter, p, mask):
    """Draw an inverted-dropout mask from stream (key, counter).

    Parameters
    ----------
    key : int in [0, 2**63)
    counter : int in [0, 2**63)
        Usually the training step; each step gets a fresh mask.
    p : float in [0, 1)
        Probability of dropping a unit.
    mask : (n, d) array, written
        ``mask = 1/(1-p) where u >= p else 0``, with ``u[j]`` the float64 uniform
        of element j in flat C order (``(bits[j] >> 11) * 2**-53``). The comparison
        is made in float64 for every dtype, so float32 and float64 models draw the
        same mask; the kept value is ``1/(1-p)`` computed in float64 then rounded
        to the mask's dtype. p = 0 keeps every unit (u >= 0 always).
    """
    u = uniform53(stream_bits(key, counter, mask.size)).reshape(mask.shape)  # (n, d)
    scale = mask.dtype.type(1.0 / (1.0 - p))
    mask[...] = np.where(u >= p, scale, mask.dtype.type(0))


def dropout_forward(x, mask, out):
    """``out = x * mask``.  x, mask, out : (n, d); out may be ``x``."""
    np.multiply(x, mask, out=out)


def dropout_backward(dout, mask, dx):
    """``dx = dout * mask`` (the mask is the Jacobian's diagonal).

    dout, mask, dx : (n, d); dx may be ``dout``.
    """
    np.multiply(dout, mask, out=dx)
