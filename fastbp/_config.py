"""One home for fastbp's settings: dtypes, numerical constants, Numba flags, codes,
and every environment variable fastbp reads.

Environment variables
---------------------
Read once, when fastbp is imported:

FASTBP_NUMBA_CACHE=0    compile kernels without Numba's on-disk cache (default: on).
FASTBP_FASTMATH=1       let Numba reorder floating-point arithmetic (default: off;
                        off keeps the kernels within 1e-12 of the NumPy reference).
FASTBP_SPECIALIZE=0     train, predict and evaluate with the generic kernels instead
                        of ones generated for the network's layer stack (default: on).

Read at every use, so a running program may change them:

FASTBP_CACHE_DIR=path   the private folder for compiled kernels and generated kernel
                        source (default: under $NUMBA_CACHE_DIR, else
                        $XDG_CACHE_HOME/fastbp or ~/.cache/fastbp, else
                        $TMPDIR/fastbp-<uid>); see :mod:`fastbp._cache`. fastbp creates
                        it with mode 0700 and uses it only while it is a real folder
                        (not a symbolic link) of the current user that no other user
                        can write.
FASTBP_COMPILE_NOTICE=0 no "compiling ..." line on stderr when a first compile takes
                        over a second (default: on, and shown only on a terminal).
FASTBP_BLAS_THREADS=N   BLAS threads for every fastbp call (0: never limit; default:
                        one thread for small products, the library's default above).
FASTBP_MEMORY_BUDGET    the memory ``fit`` may use: bytes, ``"512M"``, ``"16G"``,
                        ``"50%"`` (of physical memory) or ``"off"`` (default: 80%
                        of the memory available now; see :mod:`fastbp._memory`).

Flags take 1/true/yes/on or 0/false/no/off (any case); empty means the
default. Any other value of a flag warns and keeps the default; a bad
number or size raises ``ValueError`` naming the variable where it is used.
"""
import os
import re
import warnings

import numpy as np

from . import _cache, _notice

DTYPES = {"float32": np.float32, "float64": np.float64}

_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def env_flag(name, default):
    """The boolean environment variable ``name`` (``default`` when unset or empty)."""
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value in _TRUE or value in _FALSE:
        return value in _TRUE
    warnings.warn(f"{name}={os.environ[name]!r} is not 1/0 (true/false, yes/no, on/off); "
                  f"using the default ({int(default)})", RuntimeWarning, stacklevel=2)
    return default


NUMBA_CACHE = env_flag("FASTBP_NUMBA_CACHE", True)
FASTMATH = env_flag("FASTBP_FASTMATH", False)
SPECIALIZE = env_flag("FASTBP_SPECIALIZE", True)
NUMBA_FLAGS = dict(cache=NUMBA_CACHE, fastmath=FASTMATH, nogil=True, error_model="numpy")
COMPILE_NOTICE = env_flag("FASTBP_COMPILE_NOTICE", True)


def cache_dir_setting():
    """``$FASTBP_CACHE_DIR`` (None when unset), read each time fastbp looks for its cache."""
    return os.environ.get("FASTBP_CACHE_DIR") or None


_cache.configure(NUMBA_CACHE, NUMBA_FLAGS, cache_dir_setting, COMPILE_NOTICE)


def blas_threads():
    """``FASTBP_BLAS_THREADS`` as an int (0: never limit), or None when unset."""
    env = os.environ.get("FASTBP_BLAS_THREADS", "").strip()
    if not env:
        return None
    try:
        return int(env)
    except ValueError:
        raise ValueError(f"FASTBP_BLAS_THREADS={env!r} is not a thread count; use an "
                         f"integer (0 or less: never limit)") from None


MEMORY_BUDGET_ENV = "FASTBP_MEMORY_BUDGET"
_SUFFIX = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def memory_budget_env():
    """The raw ``FASTBP_MEMORY_BUDGET`` text, or None when unset or blank."""
    env = os.environ.get(MEMORY_BUDGET_ENV)
    return env if env is not None and env.strip() else None


def parse_size(text, total=None, name=MEMORY_BUDGET_ENV):
    """Bytes from ``"123"``, ``"512M"``, ``"1.5G"``, ``"50%"`` (of ``total`` bytes);
    None for ``"off"``/``"0"``/``"none"``. ValueError naming ``name`` otherwise."""
    s = str(text).strip().upper().replace(" ", "")
    if s in ("OFF", "NONE", "0", "INF", "UNLIMITED"):
        return None
    try:
        if s.endswith("%"):
            pct = float(s[:-1])
            if not 0 < pct <= 1000 or total is None:
                raise ValueError
            return int(total * pct / 100)
        m = re.fullmatch(r"([0-9]*\.?[0-9]+(?:E[+-]?[0-9]+)?)([KMGT]?)(?:I?B)?", s)
        if m is None:
            raise ValueError
        value = float(m.group(1)) * _SUFFIX[m.group(2)]
        if not 0 < value < 2.0 ** 63:
            raise ValueError
        return int(value)
    except (ValueError, IndexError):
        raise ValueError(f"{name}={text!r} is not a memory size; use bytes or a size such as "
                         f"'512M', '16G', '50%', or 'off'") from None


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

    flags = dict(NUMBA_FLAGS)
    flags.update(kwargs)
    cache = flags.pop("cache")

    def attach(dispatcher):
        if not cache:
            return dispatcher
        _notice.install()
        return _cache.attach(dispatcher)

    if args and callable(args[0]):
        return attach(numba.njit(**flags)(args[0]))
    decorate = numba.njit(*args, **flags)
    return lambda fn: attach(decorate(fn))
