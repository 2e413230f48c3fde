"""One home for fastbp's settings: dtypes, numerical constants, Numba flags, codes.

Environment variables
---------------------
FASTBP_NUMBA_CACHE=0   compile kernels without Numba's on-disk cache (default: on).
FASTBP_FASTMATH=1      let Numba reorder floating-point arithmetic (default: off;
                       off keeps the kernels within 1e-12 of the NumPy reference).
FASTBP_CACHE_DIR=PATH  the private folder for compiled kernels (default: under
                       $NUMBA_CACHE_DIR, else $XDG_CACHE_HOME/fastbp or ~/.cache/fastbp,
                       else $TMPDIR/fastbp-<uid>); see :mod:`fastbp._cache`. fastbp
                       creates it with mode 0700 and uses it only while it is a real
                       folder (not a symbolic link) of the current user that no other
                       user can write.
FASTBP_COMPILE_NOTICE=0  no "compiling ..." line on stderr when a first compile takes
                       over a second (default: on, and shown only on a terminal).
"""
import os

import numpy as np

DTYPES = {"float32": np.float32, "float64": np.float64}

NUMBA_CACHE = os.environ.get("FASTBP_NUMBA_CACHE", "1") not in ("0", "false", "no", "")
FASTMATH = os.environ.get("FASTBP_FASTMATH", "0") in ("1", "true", "yes")
NUMBA_FLAGS = dict(cache=NUMBA_CACHE, fastmath=FASTMATH, nogil=True, error_model="numpy")
COMPILE_NOTICE = os.environ.get("FASTBP_COMPILE_NOTICE", "1") not in ("0", "false", "no", "")


def cache_dir_setting():
    """``$FASTBP_CACHE_DIR`` (None when unset), read each time fastbp looks for its cache."""
    return os.environ.get("FASTBP_CACHE_DIR") or None


# Activation codes, shared by both backends (kernels cannot take strings cheaply).
IDENTITY, SIGMOID, RELU, TANH = 0, 1, 2, 3
ACTIVATIONS = {"identity": IDENTITY, "sigmoid": SIGMOID, "relu": RELU, "tanh": TANH}

# Below this many multiply-adds a dense product runs as plain loops instead of
# a BLAS call: BLAS's fixed cost (~1 us) dwarfs a 1x2 @ 2x4 product.
SMALL_GEMM = 4096


def njit(*args, **kwargs):
    """``numba.njit`` with fastbp's flags (cache, fastmath, nogil).

    Every fastbp kernel is compiled through here: with ``cache=True`` its
    machine code goes to fastbp's private, versioned cache folder
    (:mod:`fastbp._cache`), never to the places Numba would pick itself.
    """
    import numba

    from . import _cache

    flags = dict(NUMBA_FLAGS)
    flags.update(kwargs)
    cache = flags.pop("cache")

    def attach(dispatcher):
        return _cache.attach(dispatcher) if cache else dispatcher

    if args and callable(args[0]):
        return attach(numba.njit(**flags)(args[0]))
    decorate = numba.njit(*args, **flags)
    return lambda fn: attach(decorate(fn))
