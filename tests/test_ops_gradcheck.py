"""Every backward against central finite differences of its forward, float64,
on both backends. Non-scalar ops are reduced to a scalar by a random
projection ``L = sum(out * R)``, so ``dout = R``."""
import numpy as np
import pytest

from conftest import GRAD_RTOL, numerical_grad, rel_error
from fastbp._config import IDENTITY, RELU, SIGMOID, TANH


def away_from_zero(rng, shape, margin=0.05):
    """Standard normal values with |v| >= margin (keeps ReLU's kink out of reach)."""
    v = rng.standard_normal(shape)
    return np.where(np.abs(v) < margin, np.sign(v + 1e-300) * margin, v) + 0.0


def check(numeric, analytic, what):
    err = rel_error(numeric, analytic)
    assert err <= GRAD_RTOL, f"{what}: relative error {err:.2e}"
    assert np.max(np.abs(analytic)) > 0, f"{what}: gradient is identically zero"


@pytest.mark.parametrize("bias", [True, False])
def test_dense(ops, rng, bias):
    n, i, o = 4, 5, 3
    x, W = rng.standard_normal((n, i)), rng.standard_normal((i, o))
    b = rng.standard_normal(o) if bias else np.zeros(0)
    R = rng.standard_normal((n, o))
    out = np.empty((n, o))

    def loss():
        ops.dense_forward(x, W, b, out)
        return float(np.sum(out * R))

    dx, dW, db = np.empty((n, i)), np.empty((i, o)), np.empty(o if bias else 0)
    ops.dense_backward(R, x, W, dx, dW, db)
    check(numerical_grad(loss, x), dx, "dx")
    check(numerical_grad(loss, W), dW, "dW")
    if bias:
        check(numerical_grad(loss, b), db, "db")


@pytest.mark.parametrize("act", [SIGMOID, RELU, TANH, IDENTITY],
                         ids=["sigmoid", "relu", "tanh", "identity"])
def test_activations(ops, rng, act):
    n, d = 5, 4
    x = away_from_zero(rng, (n, d)) * 2
    R = rng.standard_normal((n, d))
    out = np.empty((n, d))
    name = {SIGMOID: "sigmoid", RELU: "relu", TANH: "tanh", IDENTITY: "identity"}[act]

    def loss():
        getattr(ops, f"{name}_forward")(x, out)
        return float(np.sum(out * R))

    y = np.empty((n, d))
    ops.act_forward(x, act, y)
    numeric = numerical_grad(loss, x)
    dx = np.empty((n, d))
    getattr(ops, f"{name}_backward")(R, y, dx)
    check(numeric, dx, f"{name}_backward")
    ops.act_backward(R, y, act, dx)
    check(numeric, dx, f"act_backward {name}")


@pytest.mark.parametrize("act", [SIGMOID, RELU, TANH, IDENTITY],
                         ids=["sigmoid", "relu", "tanh", "identity"])
def test_bias_act(ops, rng, act):
    """bias_act's backward is act_backward for dz, and its column sum for db."""
    n, d = 5, 4
    z = away_from_zero(rng, (n, d)) * 2
    b = rng.standard_normal(d) * 0.01  # keeps z + b away from 0 too
    R = rng.standard_normal((n, d))
    out = np.empty((n, d))

    def loss():
        ops.bias_act_forward(z, b, act, out)
        return float(np.sum(out * R))

    y = np.empty((n, d))
    ops.bias_act_forward(z, b, act, y)
    dz = np.empty((n, d))
    ops.act_backward(R, y, act, dz)
    check(numerical_grad(loss, z), dz, "dz")
    check(numerical_grad(loss, b), dz.sum(0), "db")


def test_batchnorm_train(ops, rng):
    n, d = 6, 3
    x = rng.standard_normal((n, d)) * 2 + 1
    gamma, beta = rng.standard_normal(d), rng.standard_normal(d)
    R = rng.standard_normal((n, d))
    xhat, inv_std, out = np.empty((n, d)), np.empty(d), np.empty((n, d))

    def loss():
        ops.batchnorm_forward_train(x, gamma, beta, np.zeros(d), np.ones(d), 0.1, 1e-5,
                                    xhat, inv_std, out)
        return float(np.sum(out * R))

    num_x, num_g, num_b = (numerical_grad(loss, a) for a in (x, gamma, beta))
    loss()  # xhat, inv_std of the unperturbed input
    dx, dgamma, dbeta = np.empty((n, d)), np.empty(d), np.empty(d)
    ops.batchnorm_backward(R, xhat, inv_std, gamma, dx, dgamma, dbeta)
    check(num_x, dx, "dx")
    check(num_g, dgamma, "dgamma")
    check(num_b, dbeta, "dbeta")


def test_dropout_fixed_mask(ops, rng):
    n, d = 5, 6
    x = rng.standard_normal((n, d))
    mask = np.empty((n, d))
    ops.dropout_mask(7, 3, 0.4, mask)
    assert 0 < np.count_nonzero(mask) < mask.size
    R = rng.standard_normal((n, d))
    out = np.empty((n, d))

    def loss():
        ops.dropout_forward(x, mask, out)
        return float(np.sum(out * R))

    dx = np.empty((n, d))
    ops.dropout_backward(R, mask, dx)
    check(numerical_grad(loss, x), dx, "dx")


def test_softmax_cross_entropy(ops, rng):
    n, k = 5, 4
    logits = rng.standard_normal((n, k)) * 2
    labels = rng.integers(0, k, n).astype(np.int64)
    probs, dl = np.empty((n, k)), np.empty((n, k))

    def loss():
        return ops.softmax_cross_entropy(logits, labels, np.empty((n, k)), np.empty((n, k)))

    numeric = numerical_grad(loss, logits)
    ops.softmax_cross_entropy(logits, labels, probs, dl)
    check(numeric, dl, "dlogits")


@pytest.mark.parametrize("sum_reduction", [False, True], ids=["mean", "sum"])
@pytest.mark.parametrize("half", [False, True], ids=["full", "half"])
def test_mse(ops, rng, sum_reduction, half):
    n, k = 4, 3
    pred, target = rng.standard_normal((n, k)), rng.standard_normal((n, k))

    def loss():
        return ops.mse_loss(pred, target, sum_reduction, half, np.empty((n, k)))

    numeric = numerical_grad(loss, pred)
    dpred = np.empty((n, k))
    ops.mse_loss(pred, target, sum_reduction, half, dpred)
    check(numeric, dpred, "dpred")


def test_bce_with_logits(ops, rng):
    n, k = 4, 3
    z = rng.standard_normal((n, k)) * 3
    t = rng.random((n, k))
    t[0] = [0.0, 1.0, 1.0]

    def loss():
        return ops.bce_with_logits(z, t, np.empty((n, k)))

    numeric = numerical_grad(loss, z)
    dz = np.empty((n, k))
    ops.bce_with_logits(z, t, dz)
    check(numeric, dz, "dz")
