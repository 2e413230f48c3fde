"""Per-sample weights (the ``*_weighted`` losses), the Dense-weight L2 term and
Adam's eps_hat, proven like every other op: kernel against reference, central
finite differences, PyTorch (``reduction="none"`` times the weights), and the
same training through ``Sequential.fit`` in both backends."""
import numpy as np
import pytest

import fastbp as fb
import fastbp.kernels as K
import fastbp.reference as R
from conftest import GRAD_RTOL, assert_close, numerical_grad, rel_error, rtol_for

N, C = 9, 4


def _weights(rng, n=N, dtype=np.float64):
    sw = rng.uniform(0.0, 3.0, n)
    sw[1] = 0.0                                   # a zero weight counts for nothing
    return sw.astype(dtype)


def _args(name, rng, dtype, sw):
    """Fresh argument tuples for a weighted loss (outputs NaN-filled)."""
    out = np.full((N, C), np.nan, dtype)
    if name == "mse_loss_weighted":
        p, t = (rng.standard_normal((N, C)).astype(dtype) for _ in range(2))
        return lambda s=False, h=True: (p, t, sw, s, h, out.copy())
    if name == "bce_with_logits_weighted":
        z = (rng.standard_normal((N, C)) * 3).astype(dtype)
        t = rng.random((N, C)).astype(dtype)
        return lambda: (z, t, sw, out.copy())
    z = (rng.standard_normal((N, C)) * 3).astype(dtype)
    lab = rng.integers(0, C, N).astype(np.int64)
    return lambda: (z, lab, sw, out.copy(), out.copy())


LOSSES = ["mse_loss_weighted", "softmax_cross_entropy_weighted", "bce_with_logits_weighted"]


@pytest.mark.parametrize("name", LOSSES)
def test_kernel_matches_reference(rng, dtype, name):
    make = _args(name, rng, dtype, _weights(rng, dtype=dtype))
    ka, ra = make(), make()
    lk, lr = getattr(K, name)(*ka), getattr(R, name)(*ra)
    rtol = rtol_for(dtype)
    assert abs(lk - lr) <= rtol * abs(lr) * 10
    assert_close(ka[-1], ra[-1], rtol, np.abs(ra[-1]).max(), name)


@pytest.mark.parametrize("name", LOSSES)
def test_unit_weights_give_the_unweighted_loss(ops, rng, name):
    make = _args(name, rng, np.float64, np.ones(N))
    args = make()
    plain = {"mse_loss_weighted": ("mse_loss", lambda a: (a[0], a[1], a[3], a[4], a[5].copy())),
             "bce_with_logits_weighted": ("bce_with_logits", lambda a: (a[0], a[1], a[3].copy())),
             "softmax_cross_entropy_weighted": ("softmax_cross_entropy",
                                                lambda a: (a[0], a[1], a[3].copy(), a[4].copy()))}
    fn, pick = plain[name]
    uargs = pick(args)
    lw, lu = getattr(ops, name)(*args), getattr(ops, fn)(*uargs)
    assert lw == pytest.approx(lu, rel=1e-13)
    np.testing.assert_allclose(args[-1], uargs[-1], rtol=1e-13, atol=1e-16)


@pytest.mark.parametrize("name", LOSSES)
def test_gradient_matches_finite_differences(ops, rng, name):
    make = _args(name, rng, np.float64, _weights(rng))
    args = make()
    fn = getattr(ops, name)
    numeric = numerical_grad(lambda: fn(*make()), args[0])
    fn(*args)
    assert rel_error(numeric, args[-1]) < GRAD_RTOL


def test_all_zero_weights_give_zero(ops, rng):
    for name in LOSSES:
        args = _args(name, rng, np.float64, np.zeros(N))()
        assert getattr(ops, name)(*args) == 0.0
        assert not args[-1].any()


def test_against_torch_reduction_none_times_weights(ops, rng):
    torch = pytest.importorskip("torch")
    sw = _weights(rng)
    tw = torch.tensor(sw)
    cases = [("mse_loss_weighted", lambda p, t: 0.5 * torch.nn.MSELoss(reduction="none")(p, t)
              .mean(dim=1), 1.0),
             ("bce_with_logits_weighted", lambda z, t: torch.nn.BCEWithLogitsLoss(
                 reduction="none")(z, t).mean(dim=1), 1.0),
             ("softmax_cross_entropy_weighted", lambda z, lab: torch.nn.CrossEntropyLoss(
                 reduction="none")(z, lab), 1.0)]
    for name, per_row, _ in cases:
        args = _args(name, rng, np.float64, sw)()
        x = torch.tensor(args[0], requires_grad=True)
        tgt = torch.tensor(args[1])
        loss_t = (per_row(x, tgt) * tw).sum() / tw.sum()
        loss_t.backward()
        loss = getattr(ops, name)(*args)
        assert loss == pytest.approx(loss_t.item(), rel=1e-12)
        np.testing.assert_allclose(args[-1], x.grad.numpy(), rtol=1e-10, atol=1e-15)


