"""Input checking, in one place: every public entry point validates here, once, at the edge.

Each helper either returns the value in the form the kernels want (a
C-contiguous array of the model's dtype, a plain int or float) or raises a
``TypeError`` / ``ValueError`` whose one-line message names the argument.
It imports only the plan's constants.
"""
import math
import numbers
import os
import stat

import numpy as np

from .plan import BCE, SOFTMAX_CE


# --------------------------------------------------------------------------- scalars
def check_int(value, name, minimum=1):
    """``value`` as an int >= ``minimum`` (bool and non-integers refused)."""
    if type(value) is not int and (isinstance(value, bool)
                                   or not isinstance(value, numbers.Integral)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_float(value, name, low=None, high=None, low_open=False, high_open=False):
    """``value`` as a finite float inside the given (open or closed) bounds."""
    if type(value) is not float and (isinstance(value, bool)
                                     or not isinstance(value, numbers.Real)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    bad = not math.isfinite(value)
    if low is not None:
        bad |= value <= low if low_open else value < low
    if high is not None:
        bad |= value >= high if high_open else value > high
    if bad:
        lo = "" if low is None else ("(" if low_open else "[") + f"{low}"
        hi = "" if high is None else f"{high}" + (")" if high_open else "]")
        raise ValueError(f"{name} must be a finite number in {lo or '(-inf'}, {hi or 'inf)'}, got {value}")
    return value


def check_bool(value, name):
    """``value`` as a bool; anything but True/False (or numpy's) is a TypeError."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


# --------------------------------------------------------------------------- arrays
def as_float_array(a, name, dtype):
    """``a`` as a C-contiguous float array of ``dtype``; rejects non-numeric input."""
    if type(a) is np.ndarray and a.dtype == dtype and a.flags.c_contiguous:
        return a                        # already what the kernels take: nothing to convert
    if isinstance(a, (str, bytes)):
        raise TypeError(f"{name} must be a numeric array, got a string")
    try:
        arr = np.asarray(a)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{name} could not be read as an array: {exc}") from None
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers, got dtype {arr.dtype}")
    with np.errstate(over="ignore"):    # values beyond dtype's range: the caller says so
        return np.ascontiguousarray(arr, dtype=dtype)


def all_finite(X, block=1 << 18):
    """``np.isfinite(X).all()`` for a 2-D X, a block of rows at a time (no n x d temporary)."""
    if X.size <= block:
        return bool(np.isfinite(X).all())
    rows = max(1, block // max(1, X.shape[1]))
    return all(np.isfinite(X[i:i + rows]).all() for i in range(0, X.shape[0], rows))


def non_finite(raw, name, dtype):
    """Why ``raw`` is not finite as ``dtype``: NaN/inf given, or values beyond its range."""
    try:
        a = np.asarray(raw)
        if a.dtype.kind in "biu" or (a.dtype.kind == "f" and np.isfinite(a).all()):
            big = float(max(abs(a.max()), abs(a.min())))
            return (f"{name} holds values up to {big:.3g} in magnitude, beyond the range of "
                    f"{dtype.name} (about {float(np.finfo(dtype).max):.3g}); scale the data or "
                    f"use dtype='float64'")
    except (TypeError, ValueError, OverflowError):
        pass
    return f"{name} contains NaN or infinite values"


def overflow(what, X, dtype):
    """The error for a computation that overflowed although X was finite."""
    big = float(max(abs(X.max()), abs(X.min())))
    return FloatingPointError(
        f"{what} overflowed to inf/NaN in {dtype.name} for this X (largest |value| {big:.3g}); "
        f"scale the inputs (e.g. standardise them) or use dtype='float64'")


def check_X(X, n_inputs, dtype, name="X"):
    """Inputs as a finite C-contiguous (n, n_inputs) array of ``dtype``, n >= 1."""
    raw = X
    X = as_float_array(X, name, dtype)
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {X.shape}")
    if X.shape[0] == 0:
        raise ValueError(f"{name} is empty (0 samples)")
    if X.shape[1] != n_inputs:
        raise ValueError(f"{name} has {X.shape[1]} features but the model expects {n_inputs}")
    if not all_finite(X):
        raise ValueError(non_finite(raw, name, dtype))
    return X


def _labels(arr, n, k, name):
    """Integer class labels (n,) from labels or one-hot rows (SoftmaxCrossEntropy)."""
    if arr.ndim == 2 and arr.shape[1] == k and k > 1:
        ok = np.all((arr == 0) | (arr == 1), axis=1) & (arr.sum(axis=1) == 1)
        if not ok.all():
            raise ValueError(f"{name} has {k} columns but row {int(np.argmin(ok))} is "
                             "not one-hot; give integer labels (n,) or one-hot rows")
        labels = np.argmax(arr, axis=1)
    elif arr.ndim == 1 or (arr.ndim == 2 and arr.shape[1] == 1):
        labels = arr.reshape(n)
        if labels.dtype.kind == "f" and not np.all(labels == np.round(labels)):
            raise ValueError(f"{name} holds non-integer class labels")
    else:
        raise ValueError(f"{name} must be integer labels (n,) or one-hot (n, {k}), "
                         f"got shape {arr.shape}")
    if labels.min() < 0 or labels.max() >= k:
        raise ValueError(f"{name} has labels outside [0, {k}): found "
                         f"{labels.min()}..{labels.max()}")
    return np.ascontiguousarray(labels, dtype=np.int64)


def check_y(y, n, k, loss_code, dtype, name="y"):
    """Targets as (Yf (n, k) float, Yi (n,) int64) for a loss; the unused one is empty."""
    if isinstance(y, (str, bytes)):
        raise TypeError(f"{name} must be a numeric array, got a string")
    arr = np.asarray(y)
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers, got dtype {arr.dtype}")
    if arr.shape[:1] != (n,):
        raise ValueError(f"{name} has {arr.shape[0] if arr.ndim else 0} rows but X has {n}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    empty_f = np.zeros((0, 0), dtype=dtype)
    if loss_code == SOFTMAX_CE:
        return empty_f, _labels(arr, n, k, name)
    if arr.ndim == 1 and k == 1:
        arr = arr.reshape(n, 1)
    if arr.ndim != 2 or arr.shape[1] != k:
        raise ValueError(f"{name} must have shape ({n}, {k}) to match the model's {k} "
                         f"output(s), got {arr.shape}")
    if loss_code == BCE and (arr.min() < 0 or arr.max() > 1):
        raise ValueError(f"{name} must lie in [0, 1] for BinaryCrossEntropy")
    with np.errstate(over="ignore"):
        Yf = np.ascontiguousarray(arr, dtype=dtype)
    if not np.isfinite(Yf).all():
        raise ValueError(non_finite(arr, name, dtype))
    return Yf, np.zeros(0, dtype=np.int64)


def check_weights(weights, shapes, dtype):
    """A list of arrays of ``shapes`` (``get_weights`` order) as finite ``dtype`` arrays."""
    if not isinstance(weights, (list, tuple)):
        raise TypeError("weights must be a list of arrays in get_weights() order")
    if len(weights) != len(shapes):
        raise ValueError(f"weights: expected {len(shapes)} arrays (in get_weights() "
                         f"order), got {len(weights)}")
    arrays = []
    for i, (w, shape) in enumerate(zip(weights, shapes)):
        a = as_float_array(w, f"weights[{i}]", dtype)
        if a.shape != shape:
            raise ValueError(f"weights[{i}] has shape {a.shape}, expected {shape}")
        if not np.isfinite(a).all():
            raise ValueError(f"weights[{i}] contains NaN or infinite values")
        arrays.append(a)
    return arrays


# --------------------------------------------------------------------------- paths
def check_sample_weight(sample_weight, n, dtype):
    """Row weights as a contiguous (n,) array of ``dtype``; (0,) for None."""
    if sample_weight is None:
        return np.zeros(0, dtype=dtype)
    sw = as_float_array(sample_weight, "sample_weight", dtype)
    if sw.shape != (n,):
        raise ValueError(f"sample_weight must have shape ({n},) to match X, got {sw.shape}")
    if not np.isfinite(sw).all() or (sw < 0).any():
        raise ValueError("sample_weight must hold finite, non-negative numbers")
    if not sw.any():
        raise ValueError("sample_weight is all zeros; nothing would be learned")
    return sw


def check_path(path, name="path"):
    """``path`` as a str after checking a model file may be written there.

    A str or os.PathLike naming a file (not a folder) in a folder that
    exists. An existing target must be a regular file (a symbolic link is
    followed to one; a dangling link is refused, as ``cp`` does) that the
    caller may write: FIFOs, sockets and device nodes are never replaced, and
    a write-protected file is refused for users who cannot write it (as
    ``cp`` without ``-f`` does; root overrides it, as for ``cp``).

    Raises TypeError (wrong type), FileNotFoundError (the folder does not
    exist, or a dangling link), PermissionError (a write-protected target) or
    ValueError (empty, a folder, or not a regular file); every message names
    ``name``.
    """
    if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a file path (str or os.PathLike), "
                        f"got {type(path).__name__} {path!r}")
    path = os.fspath(path)
    if not isinstance(path, str):
        raise TypeError(f"{name} must be a text file path, got {path!r}")
    if not path or path.endswith(("/", os.sep)):
        raise ValueError(f"{name} must name a file, got {path!r}")
    if os.path.isdir(path):
        raise ValueError(f"{name} {path!r} is a folder; give a file name such as "
                         f"{os.path.join(path, 'model.npz')!r}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot write {name} {path!r}: folder {folder!r} does not exist")
    check_target(path, name)
    return path


def check_target(path, name="path"):
    """Refuse to replace anything but a writable regular file (see :func:`check_path`)."""
    try:
        st = os.stat(path)                  # follows links
    except FileNotFoundError:
        if os.path.islink(path):
            raise FileNotFoundError(f"cannot write {name} {path!r}: it is a symbolic link to "
                                    f"{os.readlink(path)!r}, which does not exist") from None
        return
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{name} {path!r} exists and is not a regular file (a FIFO, socket or "
                         f"device); fastbp writes model files only over regular files")
    if not os.access(path, os.W_OK):
        raise PermissionError(f"cannot write {name} {path!r}: the file is write-protected; "
                              f"remove it or make it writable first")
