"""Mini-batch kernels generated per network: the same bits as the generic kernels, the
NumPy reference's numbers, and the generic engine wherever they do not apply."""
import numpy as np
import pytest

import fastbp as fb
from fastbp import plan as P
from fastbp.kernels import network as k_network
from fastbp.kernels import specialize_batch

# wide enough that predict/evaluate run in batches (not the small networks' row kernels);
# each has a layer narrow enough for the generic kernels' small-product loops at small b
STACKS = {
    "relu_ce": (lambda: [fb.Dense(6, 80), fb.ReLU(), fb.Dense(80, 40), fb.ReLU(),
                         fb.Dense(40, 3)], fb.SoftmaxCrossEntropy(), 3),
    "tanh_dropout_bce": (lambda: [fb.Dense(6, 70), fb.Tanh(), fb.Dropout(0.3), fb.Dense(70, 2),
                                  fb.Sigmoid()], fb.BinaryCrossEntropy(), 2),
    "act_rows_mse_sum": (lambda: [fb.Dense(6, 90, bias=False), fb.Dropout(0.1), fb.Identity(),
                                  fb.Sigmoid(), fb.Dense(90, 60), fb.Tanh(), fb.Dense(60, 1)],
                         fb.MSE(reduction="sum", half=True), 1),
    "sigmoid_mse": (lambda: [fb.Dense(6, 100), fb.Sigmoid(), fb.Dense(100, 4), fb.Sigmoid()],
                    fb.MSE(), 4),
    "batchnorm_first_dropout_ce": (lambda: [fb.BatchNorm(6), fb.Dense(6, 80), fb.ReLU(),
                                            fb.BatchNorm(80), fb.Dropout(0.2), fb.Dense(80, 3)],
                                   fb.SoftmaxCrossEntropy(), 3),
}
OPTS = {"sgd": dict(), "momentum_wd": dict(momentum=0.9, weight_decay=1e-3),
        "nesterov": dict(momentum=0.8, nesterov=True), "adam": dict(optimizer="adam")}


def _data(k, n=101):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(n, 6))
    if k == 3:
        return X, rng.integers(0, 3, n)
    return X, (rng.random((n, k)) > 0.5).astype(float) if k == 2 else rng.random((n, k))


def _generic(monkeypatch):
    monkeypatch.setattr(specialize_batch, "module", lambda *a, **k: None)


def _run(stack, opt, dtype="float64", backend="numba", batch=16, **fit):
    layers, loss, k = STACKS[stack]
    m = fb.Sequential(layers(), loss=loss, backend=backend, dtype=dtype, seed=2)
    X, y = _data(k)
    lr = 0.002 if stack == "act_rows_mse_sum" else 0.05     # the summed loss's steps are larger
    h = m.fit(X, y, epochs=4, lr=lr, batch_size=batch, **OPTS[opt], **fit)
    loss_, grads = m.loss_and_grads(X, y)                  # training mode
    loss_e, grads_e = m.loss_and_grads(X, y, training=False)
    ev = m.evaluate(X, y, batch_size=24)
    return m, dict(forward_train=m.forward(X, training=True), forward_eval=m.forward(X),params=m.params.copy(), counters=m._counters.copy(),
                   state=m.state.copy(), lg_eval_loss=np.array(loss_e),
                   grads_eval=np.concatenate([g.ravel() for g in grads_e]),
                   predict=m.predict(X, batch_size=24), loss=np.array(h.loss),
                   accuracy=np.array(h.accuracy), lg_loss=np.array(loss_),
                   grads=np.concatenate([g.ravel() for g in grads]),
                   evaluate=np.array([ev["loss"], ev["accuracy"]]))


@pytest.mark.parametrize("opt, dtype", [(o, "float64") for o in OPTS]
                         + [("momentum_wd", "float32"), ("adam", "float32")])
@pytest.mark.parametrize("stack", STACKS)
def test_generated_equals_generic_bit_for_bit(stack, opt, dtype, monkeypatch):
    m, fast = _run(stack, opt, dtype)
    assert m._engine._batch[1] is not None          # the generated module ran
    with monkeypatch.context() as mp:
        _generic(mp)
        g, slow = _run(stack, opt, dtype)
        assert g._engine._batch[1] is None
    for name in fast:
        np.testing.assert_array_equal(fast[name], slow[name], err_msg=name)


