"""Per-sample SGD: the shape-specialised kernel, the generic kernel and the reference agree."""
import numpy as np
import pytest

import fastbp as fb
from fastbp import kernels
from fastbp.kernels import online as k_online
from fastbp.kernels import specialize, specialize_online
from fastbp import plan as P

STACKS = {
    "seed001": (lambda: [fb.Dense(2, 4, init="uniform"), fb.Sigmoid(), fb.Dense(4, 4, init="uniform"),
                         fb.Sigmoid(), fb.Dense(4, 1, init="uniform"), fb.Sigmoid()], fb.MSE(), 1),
    "tanh_dropout_bce": (lambda: [fb.Dense(2, 8), fb.Tanh(), fb.Dropout(0.3), fb.Dense(8, 1),
                                  fb.Sigmoid()], fb.BinaryCrossEntropy(), 1),
    "relu_ce": (lambda: [fb.Dense(2, 16), fb.ReLU(), fb.Dense(16, 16), fb.ReLU(), fb.Dense(16, 3)],
                fb.SoftmaxCrossEntropy(), 3),
    "act_rows_mse_sum": (lambda: [fb.Dense(2, 5, bias=False), fb.Identity(), fb.Tanh(),
                                  fb.Dropout(0.2), fb.Sigmoid(), fb.Dense(5, 2)],
                         fb.MSE(reduction="sum", half=True), 2),
    "act_rows_bce": (lambda: [fb.Dense(2, 5, bias=False), fb.Identity(), fb.Tanh(), fb.Sigmoid(),
                              fb.Dense(5, 1), fb.Sigmoid()], fb.BinaryCrossEntropy(), 1),
}
UNIT_BY_UNIT = ["seed001", "act_rows_bce"]     # small, no Dropout: plain SGD written out
OPTS = {"sgd": dict(), "momentum_wd": dict(momentum=0.9, weight_decay=1e-3),
        "nesterov": dict(momentum=0.8, nesterov=True), "adam": dict(optimizer="adam")}


def _data(k, n=31):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(n, 2))
    if k == 3:
        return X, rng.integers(0, 3, n)
    return X, rng.random((n, k))


def _train(stack, opt, backend, dtype="float64", generic=False, monkeypatch=None):
    layers, loss, k = STACKS[stack]
    m = fb.Sequential(layers(), loss=loss, backend=backend, dtype=dtype, seed=2)
    X, y = _data(k)
    if generic:
        monkeypatch.setattr(k_online, "select_online",
                            lambda *a: k_online.train_epochs_online)
        monkeypatch.setattr("fastbp.kernels.select_online", k_online.select_online)
    h = m.fit(X, y, epochs=15, lr=0.05, batch_size=1, **OPTS[opt])
    return m, h


