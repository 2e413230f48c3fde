"""Data sets for fastbp: the two toy 2-D problems, the digits, CIFAR-10 batch files.

- :func:`generate_linear` and :func:`generate_xor_easy` are the two binary
  problems the sigmoid network ``[2, 4, 4, 1]`` is taught on (points in the
  unit square, one sigmoid output, so ``y`` is a column ``(n, 1)``).
- :func:`load_digits` splits scikit-learn's bundled 8x8 digits (1797 images,
  no download) into a seeded, stratified train/test pair.
- :func:`load_cifar10` reads CIFAR-10's binary batch format;
  :func:`write_cifar10` writes it (small synthetic files for tests and demos).

Randomness is explicit: every random function takes an integer ``seed`` and
builds its own ``numpy.random.Generator``; nothing touches NumPy's global state.

Errors: a bad argument raises ``ValueError`` (or ``TypeError`` for a wrong
type) naming the argument; a missing CIFAR-10 path raises
``FileNotFoundError``; a malformed CIFAR-10 file raises ``ValueError``. Every
CIFAR-10 error message contains the offending path.
"""
import numbers
import os
from pathlib import Path

import numpy as np

from ._config import DTYPES
from ._validate import check_int as _check_int

__all__ = [
    "generate_linear",
    "generate_xor_easy",
    "load_digits",
    "load_cifar10",
    "write_cifar10",
    "CIFAR10_RECORD_BYTES",
    "CIFAR10_PIXELS",
    "CIFAR10_CLASSES",
]

CIFAR10_PIXELS = 3 * 32 * 32                 # 3072 bytes: 1024 R, 1024 G, 1024 B
CIFAR10_RECORD_BYTES = 1 + CIFAR10_PIXELS    # 1 label byte + the pixels = 3073
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)


# --------------------------------------------------------------------------- #
# argument checks
# --------------------------------------------------------------------------- #
def _resolve_dtype(dtype, name="dtype"):
    """Return the NumPy scalar type for ``dtype`` ("float32"/"float64" or the type)."""
    if isinstance(dtype, str):
        key = dtype
    else:
        try:
            key = np.dtype(dtype).name
        except TypeError:
            key = None
    if key not in DTYPES:
        raise ValueError(
            f"{name} must be one of {sorted(DTYPES)}, got {dtype!r}"
        )
    return DTYPES[key]


# --------------------------------------------------------------------------- #
# toy 2-D problems
# --------------------------------------------------------------------------- #
def generate_linear(n=500, seed=0, dtype="float64"):
    """Points uniform in the unit square, split by the diagonal.

    Parameters
    ----------
    n : int, >= 1
        Number of points.
    seed : int, >= 0
        Seed of the ``numpy.random.default_rng`` that draws the points.
    dtype : "float64" or "float32"
        Dtype of both ``X`` and ``y``.

    Returns
    -------
    X : ndarray (n, 2)
        Points in [0, 1)^2. The same seed gives the same points in both
        dtypes (float32 is the float64 draw rounded, kept below 1).
    y : ndarray (n, 1)
        Labels 0.0 / 1.0: ``0`` where ``x0 > x1``, else ``1`` (so a point on
        the diagonal is 1). The rule is applied to the returned ``X``, so it
        holds exactly in either dtype.
    """
    n = _check_int(n, "n", minimum=1)
    seed = _check_int(seed, "seed", minimum=0)
    dt = _resolve_dtype(dtype)
    rng = np.random.default_rng(seed)
    X = rng.random((n, 2)).astype(dt)
    # Rounding a draw just below 1 to float32 can give 1.0; keep [0, 1).
    np.minimum(X, np.nextafter(dt(1), dt(0)), out=X)
    y = np.where(X[:, 0] > X[:, 1], 0, 1).astype(dt).reshape(n, 1)
    return X, y


def generate_xor_easy(dtype="float64"):
    """The 21-point XOR problem: the two diagonals of the unit square.

    For i = 0, 1, ..., 10 (in that order) come the point (i/10, i/10) with
    label 0, then the point (i/10, 1 - i/10) with label 1; the label-1 point
    for i = 5 is left out because it is the label-0 point (0.5, 0.5). That is
    11 + 10 = 21 points. Coordinates are the doubles nearest to the decimals
    (0.3, not 0.1 * 3 = 0.30000000000000004).

    Returns
    -------
    X : ndarray (21, 2)
    y : ndarray (21, 1)
        Labels 0.0 / 1.0, in ``dtype``.
    """
    dt = _resolve_dtype(dtype)
    points, labels = [], []
    for i in range(11):
        points.append((i / 10, i / 10))
        labels.append(0)
        if i == 5:
            continue
        points.append((i / 10, (10 - i) / 10))
        labels.append(1)
    X = np.array(points, dtype=dt)
    y = np.array(labels, dtype=dt).reshape(-1, 1)
    return X, y