def test_add_l2_matches_reference_and_its_penalty(rng):
    m = fb.MLP([3, 4, 2], activation="tanh", output_activation="identity", seed=1)
    plan = m._workspace(5)["plan"]
    g0 = rng.standard_normal(m.n_params)
    gk, gr = g0.copy(), g0.copy()
    sk = K.add_l2(plan, m.params, gk, 0.3)
    sr = R.add_l2(plan, m.params, gr, 0.3)
    W = [m.layers[0].W, m.layers[2].W]
    assert sk == pytest.approx(sr, rel=1e-13) and sr == pytest.approx(sum((w ** 2).sum() for w in W))
    np.testing.assert_allclose(gk, gr, rtol=1e-15)
    moved = gr != g0
    assert moved.sum() == sum(w.size for w in W)           # biases untouched


def _fit(backend, opt, batch, **kw):
    rng = np.random.default_rng(5)
    X = rng.standard_normal((23, 3))
    y = rng.integers(0, 3, 23)
    m = fb.MLP([3, 6, 3], activation="relu", output_activation="identity",
               loss="cross_entropy", backend=backend, seed=2)
    h = m.fit(X, y, epochs=3, lr=0.05, batch_size=batch, optimizer=opt, **kw)
    return m, h


@pytest.mark.parametrize("batch", [1, 5])
@pytest.mark.parametrize("opt", ["sgd", "adam-hat"])
def test_fit_with_weights_and_l2_same_in_both_backends(batch, opt):
    sw = np.random.default_rng(0).uniform(0, 2, 23)
    o = fb.Adam(eps_hat=True) if opt == "adam-hat" else fb.SGD(momentum=0.9)
    mk, hk = _fit("numba", o, batch, sample_weight=sw, l2=0.1)
    mr, hr = _fit("numpy", o, batch, sample_weight=sw, l2=0.1)
    np.testing.assert_allclose(mk.params, mr.params, rtol=0, atol=1e-12)
    np.testing.assert_allclose(hk.loss, hr.loss, rtol=1e-12)
    plain, _ = _fit("numba", o, batch)
    assert np.abs(plain.params - mk.params).max() > 1e-3


def test_integer_weights_equal_repeated_rows_in_one_batch():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((10, 3))
    y = rng.random((10, 1))
    sw = rng.integers(1, 4, 10)
    a = fb.MLP([3, 5, 1], activation="tanh", output_activation="sigmoid", loss="bce", seed=0)
    b = fb.MLP([3, 5, 1], activation="tanh", output_activation="sigmoid", loss="bce", seed=0)
    a.fit(X, y, epochs=4, lr=0.1, batch_size=10, shuffle=False, sample_weight=sw, l2=0.05)
    rep = np.repeat(np.arange(10), sw)
    b.fit(X[rep], y[rep], epochs=4, lr=0.1, batch_size=rep.size, shuffle=False,
          l2=0.05 * rep.size / sw.sum())
    np.testing.assert_allclose(a.params, b.params, rtol=1e-12, atol=1e-14)


def test_adam_eps_hat_is_the_epsilon_hat_formula(rng):
    """eps_hat=True: lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps), every step."""
    X = rng.standard_normal((8, 2))
    y = rng.standard_normal((8, 1))
    m = fb.MLP([2, 1], output_activation="identity", loss="mse", seed=0)
    p = m.params.copy()
    mom, vel = np.zeros_like(p), np.zeros_like(p)
    b1, b2, eps, lr = 0.9, 0.999, 1e-3, 0.1
    for t in range(1, 4):
        _, grads = m.loss_and_grads(X, y)
        g = np.concatenate([a.ravel() for a in grads])
        mom = b1 * mom + (1 - b1) * g
        vel = b2 * vel + (1 - b2) * g * g
        p = p - lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t) * mom / (np.sqrt(vel) + eps)
        m.fit(X, y, epochs=1, lr=lr, batch_size=8, shuffle=False,
              optimizer=fb.Adam(eps=eps, eps_hat=True))
        np.testing.assert_allclose(m.params, p, rtol=1e-13)


def test_bad_sample_weight_is_refused():
    m = fb.MLP([2, 1], output_activation="identity", loss="mse")
    X, y = np.zeros((4, 2)), np.zeros(4)
    for bad, match in ((np.ones(3), "shape"), (-np.ones(4), "non-negative"),
                       (np.zeros(4), "all zeros"), ([1, 1, np.nan, 1], "non-negative")):
        with pytest.raises(ValueError, match=match):
            m.fit(X, y, sample_weight=bad)
    with pytest.raises(ValueError, match="l2"):
        m.fit(X, y, l2=-1.0)