@pytest.mark.parametrize("opt", OPTS)
@pytest.mark.parametrize("stack", STACKS)
def test_specialised_equals_generic_bit_for_bit_and_matches_reference(stack, opt, monkeypatch):
    fast, hf = _train(stack, opt, "numba")
    with monkeypatch.context() as mp:
        gen, hg = _train(stack, opt, "numba", generic=True, monkeypatch=mp)
    ref, hr = _train(stack, opt, "numpy")
    np.testing.assert_array_equal(fast.params, gen.params)
    assert hf.loss == hg.loss and hf.accuracy == hg.accuracy
    np.testing.assert_allclose(fast.params, ref.params, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(hf.loss, hr.loss, rtol=1e-10)
    assert hf.accuracy == hr.accuracy


@pytest.mark.parametrize("stack", STACKS)
def test_float32_specialised_tracks_the_reference(stack):
    """float32: one epoch (31 updates) within 1e-4; rounding differences grow with steps."""
    layers, loss, k = STACKS[stack]
    X, y = _data(k)
    out = []
    for backend in ("numba", "numpy"):
        m = fb.Sequential(layers(), loss=loss, backend=backend, dtype="float32", seed=2)
        m.fit(X, y, epochs=1, lr=0.05, batch_size=1, momentum=0.9)
        out.append(m.params.copy())
    assert out[0].dtype == np.float32
    np.testing.assert_allclose(out[0], out[1], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("stack", UNIT_BY_UNIT)
def test_float32_step_written_unit_by_unit_equals_generic_bit_for_bit(stack, monkeypatch):
    fast, hf = _train(stack, "sgd", "numba", dtype="float32")
    with monkeypatch.context() as mp:
        gen, hg = _train(stack, "sgd", "numba", dtype="float32", generic=True, monkeypatch=mp)
    assert fast.params.dtype == np.float32
    np.testing.assert_array_equal(fast.params, gen.params)
    assert hf.loss == hg.loss and hf.accuracy == hg.accuracy


def test_which_steps_are_written_unit_by_unit():
    def plan(layers):
        return fb.Sequential(layers)._workspace(1)["plan"]
    for name in STACKS:
        p = plan(STACKS[name][0]())
        assert specialize_online.scalar(p, True) == (name in UNIT_BY_UNIT)
        assert not specialize_online.scalar(p, False)       # momentum, weight decay, Adam
    assert specialize_online.SCALAR_MAX_MACS == 32
    assert specialize_online.scalar(plan([fb.Dense(4, 4), fb.Tanh(), fb.Dense(4, 4)]), True)
    assert not specialize_online.scalar(plan([fb.Dense(4, 4), fb.Tanh(), fb.Dense(4, 5)]), True)
    source = specialize_online.source(plan(STACKS["seed001"][0]()), P.MSE, P.SGD, "float64")
    step = source[source.index("i = order[row, s]"):]
    assert "v1_3 = _sigmoid_called(v1_3, T(1))" in step
    assert "for j in range" not in step.split("n_drop")[0]


def test_specialised_source_is_cached_by_shape(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTBP_CACHE_DIR", str(tmp_path))
    # shapes no other test trains, so no kernel of theirs is in this process's memo yet
    m = fb.MLP([2, 3, 7, 1])
    plan = m._workspace(1)["plan"]
    f1 = specialize_online.kernel(plan, P.MSE, P.SGD, "float64")
    f2 = specialize_online.kernel(plan.copy(), P.MSE, P.SGD, "float64")
    assert f1 is f2
    files = list(tmp_path.rglob("fastbp_online_*.py"))
    assert len(files) == 1
    other = fb.MLP([2, 5, 7, 1])._workspace(1)["plan"]
    assert specialize_online.kernel(other, P.MSE, P.SGD, "float64") is not f1
    assert len(list(tmp_path.rglob("fastbp_online_*.py"))) == 2


def test_batchnorm_plans_are_not_specialised():
    m = fb.Sequential([fb.Dense(2, 3), fb.BatchNorm(3), fb.Dense(3, 1)])
    assert not specialize.supports(m._plan)


def _batch_engine(m, monkeypatch):
    """Make ``m`` predict, evaluate and differentiate through the batch kernels."""
    monkeypatch.setattr(m._engine, "_rows", ())


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("stack", STACKS)
def test_small_networks_predict_evaluate_and_differentiate_a_row_at_a_time(stack, dtype,
                                                                          monkeypatch):
    layers, loss, k = STACKS[stack]
    X, y = _data(k, n=23)
    X = X.astype(dtype)
    y = y if k == 3 else y.astype(dtype)
    fast = fb.Sequential(layers(), loss=loss, dtype=dtype, seed=4)
    ref = fb.Sequential(layers(), loss=loss, backend="numpy", dtype=dtype, seed=4)
    rows = fast._engine._rows_kernels()
    assert rows and rows[0] is not kernels.predict and rows[1] is not kernels.evaluate
    has_dropout = any(isinstance(layer, fb.Dropout) for layer in fast.layers)
    assert (rows[2] is None) == has_dropout     # with Dropout, training != eval: batch path
    tol = dict(rtol=1e-12, atol=1e-14) if dtype == "float64" else dict(rtol=1e-5, atol=1e-6)
    for bs in (1, 5, 1024):                     # the batch size does not matter a row at a time
        np.testing.assert_allclose(fast.predict(X, batch_size=bs), ref.predict(X), **tol)
        ef, er = fast.evaluate(X, y, batch_size=bs), ref.evaluate(X, y)
        np.testing.assert_allclose(ef["loss"], er["loss"], **tol)
        assert ef["accuracy"] == er["accuracy"]
    lf, gf = fast.loss_and_grads(X, y)
    lr_, gr = ref.loss_and_grads(X, y)
    np.testing.assert_allclose(lf, lr_, **tol)
    for a, b in zip(gf, gr):
        np.testing.assert_allclose(a, b, **tol)
    # and the batch kernels give the same numbers, up to the order of the additions
    with monkeypatch.context() as mp:
        _batch_engine(fast, mp)
        np.testing.assert_allclose(fast.predict(X), ref.predict(X), **tol)
        np.testing.assert_allclose(fast.loss_and_grads(X, y)[0], lr_, **tol)


def test_wide_and_batchnorm_networks_keep_the_batch_kernels():
    wide = fb.MLP([64, 128, 10], activation="relu", output_activation="identity",
                  loss="cross_entropy")
    assert specialize.EVAL_MAX_MACS < 64 * 128 + 128 * 10
    assert wide._engine._rows_kernels() == ()
    bn = fb.MLP([2, 4, 1], batchnorm=True)
    assert bn._engine._rows_kernels() == ()
    assert fb.MLP([2, 4, 1], backend="numpy")._engine._rows_kernels() == ()


def test_row_kernels_are_off_with_the_specialiser(monkeypatch):
    monkeypatch.setattr(specialize, "ENABLED", False)
    assert fb.MLP([2, 4, 1])._engine._rows_kernels() == ()


@pytest.mark.parametrize("stack", ["seed001", "tanh_dropout_bce"])
def test_a_per_sample_fit_compiles_its_eval_passes_with_it(stack):
    """After a per-sample fit of a small network, predict, evaluate and loss_and_grads
    run in the training kernel's own compiled function: nothing more to compile."""
    layers, loss, k = STACKS[stack]
    X, y = _data(k, n=23)
    m = fb.Sequential(layers(), loss=loss, seed=4)
    ref = fb.Sequential(layers(), loss=loss, backend="numpy", seed=4)
    for model in (m, ref):
        model.fit(X, y, epochs=2, batch_size=1, lr=0.1)
    rows = m._engine._rows_kernels()
    train = m._engine.trainer(1, loss.code, P.Optim(P.SGD, np.zeros(7), 0.0))
    assert rows == train.rows and rows[0].__module__ == train.__module__
    tol = dict(rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(m.predict(X), ref.predict(X), **tol)
    np.testing.assert_allclose(m.evaluate(X, y)["loss"], ref.evaluate(X, y)["loss"], **tol)
    if rows[2] is not None:
        np.testing.assert_allclose(m.loss_and_grads(X, y)[0], ref.loss_and_grads(X, y)[0], **tol)
    kernel = vars(__import__("sys").modules[train.__module__])["kernel"]
    assert len(kernel.signatures) == 1
