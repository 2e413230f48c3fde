"""The BLAS whose ``?gemm`` the compiled kernels call.

NumPy's wheels bundle an OpenBLAS built with 64-bit integers, whose CBLAS
entry points carry a ``scipy_`` prefix and a ``64_`` suffix
(``scipy_cblas_dgemm64_``): the library behind NumPy's own ``@``, loaded by
the time fastbp runs. The kernels call it directly, by name, so their
products are NumPy's products, the bound the yardstick measures. Where NumPy
has no such library (a build against another BLAS), they call SciPy's BLAS
through Numba's ``numba_xxgemm`` helper instead.

:func:`cblas` says which; the kernels' cache key records it
(:func:`identity`), since the compiled code names the function it calls.
"""
import ctypes
import functools
import glob
import os

import numpy as np

NAMES = {"float64": "scipy_cblas_dgemm64_", "float32": "scipy_cblas_sgemm64_"}
ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112      # the CBLAS enums


@functools.lru_cache(maxsize=None)
def cblas():
    """{dtype name: address of NumPy's CBLAS ?gemm, "path": its library file}, or None
    where NumPy has no 64-bit-integer OpenBLAS of its own loaded."""
    pkg = os.path.dirname(np.__file__)
    for pattern in (os.path.join(os.path.dirname(pkg), "numpy.libs", "*openblas64*"),
                    os.path.join(pkg, ".dylibs", "*openblas64*")):
        for path in sorted(glob.glob(pattern)):
            try:    # the copy NumPy loaded, never a second one with its own threads
                lib = ctypes.CDLL(path, mode=getattr(os, "RTLD_NOLOAD", 0))
                found = {dt: ctypes.cast(getattr(lib, name), ctypes.c_void_p).value
                         for dt, name in NAMES.items()}
            except (OSError, AttributeError):
                continue
            return {**found, "path": path}
    return None


def identity():
    """Which BLAS the kernels call, for the cache key."""
    found = cblas()
    return "numba_xxgemm (SciPy)" if found is None else os.path.basename(found["path"])
