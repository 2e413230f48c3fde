"""The counter-based generator and dropout masks: identical bits in both
backends, checked against an independent pure-Python SplitMix64."""
import numpy as np
import pytest

import fastbp.kernels as K
import fastbp.reference as R

MASK64 = (1 << 64) - 1
GAMMA = 0x9E3779B97F4A7C15


def mix_py(z):
    """SplitMix64 finalizer on Python ints (Steele, Lea & Flood; Vigna's splitmix64.c)."""
    z = (z + GAMMA) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def bits_py(key, counter, j):
    return mix_py((mix_py(key ^ mix_py(counter)) + j) & MASK64)


def test_splitmix64_known_answers():
    """The published SplitMix64 sequence for seed 1234567 (state += gamma, then mix)."""
    expected = [6457827717110365317, 3203168211198807973, 9817491932198370423,
                4593380528125082431, 16408922859458223821]
    states = [(1234567 + k * GAMMA) & MASK64 for k in range(5)]
    assert [mix_py(s) for s in states] == expected
    got_ref = R.splitmix64(np.array(states, dtype=np.uint64))
    assert [int(v) for v in got_ref] == expected
    assert [int(K.splitmix64(np.uint64(s))) for s in states] == expected


def test_splitmix64_backends_agree(rng):
    z = rng.integers(0, 2**64 - 1, 200, dtype=np.uint64, endpoint=True)
    z[:4] = [0, 1, 2**63, 2**64 - 1]
    ref = R.splitmix64(z)
    assert [int(K.splitmix64(v)) for v in z] == [int(v) for v in ref]
    assert [int(v) for v in ref] == [mix_py(int(v)) for v in z]


@pytest.mark.parametrize("key,counter", [(0, 0), (1, 2), (2**63 - 1, 2**63 - 1), (12345, 10**12)])
def test_hash_uniform_matches_definition(ops, dtype, key, counter):
    out = np.empty((3, 5, 2), dtype=dtype)
    ops.hash_uniform(key, counter, out)
    if np.dtype(dtype) == np.float64:
        expected = [(bits_py(key, counter, j) >> 11) * 2.0**-53 for j in range(out.size)]
    else:
        expected = [(bits_py(key, counter, j) >> 40) * 2.0**-24 for j in range(out.size)]
    np.testing.assert_array_equal(out.ravel(), np.array(expected))


def test_hash_uniform_shape_and_dtypes(ops, rng):
    flat64, flat32 = np.empty(60), np.empty(60, np.float32)
    ops.hash_uniform(5, 9, flat64)
    ops.hash_uniform(5, 9, flat32)
    cube = np.empty((3, 4, 5))
    ops.hash_uniform(5, 9, cube)
    np.testing.assert_array_equal(cube.ravel(), flat64)  # flat C order
    # float32 is the float64 value rounded down to 24 bits
    np.testing.assert_array_equal(flat32, np.floor(flat64 * 2**24) / 2**24)
    big = np.empty(10**5)
    ops.hash_uniform(1, 1, big)
    assert big.min() >= 0.0 and big.max() < 1.0
    assert abs(big.mean() - 0.5) < 0.005 and abs(big.var() - 1 / 12) < 0.002


@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (33, 130)])
@pytest.mark.parametrize("p", [0.0, 0.25, 0.5])
def test_mask_identical_across_backends_and_dtypes(shape, p):
    masks = {}
    for name, mod in (("numba", K), ("numpy", R)):
        for dt in (np.float64, np.float32):
            m = np.full(shape, np.nan, dtype=dt)
            mod.dropout_mask(42, 7, p, m)
            masks[name, dt] = m
    ref = masks["numpy", np.float64]
    for (name, dt), m in masks.items():
        np.testing.assert_array_equal(m, ref.astype(dt), err_msg=f"{name} {dt.__name__}")
        np.testing.assert_array_equal(m != 0, ref != 0)


def test_mask_follows_definition(ops, dtype):
    p = 0.3
    m = np.empty((4, 6), dtype=dtype)
    ops.dropout_mask(99, 3, p, m)
    u = [(bits_py(99, 3, j) >> 11) * 2.0**-53 for j in range(m.size)]
    expected = np.where(np.array(u) >= p, dtype(1 / (1 - p)), 0).reshape(m.shape)
    np.testing.assert_array_equal(m, expected)


def test_different_counters_and_keys_differ(ops, dtype):
    shape, p = (50, 40), 0.5
    base = np.empty(shape, dtype)
    ops.dropout_mask(1, 0, p, base)
    for key, counter in [(1, 1), (1, 2), (2, 0), (0, 0), (2**62, 0)]:
        other = np.empty(shape, dtype)
        ops.dropout_mask(key, counter, p, other)
        agree = np.mean((other != 0) == (base != 0))
        assert 0.45 < agree < 0.55, (key, counter, agree)  # independent: about 1/2
    again = np.empty(shape, dtype)
    ops.dropout_mask(1, 0, p, again)
    np.testing.assert_array_equal(again, base)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8, 0.95])
def test_kept_fraction_and_values(ops, dtype, p):
    m = np.empty((1000, 1000), dtype)
    ops.dropout_mask(2024, 17, p, m)
    kept = m != 0
    assert abs(kept.mean() - (1 - p)) < 0.005
    assert np.all(m[kept] == dtype(1.0 / (1.0 - p)))
    assert np.all(m[~kept] == 0)


def test_p_zero_keeps_everything(ops, dtype):
    m = np.empty((300, 7), dtype)
    ops.dropout_mask(5, 5, 0.0, m)
    np.testing.assert_array_equal(m, np.ones_like(m))