# --------------------------------------------------------------------------- #
# digits
# --------------------------------------------------------------------------- #
def _stratified_split(y, test_size, rng):
    """Indices (train, test): each class split on its own, then both shuffled.

    Class c with n_c samples sends round(test_size * n_c) of them to the test
    set, clamped so that each side keeps at least one sample of every class
    with two or more samples.
    """
    train, test = [], []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        idx = idx[rng.permutation(idx.size)]
        n_test = int(round(test_size * idx.size))
        if idx.size >= 2:
            n_test = min(max(n_test, 1), idx.size - 1)
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    train = np.concatenate(train)
    test = np.concatenate(test)
    return train[rng.permutation(train.size)], test[rng.permutation(test.size)]


def _standardize(X_train, X_test):
    """Scale both sets with the training set's per-column mean and std.

    A column constant in the training set (std 0) is divided by 1 instead,
    so it is centred only and never becomes inf/NaN in either set.
    """
    mean = X_train.mean(axis=0)
    std = X_train.std(axis=0)
    std[std == 0] = 1.0
    return (X_train - mean) / std, (X_test - mean) / std


def load_digits(test_size=0.2, seed=0, standardize=True, dtype="float64"):
    """scikit-learn's 8x8 handwritten digits, split into train and test.

    The 1797 images ship inside scikit-learn, so nothing is downloaded.

    Parameters
    ----------
    test_size : float in (0, 1)
        Fraction of each class that goes to the test set (stratified: every
        class is split on its own, so both sets keep the class proportions).
    seed : int, >= 0
        Seed of the ``numpy.random.default_rng`` that draws the split.
    standardize : bool
        Subtract the training set's per-pixel mean and divide by its
        per-pixel standard deviation, on both sets (the test set never
        influences the statistics). Pixels that are constant in the training
        set get standard deviation 1, so they are only centred.
        When False, the raw pixel values 0..16 are returned.
    dtype : "float64" or "float32"
        Dtype of the images.

    Returns
    -------
    (X_train, X_test, y_train, y_test)
        The order of ``sklearn.model_selection.train_test_split``.
        ``X_*`` is (n, 64) in ``dtype``; ``y_*`` is (n,) int64 labels 0..9.
        Rows of both sets are in a random (seeded) order.
    """
    if isinstance(test_size, bool) or not isinstance(test_size, numbers.Real):
        raise TypeError(f"test_size must be a float in (0, 1), got {test_size!r}")
    if not 0.0 < float(test_size) < 1.0:
        raise ValueError(f"test_size must be in (0, 1), got {test_size!r}")
    seed = _check_int(seed, "seed", minimum=0)
    dt = _resolve_dtype(dtype)
    if not isinstance(standardize, (bool, np.bool_)):
        raise TypeError(f"standardize must be True or False, got {standardize!r}")

    from sklearn.datasets import load_digits as _sk_load_digits

    bunch = _sk_load_digits()
    X = np.asarray(bunch.data, dtype=np.float64)
    y = np.asarray(bunch.target, dtype=np.int64)

    rng = np.random.default_rng(seed)
    train_idx, test_idx = _stratified_split(y, float(test_size), rng)
    X_train, X_test = X[train_idx], X[test_idx]
    if standardize:
        X_train, X_test = _standardize(X_train, X_test)
    return (
        np.ascontiguousarray(X_train, dtype=dt),
        np.ascontiguousarray(X_test, dtype=dt),
        y[train_idx],
        y[test_idx],
    )


