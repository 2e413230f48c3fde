"""Counter-based random numbers in NumPy: the readable truth for :mod:`fastbp.kernels.rng`.

There is no generator state: the j-th number of stream (key, counter) is a pure
function of the three integers, so both backends draw the same bits and a run
can be resumed from (key, counter) alone. Built on the SplitMix64 finalizer
(Steele, Lea & Flood 2014; the mixer of Java's SplittableRandom):

    mix(z) = z' ^ (z' >> 31), where, all arithmetic modulo 2**64,
        z' <- z + 0x9E3779B97F4A7C15
        z' <- (z' ^ (z' >> 30)) * 0xBF58476D1CE4E5B9
        z' <- (z' ^ (z' >> 27)) * 0x94D049BB133111EB

    base    = mix(key ^ mix(counter))         one per (key, counter)
    bits[j] = mix(base + j)                   64 random bits per element j

``mix`` is a bijection of 64-bit words with full avalanche, so distinct
(key, counter) give unrelated bases, and distinct j unrelated words.

Arithmetic is on uint64 ARRAYS, which wrap modulo 2**64 silently; NumPy's uint64
SCALARS warn on overflow, so scalars are carried as one-element arrays.
"""
import numpy as np

GOLDEN_GAMMA = np.uint64(0x9E3779B97F4A7C15)
MIX_M1 = np.uint64(0xBF58476D1CE4E5B9)
MIX_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)
_S11, _S40 = np.uint64(11), np.uint64(40)
TWO_M53 = 2.0 ** -53  # 53 random bits -> [0, 1) float64, exactly representable
TWO_M24 = 2.0 ** -24  # 24 random bits -> [0, 1) float32, exactly representable


def splitmix64(z):
    """SplitMix64 finalizer of every element of ``z``.

    z : uint64 ndarray (any shape). Returns a new uint64 ndarray of the same shape,
    ``mix(z)`` as in the module docstring; all arithmetic wraps modulo 2**64.
    """
    z = z + GOLDEN_GAMMA
    z = (z ^ (z >> _S30)) * MIX_M1
    z = (z ^ (z >> _S27)) * MIX_M2
    return z ^ (z >> _S31)


def stream_bits(key, counter, size):
    """The first ``size`` 64-bit words of stream (key, counter).

    key, counter : ints in [0, 2**63); size : int.
    Returns a (size,) uint64 array ``bits[j] = mix(mix(key ^ mix(counter)) + j)``.
    """
    k = np.array([key], dtype=np.uint64)  # (1,)
    c = np.array([counter], dtype=np.uint64)  # (1,)
    base = splitmix64(k ^ splitmix64(c))  # (1,)
    return splitmix64(base + np.arange(size, dtype=np.uint64))  # (size,)


def uniform53(bits):
    """Float64 uniforms ``u = (bits >> 11) * 2**-53`` in [0, 1) from 64-bit words.

    bits : uint64 ndarray. Returns a float64 ndarray of the same shape: the top 53
    bits, so every value is an exact multiple of 2**-53 and u < 1.
    """
    return (bits >> _S11).astype(np.float64) * TWO_M53


def hash_uniform(key, counter, out):
    """Fill ``out`` with uniforms in [0, 1) from stream (key, counter).

    Parameters
    ----------
    key : int in [0, 2**63)
    counter : int in [0, 2**63)
        (the Numba kernels take key and counter as int64; NumPy accepts any
        value below 2**64 and computes the same bits)
    out : float32 or float64 array of any shape (C-contiguous), written
        Element j in flat C order gets ``u[j]`` made from ``bits[j]`` (see
        :func:`stream_bits`): for float64 ``(bits[j] >> 11) * 2**-53`` (53 bits);
        for float32 ``(bits[j] >> 40) * 2**-24`` (24 bits), which is the float64
        value rounded DOWN to float32's precision -- rounding to nearest would
        turn values above 1 - 2**-25 into 1.0 and break u < 1.
    """
    flat = out.reshape(-1)  # (size,) view
    bits = stream_bits(key, counter, flat.size)  # (size,)
    if out.itemsize == 4:
        flat[:] = (bits >> _S40).astype(np.float64) * TWO_M24
    else:
        flat[:] = uniform53(bits)
