"""One home for fastbp's settings: dtypes, numerical constants, Numba flags, codes.

Environment variables
---------------------
FASTBP_NUMBA_CACHE=0   compile kernels without Numba's on-disk cache (default: on).
FASTBP_FASTMATH=1      let Numba reorder floating-point arithmetic (default: off;
                       off keeps the kernels within 1e-12 of the NumPy reference).
"""
import os

import numpy as np

DTYPES = {"float32": np.float32, "float64": np.float64}

NUMBA_CACHE = os.environ.get("FASTBP_NUMBA_CACHE", "1") not in ("0", "false", "no", "")
FASTMATH = os.environ.get("FASTBP_FASTMATH", "0") in ("1", "true", "yes")
NUMBA_FLAGS = dict(cache=NUMBA_CACHE, fastmath=FASTMATH, nogil=True, error_model="numpy")

# Activation codes, shared by both backends (kernels cannot take strings cheaply).
IDENTITY, SIGMOID, RELU, TANH = 0, 1, 2, 3
ACTIVATIONS = {"identity": IDENTITY, "sigmoid": SIGMOID, "relu": RELU, "tanh": TANH}

# Below this many multiply-adds a dense product runs as plain loops instead of
# a BLAS call: BLAS's fixed cost (~1 us) dwarfs a 1x2 @ 2x4 product.
SMALL_GEMM = 4096


def njit(*args, **kwargs):
    """``numba.njit`` with fastbp's flags (cache, fastmath, nogil)."""
    import numba

    flags = dict(NUMBA_FLAGS)
    flags.update(kwargs)
    if args and callable(args[0]):
        return numba.njit(**flags)(args[0])
    return numba.njit(*args, **flags)