# --------------------------------------------------------------------------- #
# CIFAR-10 binary batches
# --------------------------------------------------------------------------- #
def _cifar10_files(path):
    """The batch files behind ``path`` (a file, or a folder of ``*.bin``)."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"CIFAR-10 path {str(p)!r} does not exist")
    if p.is_dir():
        files = sorted(f for f in p.glob("*.bin") if f.is_file())
        if not files:
            raise ValueError(
                f"CIFAR-10 folder {str(p)!r} contains no .bin batch files"
            )
        return files
    if not p.is_file():
        raise ValueError(f"CIFAR-10 path {str(p)!r} is neither a file nor a folder")
    return [p]


def _cifar10_records(f):
    """Number of records in batch file ``f``, after checking its size."""
    size = os.path.getsize(f)
    if size == 0:
        raise ValueError(f"CIFAR-10 file {str(f)!r} is empty")
    if size % CIFAR10_RECORD_BYTES:
        raise ValueError(
            f"CIFAR-10 file {str(f)!r} is {size} bytes, not a multiple of the "
            f"{CIFAR10_RECORD_BYTES}-byte CIFAR-10 record (1 label byte + "
            f"{CIFAR10_PIXELS} pixel bytes)"
        )
    return size // CIFAR10_RECORD_BYTES


def load_cifar10(path, dtype="float32", max_records=None):
    """Read CIFAR-10 binary batches.

    Parameters
    ----------
    path : str or os.PathLike
        One batch file (``data_batch_1.bin``, ``test_batch.bin``, ...) or a
        folder; in a folder every ``*.bin`` file is read, in sorted file-name
        order, and the records are concatenated.
    dtype : "float32" or "float64"
        Dtype of ``X``.
    max_records : int >= 1 or None
        Read at most this many records (from the first files in order).

    Returns
    -------
    X : ndarray (n, 3072)
        Pixels in the file's channel-first order (1024 red values, then
        1024 green, then 1024 blue, each 32x32 plane row by row), divided by
        255 so they lie in [0, 1]. ``X.reshape(n, 3, 32, 32)`` gives the
        images as (channel, row, column).
    y : ndarray (n,) int64
        Labels 0..9 (names in ``CIFAR10_CLASSES``).

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        A folder without ``.bin`` files, an empty file, a file whose size is
        not a multiple of the 3073-byte record, or a label byte above 9. The
        message names the file.

    Each file is size-checked before anything is read, and read through
    ``np.memmap`` (no per-record Python loop, no second uint8 copy in memory).
    """
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"path must be a CIFAR-10 batch file or a folder of them, "
                        f"got {type(path).__name__} {path!r}")
    dt = _resolve_dtype(dtype)
    if max_records is not None:
        max_records = _check_int(max_records, "max_records", minimum=1)

    files = _cifar10_files(path)
    counts = [_cifar10_records(f) for f in files]
    total = sum(counts)
    if max_records is not None:
        total = min(total, max_records)

    X = np.empty((total, CIFAR10_PIXELS), dtype=dt)
    y = np.empty(total, dtype=np.int64)
    start = 0
    for f, count in zip(files, counts):
        if start >= total:
            break
        take = min(count, total - start)
        raw = np.memmap(f, dtype=np.uint8, mode="r",
                        shape=(take, CIFAR10_RECORD_BYTES))
        try:
            labels = raw[:, 0]
            bad = np.flatnonzero(labels > 9)
            if bad.size:
                r = int(bad[0])
                raise ValueError(
                    f"CIFAR-10 file {str(f)!r}: record {r} has label byte "
                    f"{int(labels[r])}, labels must be 0..9 "
                    f"({bad.size} bad record(s) in all)"
                )
            y[start:start + take] = labels
            np.divide(raw[:, 1:], dt(255), out=X[start:start + take], dtype=dt)
        finally:
            del raw
        start += take
    return X, y


def write_cifar10(path, X_uint8, y):
    """Write images and labels as one CIFAR-10 binary batch file.

    Parameters
    ----------
    path : str or os.PathLike
        File to write (parent folders are created; an existing file is
        replaced).
    X_uint8 : array (n, 3072) or (n, 3, 32, 32) of uint8
        Pixels in channel-first order, as :func:`load_cifar10` returns them
        before scaling. Integer arrays of another dtype are accepted when all
        values lie in 0..255.
    y : array (n,) of integers 0..9

    Returns
    -------
    str
        The path written.
    """
    X = np.asarray(X_uint8)
    lab = np.asarray(y)
    if X.ndim == 4 and X.shape[1:] == (3, 32, 32):
        X = X.reshape(X.shape[0], CIFAR10_PIXELS)
    if X.ndim != 2 or X.shape[1] != CIFAR10_PIXELS:
        raise ValueError(
            f"X_uint8 must have shape (n, {CIFAR10_PIXELS}) or (n, 3, 32, 32), "
            f"got {X.shape}"
        )
    if X.shape[0] < 1:
        raise ValueError("X_uint8 must hold at least one image")
    if X.dtype != np.uint8:
        if not np.issubdtype(X.dtype, np.integer):
            raise ValueError(f"X_uint8 must be uint8 (or integers in 0..255), got {X.dtype}")
        if X.min() < 0 or X.max() > 255:
            raise ValueError("X_uint8 values must lie in 0..255")
    if lab.ndim != 1 or lab.shape[0] != X.shape[0]:
        raise ValueError(
            f"y must have shape ({X.shape[0]},) to match X_uint8, got {lab.shape}"
        )
    if not np.issubdtype(lab.dtype, np.integer):
        raise ValueError(f"y must hold integer labels, got dtype {lab.dtype}")
    if lab.min() < 0 or lab.max() > 9:
        raise ValueError("y labels must lie in 0..9")

    out = np.empty((X.shape[0], CIFAR10_RECORD_BYTES), dtype=np.uint8)
    out[:, 0] = lab
    out[:, 1:] = X
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    out.tofile(p)
    return os.fspath(p)
