"""Numba kernels of :mod:`fastbp.reference.rng` (see there for the construction).

Every integer is cast to ``np.uint64`` explicitly: Numba turns mixed
int64/uint64 arithmetic into int64 or float64, which would change the bits.
The scalar helpers :func:`splitmix64`, :func:`stream_base` and
:func:`uniform53_at` are shared with :mod:`fastbp.kernels.dropout`.
"""
import numpy as np

from .._config import njit

GOLDEN_GAMMA = np.uint64(0x9E3779B97F4A7C15)
MIX_M1 = np.uint64(0xBF58476D1CE4E5B9)
MIX_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)
_S11, _S40 = np.uint64(11), np.uint64(40)
TWO_M53 = 2.0 ** -53
TWO_M24 = 2.0 ** -24


@njit
def splitmix64(z):
    """Numba kernel of :func:`fastbp.reference.rng.splitmix64`, on one uint64 scalar."""
    z = np.uint64(z) + GOLDEN_GAMMA
    z = (z ^ (z >> _S30)) * MIX_M1
    z = (z ^ (z >> _S27)) * MIX_M2
    return z ^ (z >> _S31)


@njit
def stream_base(key, counter):
    """``mix(key ^ mix(counter))``, the per-(key, counter) word of
    :func:`fastbp.reference.rng.stream_bits`."""
    return splitmix64(np.uint64(key) ^ splitmix64(np.uint64(counter)))


@njit
def uniform53_at(base, j):
    """Float64 uniform of element j: ``(mix(base + j) >> 11) * 2**-53``, as
    :func:`fastbp.reference.rng.uniform53` of :func:`fastbp.reference.rng.stream_bits`."""
    return np.float64(splitmix64(base + np.uint64(j)) >> _S11) * TWO_M53


@njit
def hash_uniform(key, counter, out):
    """Numba kernel of :func:`fastbp.reference.rng.hash_uniform`."""
    # out: any shape; filled in flat C order
    flat = out.flat  # (size,) iterator view, indexable for any layout
    base = stream_base(key, counter)
    if out.itemsize == 4:  # float32: top 24 bits, so the value stays below 1
        for j in range(out.size):
            h = splitmix64(base + np.uint64(j))
            flat[j] = np.float64(h >> _S40) * TWO_M24
    else:
        for j in range(out.size):
            flat[j] = uniform53_at(base, j)
