"""Extreme inputs: exact saturation, finite losses, and no floating-point warnings
(overflow, divide-by-zero, invalid) from either backend, in both dtypes."""
import math
import warnings
from contextlib import contextmanager

import numpy as np
import pytest
from scipy.special import expit

from fastbp._config import IDENTITY, RELU, SIGMOID, TANH


@contextmanager
def no_fp_warnings():
    """Any warning raises; NumPy overflow/divide/invalid raise too (underflow,
    e.g. exp(-1e4) = 0, is silent and allowed)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", divide="raise", invalid="raise"):
            yield


def big_values(dtype):
    fmax = float(np.finfo(dtype).max)
    return np.array([[1e4, -1e4, 50.0, -50.0, 0.0],
                     [1e30, -1e30, fmax, -fmax, 800.0]], dtype=dtype)


def test_sigmoid_saturates_exactly(ops, dtype):
    x = np.array([[1e4, -1e4]], dtype=dtype)
    out = np.empty_like(x)
    with no_fp_warnings():
        ops.sigmoid_forward(x, out)
    assert out[0, 0] == 1.0 and out[0, 1] == 0.0
    with no_fp_warnings():
        ops.act_forward(x, SIGMOID, out)
    assert out[0, 0] == 1.0 and out[0, 1] == 0.0


@pytest.mark.parametrize("act", [SIGMOID, RELU, TANH, IDENTITY],
                         ids=["sigmoid", "relu", "tanh", "identity"])
def test_activations_extreme_inputs(ops, dtype, act):
    x = big_values(dtype)
    out = np.empty_like(x)
    with no_fp_warnings():
        ops.act_forward(x, act, out)
    assert np.all(np.isfinite(out))
    if act == SIGMOID:
        expected = expit(x.astype(np.float64))  # SciPy's logistic function
        np.testing.assert_allclose(out, expected, rtol=4 * np.finfo(dtype).eps, atol=0)
        assert np.all(out[np.abs(x) >= 1e4] == (x[np.abs(x) >= 1e4] > 0))  # exact 0 and 1
    elif act == TANH:
        np.testing.assert_array_equal(out, np.sign(x))
    dx = np.empty_like(x)
    with no_fp_warnings():
        ops.act_backward(np.ones_like(x), out, act, dx)
    assert np.all(np.isfinite(dx))


def test_bias_act_sigmoid_saturates(ops, dtype):
    z = np.array([[1e4, -1e4], [0.0, 0.0]], dtype=dtype)
    b = np.array([0.0, 0.0], dtype=dtype)
    out = np.empty_like(z)
    with no_fp_warnings():
        ops.bias_act_forward(z, b, SIGMOID, out)
    np.testing.assert_array_equal(out, [[1.0, 0.0], [0.5, 0.5]])
    b = np.array([-1e4, 1e4], dtype=dtype)  # the bias alone saturates row 2
    with no_fp_warnings():
        ops.bias_act_forward(z, b, SIGMOID, out)
    np.testing.assert_array_equal(out, [[0.5, 0.5], [0.0, 1.0]])


def test_softmax_cross_entropy_extreme_logits(ops, dtype):
    logits = np.array([[1e4, -1e4, 0.0],    # label 1: loss 2e4
                       [1e4, -1e4, 0.0],    # label 0: loss exp(-1e4) -> 0
                       [5e3, 5e3, -1e4]],   # label 0: loss log 2
                      dtype=dtype)
    labels = np.array([1, 0, 0], dtype=np.int64)
    probs, dl = np.empty_like(logits), np.empty_like(logits)
    with no_fp_warnings():
        loss = ops.softmax_cross_entropy(logits, labels, probs, dl)
    expected = (2e4 + 0.0 + math.log(2.0)) / 3  # analytic row losses
    assert math.isfinite(loss)
    assert loss == pytest.approx(expected, rel=1e-6)
    np.testing.assert_allclose(probs, [[1, 0, 0], [1, 0, 0], [0.5, 0.5, 0]], atol=1e-7)
    np.testing.assert_allclose(dl, np.array([[1, -1, 0], [0, 0, 0], [-0.5, 0.5, 0]]) / 3,
                               atol=1e-7)


def test_bce_with_logits_extreme(ops, dtype):
    z = np.array([[1e4, -1e4, 1e4, -1e4]], dtype=dtype)
    t = np.array([[1.0, 0.0, 0.0, 1.0]], dtype=dtype)
    dz = np.empty_like(z)
    with no_fp_warnings():
        loss = ops.bce_with_logits(z, t, dz)
    assert math.isfinite(loss)
    # right answers cost exp(-1e4) ~ 0; wrong ones cost |z| = 1e4: mean 2e4 / 4
    assert loss == pytest.approx(5e3, rel=1e-7)
    np.testing.assert_array_equal(dz, np.array([[0.0, 0.0, 1.0, -1.0]], dtype=dtype) / 4)


def test_mse_and_batchnorm_no_warnings_on_ordinary_data(ops, dtype, rng):
    """Sanity: no spurious warnings (e.g. from uint64 or dtype promotions)."""
    x = rng.standard_normal((8, 3)).astype(dtype)
    d = np.empty_like(x)
    with no_fp_warnings():
        ops.mse_loss(x, x * 0, False, False, d)
        ops.batchnorm_forward_train(x, np.ones(3, dtype), np.zeros(3, dtype), np.zeros(3, dtype),
                                    np.ones(3, dtype), 0.1, 1e-5, d, np.empty(3, dtype),
                                    np.empty_like(x))
        ops.dropout_mask(2**63 - 1, 2**62, 0.5, d)
        ops.hash_uniform(2**63 - 1, 2**63 - 1, d)