@pytest.mark.parametrize("opt", ["sgd", "adam"])
@pytest.mark.parametrize("stack", STACKS)
def test_generated_matches_the_reference(stack, opt):
    _, fast = _run(stack, opt)
    _, ref = _run(stack, opt, backend="numpy")
    for name in fast:
        np.testing.assert_allclose(fast[name], ref[name], rtol=1e-10, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("batch", [1, 5, 101, 500])
def test_every_batch_size_and_stop_at_accuracy(batch, monkeypatch):
    """Batches that divide n or not, one batch bigger than n, and the eval pass that
    ``stop_at_accuracy`` runs after every epoch."""
    kw = dict(batch=batch, stop_at_accuracy=0.5)
    _, fast = _run("relu_ce", "momentum_wd", **kw)
    with monkeypatch.context() as mp:
        _generic(mp)
        _, slow = _run("relu_ce", "momentum_wd", **kw)
    for name in fast:
        np.testing.assert_array_equal(fast[name], slow[name], err_msg=name)


def test_one_module_serves_every_batch_size():
    m = fb.Sequential(STACKS["relu_ce"][0](), loss=fb.SoftmaxCrossEntropy(), seed=2)
    mods = {id(specialize_batch.module(m._workspace(b)["plan"], P.SOFTMAX_CE, P.SGD, "float64"))
            for b in (1, 7, 32, 1000)}
    assert len(mods) == 1
    assert specialize_batch.module(m._workspace(7)["plan"], P.SOFTMAX_CE, P.ADAM,
                                   "float64").train_epochs is not m._engine.ops.train_epochs


WEIGHTS = np.linspace(0.5, 2.0, 101)
RUNS = {"sample_weight": dict(sample_weight=WEIGHTS),
        "zero_weight_batches": dict(sample_weight=np.where(np.arange(101) < 40, 0.0, WEIGHTS),
                                    shuffle=False),
        "l2": dict(l2=1e-2),
        "l2_weighted": dict(l2=1e-2, sample_weight=WEIGHTS, momentum=0.9),
        "eps_hat": dict(optimizer=fb.Adam(eps_hat=True))}


@pytest.mark.parametrize("run", RUNS)
@pytest.mark.parametrize("stack", ["relu_ce", "tanh_dropout_bce", "act_rows_mse_sum"])
def test_weights_l2_and_eps_hat_bit_for_bit(stack, run, monkeypatch):
    m, fast = _run(stack, "sgd", **RUNS[run])
    assert m._engine._batch[1] is not None
    with monkeypatch.context() as mp:
        _generic(mp)
        _, slow = _run(stack, "sgd", **RUNS[run])
    for name in fast:
        np.testing.assert_array_equal(fast[name], slow[name], err_msg=name)


def test_disabled_the_generic_engine_serves(monkeypatch):
    monkeypatch.setattr("fastbp.kernels.specialize.ENABLED", False)
    m = fb.Sequential([fb.Dense(6, 80), fb.ReLU(), fb.Dense(80, 3)],
                      loss=fb.SoftmaxCrossEntropy(), seed=2)
    used = []
    real = k_network.train_epochs
    monkeypatch.setattr(m._engine.ops, "train_epochs", lambda *a: used.append(1) or real(*a))
    m.fit(*_data(3), epochs=2, batch_size=16)
    assert used and m._engine._batch[1] is None


def test_generated_source_names_its_network():
    """Sizes and parameter offsets are constants, workspace offsets come from the plan."""
    m = fb.Sequential(STACKS["relu_ce"][0](), loss=fb.SoftmaxCrossEntropy(), seed=2)
    text = specialize_batch.source(m._workspace(1)["plan"], P.SOFTMAX_CE, P.SGD, "float64")
    assert "_view2d(params, 0, 6, 80)" in text
    assert f"_view2d(ws, plan[0, {P.OUT}], b, 80)" in text
    assert "def loss_and_grads(" in text
    assert "_xgemm(T_, N_, -lr" in text            # the plain-SGD step folded into a GEMM
    with_drop = fb.Sequential(STACKS["tanh_dropout_bce"][0](), loss=fb.BinaryCrossEntropy())
    text = specialize_batch.source(with_drop._workspace(1)["plan"], P.BCE, P.ADAM, "float32")
    assert "T = np.float32" in text


@pytest.mark.parametrize("stack", ["relu_ce", "batchnorm_first_dropout_ce"])
def test_the_fit_compiles_what_the_calls_after_it_run(stack):
    """Training and every eval pass are one compiled function, with one signature: the
    calls after a fit compile nothing more (their helpers are compiled with it too)."""
    layers, loss, k = STACKS[stack]
    m = fb.Sequential(layers(), loss=loss, seed=2)
    X, y = _data(k)
    m.fit(X, y, epochs=1, batch_size=16)
    module = m._engine._batch[1]
    m.predict(X, batch_size=7)
    m.evaluate(X, y)
    m.loss_and_grads(X, y)
    m.loss_and_grads(X, y, training=False)
    m.forward(X, training=True)
    m.fit(X, y, epochs=1, batch_size=6)            # another batch size, the same function
    assert m._engine._batch[1] is module
    assert len(module.kernel.signatures) == 1
    for helper in ("forward", "backward", "loss_grad", "count"):
        assert len(getattr(module, helper).signatures) <= 1, helper
