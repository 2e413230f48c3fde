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
import sys

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


def defer_numba_blas_check():
    """Let Numba load its CPU registries without importing ``scipy.linalg``, where the
    kernels call NumPy's BLAS.

    When Numba first loads its registries (at a process's first compile or
    cache load), ``numba.np.arraymath`` imports ``scipy.linalg.cython_blas``
    to learn whether ``np.dot`` may call a BLAS: 0.3 s, about half of a warm
    first fit. fastbp's kernels never compile ``np.dot``, and fastbp depends on
    SciPy, so the answer is known to be yes. This answers that one question
    without the import: the stand-in puts Numba's own check back the moment it
    is called, so any later use of Numba's BLAS (an ``np.dot`` in the user's
    own code) runs the real check and imports SciPy as before. Nothing is done
    where the kernels call SciPy's BLAS, or once Numba's registries are loaded.
    """
    if cblas() is None or "numba.np.arraymath" in sys.modules:
        return
    from numba.np import linalg

    check = linalg.ensure_blas
    if getattr(check, "fastbp_stand_in", False):
        return

    def stand_in():
        linalg.ensure_blas = check

    stand_in.fastbp_stand_in = True
    linalg.ensure_blas = stand_in
