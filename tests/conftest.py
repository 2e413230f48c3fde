"""Shared fixtures, tolerances and checks for the fastbp test suite.

Every test builds its data from a seeded ``numpy.random.Generator``; nothing
touches NumPy's global RNG.
"""
import importlib

import numpy as np
import pytest

SEED = 20240611

# The two backends' op modules: same function names, same signatures.
BACKENDS = {"numba": "fastbp.kernels", "numpy": "fastbp.reference"}

DTYPES = (np.float64, np.float32)

# Kernel-vs-reference agreement for single ops (relative, see assert_close).
RTOL = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 1e-5}

# Finite-difference gradient checks (float64, central differences).
GRAD_RTOL = 1e-6

# Agreement with PyTorch in float64.
TORCH_RTOL = 1e-10

# Input magnitudes for the parity sweeps: linear ops take 1e+-30 in both dtypes;
# ops that square their input (variances, squared errors, Adam's second moment)
# stay within float32's range at 1e+-15.
SCALES = {np.dtype(np.float64): (1e-30, 1.0, 1e30), np.dtype(np.float32): (1e-30, 1.0, 1e30)}
SQUARE_SCALES = {np.dtype(np.float64): (1e-30, 1.0, 1e30),
                 np.dtype(np.float32): (1e-15, 1.0, 1e15)}

# Batch and feature sizes: batch 1, width 1, odd sizes, and big enough
# (130 x 130 x 130 > SMALL_GEMM) to take dense's BLAS branch.
SIZES = (1, 2, 3, 7, 33, 130)


def rtol_for(dtype):
    return RTOL[np.dtype(dtype)]


def assert_close(actual, desired, rtol, scale=0.0, err_msg=""):
    """``|actual - desired| <= rtol * (|desired| + scale)`` elementwise.

    ``scale`` (scalar or broadcastable array) is the magnitude of the terms that
    produced ``desired``: where a result cancels to near zero, its rounding
    error is relative to the terms, not to the result. Non-finite values must
    match exactly (same infinities, NaN in the same places).
    """
    actual = np.asarray(actual, dtype=np.float64)
    desired = np.asarray(desired, dtype=np.float64)
    assert actual.shape == desired.shape, (actual.shape, desired.shape, err_msg)
    fin = np.isfinite(desired)
    np.testing.assert_array_equal(np.isfinite(actual), fin, err_msg=err_msg)
    np.testing.assert_array_equal(actual[~fin], desired[~fin], err_msg=err_msg)
    bound = rtol * (np.abs(desired) + np.asarray(scale, dtype=np.float64))
    bound = np.broadcast_to(bound, desired.shape)
    err = np.abs(actual - desired)
    bad = fin & ~(err <= bound)
    if bad.any():
        i = np.flatnonzero(bad.ravel())[0]
        raise AssertionError(
            f"{err_msg}: {bad.sum()} of {bad.size} elements differ; first at flat {i}: "
            f"actual {actual.ravel()[i]!r}, desired {desired.ravel()[i]!r}, "
            f"|diff| {err.ravel()[i]:.3e} > bound {bound.ravel()[i]:.3e}")


def rel_error(a, b):
    """Norm-wise relative error ``max|a - b| / max(max|a|, max|b|)`` (0 when both are 0)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    den = max(np.max(np.abs(a), initial=0.0), np.max(np.abs(b), initial=0.0))
    return 0.0 if den == 0 else float(np.max(np.abs(a - b), initial=0.0) / den)


def numerical_grad(f, x, h=1e-6):
    """Central differences of the scalar function ``f()`` with respect to ``x``,
    perturbed in place one element at a time (and restored)."""
    g = np.zeros_like(x, dtype=np.float64)
    flat = x.reshape(-1)
    gflat = g.reshape(-1)
    for j in range(flat.size):
        old = flat[j]
        step = h * max(1.0, abs(old))
        flat[j] = old + step
        fp = f()
        flat[j] = old - step
        fm = f()
        flat[j] = old
        gflat[j] = (fp - fm) / (2 * step)
    return g


@pytest.fixture
def rng():
    """A fresh seeded Generator per test."""
    return np.random.default_rng(SEED)


@pytest.fixture(params=[np.float64, np.float32], ids=["float64", "float32"])
def dtype(request):
    return request.param


@pytest.fixture(params=sorted(BACKENDS), ids=sorted(BACKENDS))
def backend(request):
    """Backend name, "numba" or "numpy"."""
    return request.param


@pytest.fixture
def ops(backend):
    """The op module of ``backend``: fastbp.kernels or fastbp.reference."""
    return importlib.import_module(BACKENDS[backend])
