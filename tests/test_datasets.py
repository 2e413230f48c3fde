"""Tests for fastbp.datasets: the toy problems, the digits split, CIFAR-10 I/O."""
import os
import subprocess
import sys

import numpy as np
import pytest

from fastbp import datasets as ds

DTYPES = ["float64", "float32"]


# --------------------------------------------------------------------------- #
# generate_linear
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 7, 500])
def test_linear_shape_dtype_range(n, dtype):
    X, y = ds.generate_linear(n=n, seed=3, dtype=dtype)
    assert X.shape == (n, 2) and y.shape == (n, 1)
    assert X.dtype == np.dtype(dtype) and y.dtype == np.dtype(dtype)
    assert np.all(X >= 0) and np.all(X < 1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_linear_labels_follow_rule(dtype):
    X, y = ds.generate_linear(n=2000, seed=11, dtype=dtype)
    for (x0, x1), label in zip(X.tolist(), y[:, 0].tolist()):
        assert label == (0.0 if x0 > x1 else 1.0)
    # both classes present, roughly half each (the diagonal halves the square)
    assert 0.4 < y.mean() < 0.6


def test_linear_default_is_500_points():
    X, y = ds.generate_linear()
    assert X.shape == (500, 2) and y.shape == (500, 1)


def test_linear_seeded():
    X1, y1 = ds.generate_linear(n=50, seed=5)
    X2, y2 = ds.generate_linear(n=50, seed=5)
    X3, _ = ds.generate_linear(n=50, seed=6)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(X1, X3)


def test_linear_draws_from_default_rng():
    X, _ = ds.generate_linear(n=10, seed=9)
    np.testing.assert_array_equal(X, np.random.default_rng(9).random((10, 2)))


def test_linear_does_not_touch_global_rng():
    state = np.random.get_state()[1].copy()
    ds.generate_linear(n=10, seed=1)
    np.testing.assert_array_equal(np.random.get_state()[1], state)


def test_linear_float32_same_points_as_float64():
    X64, _ = ds.generate_linear(n=100, seed=2)
    X32, _ = ds.generate_linear(n=100, seed=2, dtype="float32")
    np.testing.assert_allclose(X32, X64, rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize("kwargs, exc, word", [
    (dict(n=0), ValueError, "n"),
    (dict(n=-3), ValueError, "n"),
    (dict(n=2.5), TypeError, "n"),
    (dict(n=True), TypeError, "n"),
    (dict(n="10"), TypeError, "n"),
    (dict(seed=1.5), TypeError, "seed"),
    (dict(seed=-1), ValueError, "seed"),
    (dict(dtype="float16"), ValueError, "dtype"),
    (dict(dtype="int64"), ValueError, "dtype"),
    (dict(dtype="nonsense"), ValueError, "dtype"),
])
def test_linear_validation(kwargs, exc, word):
    with pytest.raises(exc, match=word):
        ds.generate_linear(**kwargs)


def test_linear_accepts_numpy_ints_and_dtype_objects():
    X, y = ds.generate_linear(n=np.int64(4), seed=np.int32(1), dtype=np.float32)
    assert X.shape == (4, 2) and X.dtype == np.float32


# --------------------------------------------------------------------------- #
# generate_xor_easy
# --------------------------------------------------------------------------- #
# Written out by hand: the two diagonals of the unit square in steps of 0.1;
# label 0 on y = x, label 1 on y = 1 - x, and no second (0.5, 0.5).
XOR_EXPECTED = [
    ((0.0, 0.0), 0), ((0.0, 1.0), 1),
    ((0.1, 0.1), 0), ((0.1, 0.9), 1),
    ((0.2, 0.2), 0), ((0.2, 0.8), 1),
    ((0.3, 0.3), 0), ((0.3, 0.7), 1),
    ((0.4, 0.4), 0), ((0.4, 0.6), 1),
    ((0.5, 0.5), 0),
    ((0.6, 0.6), 0), ((0.6, 0.4), 1),
    ((0.7, 0.7), 0), ((0.7, 0.3), 1),
    ((0.8, 0.8), 0), ((0.8, 0.2), 1),
    ((0.9, 0.9), 0), ((0.9, 0.1), 1),
    ((1.0, 1.0), 0), ((1.0, 0.0), 1),
]


@pytest.mark.parametrize("dtype", DTYPES)
def test_xor_exact_points(dtype):
    X, y = ds.generate_xor_easy(dtype=dtype)
    assert X.shape == (21, 2) and y.shape == (21, 1)
    assert X.dtype == np.dtype(dtype) and y.dtype == np.dtype(dtype)
    expected_X = np.array([p for p, _ in XOR_EXPECTED], dtype=dtype)
    expected_y = np.array([[c] for _, c in XOR_EXPECTED], dtype=dtype)
    np.testing.assert_array_equal(X, expected_X)
    np.testing.assert_array_equal(y, expected_y)


def test_xor_no_duplicates_and_counts():
    X, y = ds.generate_xor_easy()
    assert len({tuple(p) for p in X.tolist()}) == 21
    assert int((y == 0).sum()) == 11 and int((y == 1).sum()) == 10


def test_xor_is_xor_of_the_diagonals():
    # label 1 exactly on the anti-diagonal y = 1 - x, 0 on the diagonal
    X, y = ds.generate_xor_easy()
    on_anti = np.isclose(X[:, 0] + X[:, 1], 1.0) & ~np.isclose(X[:, 0], X[:, 1])
    np.testing.assert_array_equal(y[:, 0], on_anti.astype(float))


def test_xor_bad_dtype():
    with pytest.raises(ValueError, match="dtype"):
        ds.generate_xor_easy(dtype="float128")


# --------------------------------------------------------------------------- #
# load_digits
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def digits_raw():
    from sklearn.datasets import load_digits

    b = load_digits()
    return b.data.astype(np.float64), b.target.astype(np.int64)


def test_digits_shapes_and_types():
    X_tr, X_te, y_tr, y_te = ds.load_digits()
    assert X_tr.shape[0] + X_te.shape[0] == 1797
    assert X_tr.shape[1] == X_te.shape[1] == 64
    assert X_tr.shape[0] == y_tr.shape[0] and X_te.shape[0] == y_te.shape[0]
    assert y_tr.ndim == y_te.ndim == 1
    assert y_tr.dtype == y_te.dtype == np.int64
    assert X_tr.dtype == X_te.dtype == np.float64
    assert X_tr.flags.c_contiguous and X_te.flags.c_contiguous
    assert 0.18 < X_te.shape[0] / 1797 < 0.22


@pytest.mark.parametrize("test_size", [0.2, 0.5])
def test_digits_stratified(digits_raw, test_size):
    _, y_all = digits_raw
    _, _, y_tr, y_te = ds.load_digits(test_size=test_size, seed=4)
    full = np.bincount(y_all, minlength=10) / y_all.size
    for part in (y_tr, y_te):
        assert set(np.unique(part).tolist()) == set(range(10))
        frac = np.bincount(part, minlength=10) / part.size
        np.testing.assert_allclose(frac, full, atol=0.01)
    # per class, the test share is test_size to within one sample
    n_c = np.bincount(y_all, minlength=10)
    n_te = np.bincount(y_te, minlength=10)
    assert np.all(np.abs(n_te - test_size * n_c) <= 1)


def test_digits_standardised_with_train_statistics(digits_raw):
    X_tr, X_te, _, _ = ds.load_digits(seed=1)
    raw_tr, raw_te, _, _ = ds.load_digits(seed=1, standardize=False)
    std = raw_tr.std(axis=0)
    live = std > 0
    assert (~live).any()                       # the digits have constant border pixels
    np.testing.assert_allclose(X_tr.mean(axis=0), 0, atol=1e-10)
    np.testing.assert_allclose(X_tr[:, live].std(axis=0), 1, rtol=1e-10)
    # constant train columns are centred only (std taken as 1), never NaN
    assert np.all(np.isfinite(X_tr)) and np.all(np.isfinite(X_te))
    np.testing.assert_array_equal(X_tr[:, ~live], 0)
    # the test set is transformed with the TRAIN mean/std
    mean = raw_tr.mean(axis=0)
    safe = np.where(live, std, 1.0)
    np.testing.assert_allclose(X_te, (raw_te - mean) / safe, rtol=1e-12, atol=1e-12)
    # ... which is not the test set's own standardisation
    assert not np.allclose(X_te.mean(axis=0), 0, atol=1e-6)


def test_standardize_constant_column_divides_by_one():
    rng = np.random.default_rng(8)
    X_train = np.column_stack([rng.normal(3.0, 2.0, 50), np.full(50, 5.0)])
    X_test = np.array([[3.0, 5.0], [1.0, 7.5]])
    Z_train, Z_test = ds._standardize(X_train, X_test)
    np.testing.assert_allclose(Z_train[:, 0].mean(), 0, atol=1e-12)
    np.testing.assert_allclose(Z_train[:, 0].std(), 1, rtol=1e-12)
    np.testing.assert_array_equal(Z_train[:, 1], 0.0)
    # constant train column: centred with the train value, scaled by 1
    np.testing.assert_array_equal(Z_test[:, 1], [0.0, 2.5])
    m, s = X_train[:, 0].mean(), X_train[:, 0].std()
    np.testing.assert_allclose(Z_test[:, 0], (X_test[:, 0] - m) / s, rtol=1e-12)


def test_digits_raw_rows_come_from_the_data(digits_raw):
    from collections import Counter

    X_all, y_all = digits_raw
    X_tr, X_te, y_tr, y_te = ds.load_digits(seed=2, standardize=False)
    assert X_tr.min() >= 0 and X_tr.max() <= 16
    # the (image, label) pairs of both splits are exactly those of the data set
    pairs = Counter((row.tobytes(), int(c)) for row, c in zip(X_all, y_all))
    got = Counter((row.tobytes(), int(c))
                  for X, y in ((X_tr, y_tr), (X_te, y_te)) for row, c in zip(X, y))
    assert got == pairs


def test_digits_deterministic_and_seed_dependent():
    a = ds.load_digits(seed=7)
    b = ds.load_digits(seed=7)
    c = ds.load_digits(seed=8)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[2], c[2])


def test_digits_split_is_disjoint():
    # Identical images may occur twice in the data, so map every returned row
    # back to a distinct source index; 1797 distinct indices = no sample reused.
    X_tr, X_te, _, _ = ds.load_digits(seed=3, standardize=False)
    from sklearn.datasets import load_digits

    data = load_digits().data
    index = {}
    for i, row in enumerate(data):
        index.setdefault(row.tobytes(), []).append(i)
    used = []
    for X in (X_tr, X_te):
        for row in X:
            used.append(index[row.tobytes()].pop())
    assert len(used) == len(set(used)) == 1797


def test_digits_float32():
    X_tr, X_te, _, _ = ds.load_digits(dtype="float32")
    assert X_tr.dtype == X_te.dtype == np.float32


@pytest.mark.parametrize("kwargs, exc, word", [
    (dict(test_size=0.0), ValueError, "test_size"),
    (dict(test_size=1.0), ValueError, "test_size"),
    (dict(test_size="0.2"), TypeError, "test_size"),
    (dict(seed=0.5), TypeError, "seed"),
    (dict(dtype="float16"), ValueError, "dtype"),
    (dict(standardize="yes"), TypeError, "standardize"),
])
def test_digits_validation(kwargs, exc, word):
    with pytest.raises(exc, match=word):
        ds.load_digits(**kwargs)


# --------------------------------------------------------------------------- #
# CIFAR-10 binary format
# --------------------------------------------------------------------------- #
def _random_batch(rng, n):
    X = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    y = rng.integers(0, 10, size=n).astype(np.int64)
    return X, y


def test_cifar_roundtrip_single_file(tmp_path):
    rng = np.random.default_rng(0)
    X8, y = _random_batch(rng, 5)
    f = ds.write_cifar10(tmp_path / "data_batch_1.bin", X8, y)
    assert os.path.getsize(f) == 5 * 3073
    X, y2 = ds.load_cifar10(f)
    assert X.shape == (5, 3072) and X.dtype == np.float32
    assert y2.shape == (5,) and y2.dtype == np.int64
    np.testing.assert_array_equal(y2, y)
    np.testing.assert_array_equal(X, X8.astype(np.float32) / np.float32(255))
    assert X.min() >= 0 and X.max() <= 1


def test_cifar_bytes_on_disk(tmp_path):
    # the format itself: label byte, then the 3072 pixel bytes, record after record
    X8 = np.arange(2 * 3072, dtype=np.int64).reshape(2, 3072) % 256
    f = ds.write_cifar10(tmp_path / "b.bin", X8.astype(np.uint8), np.array([3, 9]))
    raw = np.fromfile(f, dtype=np.uint8)
    assert raw.size == 2 * 3073
    assert raw[0] == 3 and raw[3073] == 9
    np.testing.assert_array_equal(raw[1:3073], X8[0])
    np.testing.assert_array_equal(raw[3074:], X8[1])


def test_cifar_channel_first_order(tmp_path):
    # one marked pixel per channel: red (row 2, col 5), green (10, 0), blue (31, 31)
    imgs = np.zeros((2, 3, 32, 32), dtype=np.uint8)
    imgs[1, 0, 2, 5] = 200
    imgs[1, 1, 10, 0] = 100
    imgs[1, 2, 31, 31] = 255
    f = ds.write_cifar10(tmp_path / "c.bin", imgs, np.array([0, 7]))
    X, y = ds.load_cifar10(f, dtype="float64")
    assert X.dtype == np.float64
    assert X[1, 0 * 1024 + 2 * 32 + 5] == 200 / 255
    assert X[1, 1 * 1024 + 10 * 32 + 0] == 100 / 255
    assert X[1, 2 * 1024 + 31 * 32 + 31] == 1.0
    assert np.count_nonzero(X) == 3 and np.count_nonzero(X[0]) == 0
    np.testing.assert_array_equal(X.reshape(2, 3, 32, 32), imgs / 255.0)
    np.testing.assert_array_equal(y, [0, 7])


def test_cifar_folder_reads_every_bin_sorted(tmp_path):
    rng = np.random.default_rng(1)
    Xa, ya = _random_batch(rng, 3)
    Xb, yb = _random_batch(rng, 4)
    Xt, yt = _random_batch(rng, 2)
    # written out of order; read back in sorted file-name order
    ds.write_cifar10(tmp_path / "test_batch.bin", Xt, yt)
    ds.write_cifar10(tmp_path / "data_batch_2.bin", Xb, yb)
    ds.write_cifar10(tmp_path / "data_batch_1.bin", Xa, ya)
    (tmp_path / "readme.html").write_text("not a batch")
    (tmp_path / "batches.meta.txt").write_text("airplane\n")
    X, y = ds.load_cifar10(tmp_path)
    np.testing.assert_array_equal(y, np.concatenate([ya, yb, yt]))
    np.testing.assert_array_equal(
        X, np.concatenate([Xa, Xb, Xt]).astype(np.float32) / np.float32(255))


def test_cifar_folder_of_two_files_str_path(tmp_path):
    rng = np.random.default_rng(2)
    Xa, ya = _random_batch(rng, 2)
    Xb, yb = _random_batch(rng, 3)
    ds.write_cifar10(tmp_path / "data_batch_1.bin", Xa, ya)
    ds.write_cifar10(tmp_path / "data_batch_2.bin", Xb, yb)
    X, y = ds.load_cifar10(str(tmp_path))
    assert X.shape == (5, 3072)
    np.testing.assert_array_equal(y, np.concatenate([ya, yb]))


@pytest.mark.parametrize("max_records, expect", [(1, 1), (3, 3), (4, 4), (100, 5)])
def test_cifar_max_records_across_files(tmp_path, max_records, expect):
    rng = np.random.default_rng(3)
    Xa, ya = _random_batch(rng, 3)
    Xb, yb = _random_batch(rng, 2)
    ds.write_cifar10(tmp_path / "a.bin", Xa, ya)
    ds.write_cifar10(tmp_path / "b.bin", Xb, yb)
    X, y = ds.load_cifar10(tmp_path, max_records=max_records)
    assert X.shape == (expect, 3072)
    np.testing.assert_array_equal(y, np.concatenate([ya, yb])[:expect])
    np.testing.assert_array_equal(
        X, np.concatenate([Xa, Xb])[:expect].astype(np.float32) / np.float32(255))


def test_cifar_missing_path(tmp_path):
    missing = tmp_path / "nowhere" / "data_batch_1.bin"
    with pytest.raises(FileNotFoundError, match="data_batch_1.bin"):
        ds.load_cifar10(missing)


def test_cifar_empty_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("no batches here")
    with pytest.raises(ValueError, match="no .bin") as info:
        ds.load_cifar10(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_cifar_empty_file(tmp_path):
    f = tmp_path / "empty.bin"
    f.write_bytes(b"")
    with pytest.raises(ValueError, match="empty") as info:
        ds.load_cifar10(f)
    assert str(f) in str(info.value)


@pytest.mark.parametrize("size", [1, 3072, 3074, 2 * 3073 - 1, 2 * 3073 + 5])
def test_cifar_wrong_length(tmp_path, size):
    f = tmp_path / "bad.bin"
    f.write_bytes(bytes(size))
    with pytest.raises(ValueError) as info:
        ds.load_cifar10(f)
    msg = str(info.value)
    assert str(f) in msg
    assert f"is {size} bytes, not a multiple of the 3073-byte CIFAR-10 record" in msg


def test_cifar_wrong_length_in_folder_names_the_file(tmp_path):
    rng = np.random.default_rng(4)
    ds.write_cifar10(tmp_path / "data_batch_1.bin", *_random_batch(rng, 2))
    bad = tmp_path / "data_batch_2.bin"
    bad.write_bytes(bytes(3073 + 10))
    with pytest.raises(ValueError, match="data_batch_2.bin") as info:
        ds.load_cifar10(tmp_path)
    assert "3083 bytes" in str(info.value)


@pytest.mark.parametrize("label", [10, 42, 255])
def test_cifar_bad_label(tmp_path, label):
    rng = np.random.default_rng(5)
    X8, y = _random_batch(rng, 3)
    f = ds.write_cifar10(tmp_path / "data_batch_1.bin", X8, y)
    raw = np.fromfile(f, dtype=np.uint8)
    raw[2 * 3073] = label                      # label byte of record 2
    raw.tofile(f)
    with pytest.raises(ValueError) as info:
        ds.load_cifar10(f)
    msg = str(info.value)
    assert str(f) in msg and "record 2" in msg and str(label) in msg


def test_cifar_argument_validation(tmp_path):
    rng = np.random.default_rng(6)
    f = ds.write_cifar10(tmp_path / "x.bin", *_random_batch(rng, 1))
    with pytest.raises(ValueError, match="dtype"):
        ds.load_cifar10(f, dtype="uint8")
    with pytest.raises(ValueError, match="max_records"):
        ds.load_cifar10(f, max_records=0)
    with pytest.raises(TypeError, match="max_records"):
        ds.load_cifar10(f, max_records=1.5)


def test_write_cifar10_validation(tmp_path):
    X8 = np.zeros((2, 3072), dtype=np.uint8)
    with pytest.raises(ValueError, match="X_uint8"):
        ds.write_cifar10(tmp_path / "a.bin", X8[:, :100], np.array([0, 1]))
    with pytest.raises(ValueError, match="X_uint8"):
        ds.write_cifar10(tmp_path / "a.bin", X8.astype(np.float32), np.array([0, 1]))
    with pytest.raises(ValueError, match="X_uint8"):
        ds.write_cifar10(tmp_path / "a.bin", X8.astype(np.int64) + 300, np.array([0, 1]))
    with pytest.raises(ValueError, match="y"):
        ds.write_cifar10(tmp_path / "a.bin", X8, np.array([0]))
    with pytest.raises(ValueError, match="0..9"):
        ds.write_cifar10(tmp_path / "a.bin", X8, np.array([0, 10]))
    assert not (tmp_path / "a.bin").exists()


def test_write_cifar10_creates_parents(tmp_path):
    X8 = np.full((1, 3, 32, 32), 17, dtype=np.uint8)
    f = ds.write_cifar10(tmp_path / "deep" / "er" / "one.bin", X8, [4])
    assert isinstance(f, str) and os.path.isfile(f)
    X, y = ds.load_cifar10(f)
    assert y.tolist() == [4] and np.all(X == np.float32(17) / np.float32(255))


# --------------------------------------------------------------------------- #
# import cost
# --------------------------------------------------------------------------- #
def test_import_does_not_load_sklearn():
    code = ("import sys, fastbp.datasets; "
            "assert 'sklearn' not in sys.modules; "
            "assert 'matplotlib' not in sys.modules")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=root)


def test_load_cifar10_names_a_path_of_the_wrong_type():
    with pytest.raises(TypeError, match="path must be"):
        ds.load_cifar10(None)
