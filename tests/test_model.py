"""The model API: construction, weights, inference, gradients, training semantics."""
import numpy as np
import pytest

import fastbp as fb

BACKENDS = ("numba", "numpy")


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


def data(n=40, d=3, k=1, seed=0, labels=False):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    if labels:
        return X, rng.integers(0, k, size=n)
    return X, (rng.random((n, k)) > 0.5).astype(float)


def deep(backend="numba", dtype="float64", seed=0, loss="ce"):
    layers = [fb.Dense(3, 8), fb.BatchNorm(8), fb.Tanh(), fb.Dropout(0.25),
              fb.Dense(8, 6), fb.ReLU(), fb.Dense(6, 4), fb.Identity()]
    if loss == "ce":
        return fb.Sequential(layers, loss=fb.SoftmaxCrossEntropy(), backend=backend,
                             dtype=dtype, seed=seed)
    return fb.Sequential(layers[:-1] + [fb.Sigmoid()], loss=fb.MSE(), backend=backend,
                         dtype=dtype, seed=seed)


# ---------------------------------------------------------------- construction
@pytest.mark.parametrize("layers,loss,match", [
    ([fb.Sigmoid(), fb.Dense(2, 1)], None, "first layer"),
    ([fb.Dense(2, 3), fb.Dense(4, 1)], None, "input has 3 features"),
    ([fb.Dense(2, 3), fb.BatchNorm(4)], None, "BatchNorm\\(4\\)"),
    ([fb.Dense(2, 1), fb.ReLU()], fb.BinaryCrossEntropy(), "Sigmoid as the last layer"),
    ([fb.Dense(2, 1)], fb.SoftmaxCrossEntropy(), "at least 2 outputs"),
    ([], None, "non-empty"),
])
def test_bad_architectures_raise(layers, loss, match):
    with pytest.raises(ValueError, match=match):
        fb.Sequential(layers, loss=loss)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(backend="cuda"), ValueError, "backend"),
    (dict(dtype="float16"), ValueError, "dtype"),
    (dict(seed=-1), ValueError, "seed"),
    (dict(loss="hinge"), ValueError, "loss"),
])
def test_bad_model_arguments_raise(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        fb.Sequential([fb.Dense(2, 2)], **kwargs)


def test_layer_argument_checks():
    with pytest.raises(ValueError, match="p must"):
        fb.Dropout(1.0)
    with pytest.raises(ValueError, match="p must"):
        fb.Dropout(-0.1)
    with pytest.raises(ValueError, match="unknown init"):
        fb.Dense(2, 2, init="zeros")
    with pytest.raises(TypeError, match="in_features"):
        fb.Dense(2.5, 2)
    with pytest.raises(ValueError, match="activation"):
        fb.MLP([2, 3, 1], activation="swish")


def test_layer_parameters_are_views_of_the_flat_buffer():
    m = deep()
    d1 = m.layers[0]
    d1.W[0, 0] = 123.0
    assert m.params[0] == 123.0
    m.params[:] = 0.5
    assert (d1.W == 0.5).all() and (m.layers[1].gamma == 0.5).all()
    assert m.n_params == sum(w.size for w in m.get_weights())


def test_init_schemes_have_their_scale():
    rng_sizes = (200, 300)
    for init, std in [("glorot_normal", np.sqrt(2 / 500)), ("he_normal", np.sqrt(2 / 200)),
                      ("glorot_uniform", np.sqrt(6 / 500) / np.sqrt(3)),
                      ("he_uniform", np.sqrt(6 / 200) / np.sqrt(3))]:
        W = fb.Sequential([fb.Dense(*rng_sizes, init=init)], seed=1).layers[0].W
        assert W.std() == pytest.approx(std, rel=0.03), init
    W = fb.Sequential([fb.Dense(*rng_sizes, init="uniform")]).layers[0]
    assert W.W.min() >= 0 and W.W.max() < 1 and W.b.min() >= 0


def test_default_init_depends_on_the_activation():
    relu = fb.Sequential([fb.Dense(400, 400), fb.ReLU()], seed=0).layers[0].W.std()
    sig = fb.Sequential([fb.Dense(400, 400), fb.Sigmoid()], seed=0).layers[0].W.std()
    assert relu == pytest.approx(np.sqrt(2 / 400), rel=0.03)
    assert sig == pytest.approx(np.sqrt(1 / 400), rel=0.03)


def test_same_seed_same_weights_other_seed_other_weights():
    a, b, c = deep(seed=3), deep(seed=3), deep(seed=4)
    np.testing.assert_array_equal(a.params, b.params)
    assert not np.array_equal(a.params, c.params)


def test_summary_and_repr():
    m = deep()
    s = m.summary()
    assert "BatchNorm" in s and str(m.n_params) in s
    assert repr(m).startswith("Sequential([Dense(")


# ---------------------------------------------------------------- weights
def test_get_set_weights_round_trip_and_validation():
    m = deep()
    w = m.get_weights()
    assert [a.shape for a in w] == [(3, 8), (8,), (8,), (8,), (8, 6), (6,), (6, 4), (4,)]
    w[0][...] = 7.0
    assert not (m.layers[0].W == 7.0).any()        # copies, not views
    m.set_weights(w)
    assert (m.layers[0].W == 7.0).all()
    with pytest.raises(ValueError, match="expected 8 arrays"):
        m.set_weights(w[:-1])
    bad = [a.copy() for a in w]
    bad[2] = np.zeros(9)
    with pytest.raises(ValueError, match=r"weights\[2\] has shape"):
        m.set_weights(bad)
    bad[2] = np.full(8, np.nan)
    with pytest.raises(ValueError, match="NaN"):
        m.set_weights(bad)


# ---------------------------------------------------------------- inference
def test_predict_proba_and_classes(backend):
    X, y = data(k=4, labels=True)
    m = deep(backend)
    p = m.predict_proba(X)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(m.predict_classes(X), np.argmax(m.predict(X), axis=1))


def test_predict_is_eval_mode_and_chunked(backend):
    X, _ = data(n=50)
    m = deep(backend)
    full = m.predict(X)
    np.testing.assert_allclose(m.predict(X, batch_size=7), full, rtol=1e-13)
    np.testing.assert_array_equal(m.predict(X), full)       # no dropout in eval mode
    assert not np.allclose(m.forward(X, training=True), full)


def test_bce_output_is_the_sigmoid_and_accuracy_thresholds_it(backend):
    X, y = data(k=1)
    m = fb.Sequential([fb.Dense(3, 5), fb.Tanh(), fb.Dense(5, 1), fb.Sigmoid()],
                      loss=fb.BinaryCrossEntropy(), backend=backend)
    p = m.predict(X)
    assert ((p > 0) & (p < 1)).all()
    ev = m.evaluate(X, y)
    assert ev["accuracy"] == pytest.approx(np.mean((p[:, 0] > 0.5) == (y[:, 0] > 0.5)))
    expected = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert ev["loss"] == pytest.approx(expected, rel=1e-10)


def test_evaluate_matches_numpy_formulas(backend):
    X, labels = data(k=4, labels=True)
    m = deep(backend)
    logits = m.predict(X)
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    ev = m.evaluate(X, labels, batch_size=9)
    assert ev["loss"] == pytest.approx(-logp[np.arange(len(X)), labels].mean(), rel=1e-12)
    assert ev["accuracy"] == pytest.approx(np.mean(np.argmax(logits, 1) == labels))
    onehot = np.eye(4)[labels]
    assert m.evaluate(X, onehot, batch_size=9) == ev


def test_mse_sum_and_half(backend):
    X, y = data(k=2)
    layers = lambda: [fb.Dense(3, 2)]
    base = fb.Sequential(layers(), loss=fb.MSE(), backend=backend)
    pred = base.predict(X)
    sq = ((pred - y) ** 2)
    for loss, expected in [(fb.MSE(), sq.mean()), (fb.MSE(reduction="sum"), sq.sum()),
                           (fb.MSE(half=True), 0.5 * sq.mean())]:
        m = fb.Sequential(layers(), loss=loss, backend=backend)
        assert m.evaluate(X, y, batch_size=7)["loss"] == pytest.approx(expected, rel=1e-12)


# ---------------------------------------------------------------- gradients
def _fd_grads(m, X, y, h=1e-6):
    flat = m.params
    g = np.zeros_like(flat)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        lp, _ = m.loss_and_grads(X, y)
        flat[i] = old - h
        lm, _ = m.loss_and_grads(X, y)
        flat[i] = old
        g[i] = (lp - lm) / (2 * h)
    return g


@pytest.mark.parametrize("loss", ["ce", "mse"])
def test_loss_and_grads_match_finite_differences(backend, loss):
    X, y = data(n=12, k=4, labels=True)
    if loss == "mse":
        y = np.eye(4)[y] * 0.8 + 0.1
    m = deep(backend, loss=loss)
    m._counters[0] = 5              # a fixed dropout mask for every evaluation
    state = m.state.copy()
    _, grads = m.loss_and_grads(X, y)
    np.testing.assert_array_equal(m.state, state)          # no running-stat update
    analytic = np.concatenate([g.ravel() for g in grads])
    numeric = _fd_grads(m, X, y)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


def test_loss_and_grads_agree_with_pytorch():
    torch = pytest.importorskip("torch")
    X, labels = data(n=16, k=4, labels=True)
    m = fb.Sequential([fb.Dense(3, 7), fb.BatchNorm(7), fb.Tanh(), fb.Dense(7, 5), fb.ReLU(),
                       fb.Dense(5, 4)], loss=fb.SoftmaxCrossEntropy(), seed=2)
    w = m.get_weights()
    net = torch.nn.Sequential(torch.nn.Linear(3, 7), torch.nn.BatchNorm1d(7), torch.nn.Tanh(),
                              torch.nn.Linear(7, 5), torch.nn.ReLU(),
                              torch.nn.Linear(5, 4)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor(w[0].T)); net[0].bias.copy_(torch.tensor(w[1]))
        net[1].weight.copy_(torch.tensor(w[2])); net[1].bias.copy_(torch.tensor(w[3]))
        net[3].weight.copy_(torch.tensor(w[4].T)); net[3].bias.copy_(torch.tensor(w[5]))
        net[5].weight.copy_(torch.tensor(w[6].T)); net[5].bias.copy_(torch.tensor(w[7]))
    net.train()
    out = net(torch.tensor(X))
    tl = torch.nn.functional.cross_entropy(out, torch.tensor(labels))
    tl.backward()
    loss, grads = m.loss_and_grads(X, labels)
    assert loss == pytest.approx(tl.item(), rel=1e-12)
    tg = [net[0].weight.grad.T, net[0].bias.grad, net[1].weight.grad, net[1].bias.grad,
          net[3].weight.grad.T, net[3].bias.grad, net[5].weight.grad.T, net[5].bias.grad]
    for a, b in zip(grads, tg):
        np.testing.assert_allclose(a, b.numpy(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("opt", ["sgd", "nesterov", "adam"])
def test_training_matches_pytorch_optimizers(opt):
    torch = pytest.importorskip("torch")
    X, y = data(n=24, d=3, k=2)
    m = fb.Sequential([fb.Dense(3, 6), fb.Sigmoid(), fb.Dense(6, 2)], loss=fb.MSE(), seed=1)
    w = m.get_weights()
    net = torch.nn.Sequential(torch.nn.Linear(3, 6), torch.nn.Sigmoid(),
                              torch.nn.Linear(6, 2)).double()
    with torch.no_grad():
        for layer, (W, b) in zip((net[0], net[2]), ((w[0], w[1]), (w[2], w[3]))):
            layer.weight.copy_(torch.tensor(W.T)); layer.bias.copy_(torch.tensor(b))
    kw = dict(lr=0.05, weight_decay=0.01)
    if opt == "adam":
        topt = torch.optim.Adam(net.parameters(), **kw)
        fit_kw = dict(optimizer="adam")
    else:
        topt = torch.optim.SGD(net.parameters(), momentum=0.9, nesterov=opt == "nesterov", **kw)
        fit_kw = dict(momentum=0.9, nesterov=opt == "nesterov")
    for _ in range(3):                       # 3 epochs of 6 mini-batches, no shuffling
        for s in range(0, 24, 4):
            topt.zero_grad()
            torch.nn.functional.mse_loss(net(torch.tensor(X[s:s + 4])),
                                         torch.tensor(y[s:s + 4])).backward()
            topt.step()
    m.fit(X, y, epochs=3, batch_size=4, shuffle=False, **kw, **fit_kw)
    got = m.get_weights()
    want = [net[0].weight.detach().numpy().T, net[0].bias.detach().numpy(),
            net[2].weight.detach().numpy().T, net[2].bias.detach().numpy()]
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)


# ---------------------------------------------------------------- training semantics
@pytest.mark.parametrize("batch_size,opt", [(1, "sgd"), (5, "sgd"), (5, "adam"), (1, "adam")])
def test_fit_twice_equals_fit_once(backend, batch_size, opt):
    X, y = data(n=23, k=4, labels=True)
    a, b = deep(backend), deep(backend)
    if batch_size == 1:         # no BatchNorm with a batch of one
        a = fb.MLP([3, 6, 4], activation="tanh", output_activation="identity",
                   loss="cross_entropy", dropout=0.2, backend=backend)
        b = fb.MLP([3, 6, 4], activation="tanh", output_activation="identity",
                   loss="cross_entropy", dropout=0.2, backend=backend)
    kw = dict(lr=0.05, batch_size=batch_size, optimizer=opt, shuffle=True)
    if opt == "sgd":
        kw["momentum"] = 0.9
    a.fit(X, y, epochs=3, **kw)
    a.fit(X, y, epochs=3, **kw)
    h = b.fit(X, y, epochs=6, **kw)
    np.testing.assert_array_equal(a.params, b.params)
    np.testing.assert_array_equal(a.state, b.state)
    assert h.epochs_run == 6 and len(h.loss) == 6


def test_backends_agree_after_training_every_layer_kind():
    X, y = data(n=37, k=4, labels=True)
    res = {}
    for backend in BACKENDS:
        m = deep(backend)
        h = m.fit(X, y, epochs=20, lr=0.05, batch_size=8, momentum=0.9, nesterov=True,
                  weight_decay=1e-3)
        res[backend] = (m.params.copy(), m.state.copy(), h.loss)
    np.testing.assert_allclose(res["numba"][0], res["numpy"][0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(res["numba"][1], res["numpy"][1], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(res["numba"][2], res["numpy"][2], rtol=1e-10)


def test_float32_training_tracks_float64(backend):
    X, y = data(n=30, k=4, labels=True)
    m64, m32 = deep(backend), deep(backend, dtype="float32")
    m32.set_weights(m64.get_weights())
    h64 = m64.fit(X, y, epochs=5, lr=0.05, batch_size=10)
    h32 = m32.fit(X, y, epochs=5, lr=0.05, batch_size=10)
    assert m32.params.dtype == np.float32
    np.testing.assert_allclose(h32.loss, h64.loss, rtol=1e-4)
    np.testing.assert_allclose(m32.params, m64.params, rtol=1e-3, atol=1e-4)


def test_history_loss_comes_from_the_batches(backend):
    """Full batch, no dropout: epoch 1's loss is the loss before its one update."""
    X, y = data(n=20, k=1)
    m = fb.MLP([3, 4, 1], backend=backend)
    before = m.evaluate(X, y)
    h = m.fit(X, y, epochs=2, lr=0.5, batch_size=20)
    assert h.loss[0] == pytest.approx(before["loss"], rel=1e-12)
    assert h.accuracy[0] == before["accuracy"]
    assert h.loss[1] < h.loss[0]


def test_partial_last_batch_is_trained(backend):
    X, y = data(n=10, k=1)
    m = fb.MLP([3, 4, 1], backend=backend)
    ref = fb.MLP([3, 4, 1], backend=backend)
    m.fit(X, y, epochs=1, lr=0.1, batch_size=4, shuffle=False)
    for s in (slice(0, 4), slice(4, 8), slice(8, 10)):       # the same steps by hand
        ref.fit(X[s], y[s], epochs=1, lr=0.1, batch_size=4, shuffle=False)
    np.testing.assert_allclose(m.params, ref.params, rtol=1e-14)


def test_batchnorm_with_a_batch_of_one_says_what_to_do():
    X, y = data(n=9, k=4, labels=True)
    with pytest.raises(ValueError, match="batch_size"):
        deep().fit(X, y, batch_size=1)
    with pytest.raises(ValueError, match="n % batch_size"):
        deep().fit(X, y, batch_size=4)          # 9 = 4 + 4 + 1
    deep().fit(X, y, batch_size=3)


def test_stop_at_accuracy_and_lr_schedules(backend):
    X, y = fb.datasets.generate_linear(60, seed=1)
    m = fb.MLP([2, 4, 1], backend=backend, seed=0)
    h = m.fit(X, y, epochs=5000, lr=0.5, batch_size=1, shuffle=False, stop_at_accuracy=1.0)
    assert h.stop_reason == "accuracy" and h.epochs_run < 5000
    assert m.evaluate(X, y)["accuracy"] == 1.0
    h = m.fit(X, y, epochs=5, lr=0.1, lr_schedule=fb.StepLR(2, gamma=0.5))
    start = m.epochs_trained - 5
    assert h.lr == pytest.approx([0.1 * 0.5 ** ((start + e) // 2) for e in range(5)])
    h = m.fit(X, y, epochs=3, lr=0.1, lr_schedule=fb.ExponentialLR(0.9))
    assert h.lr[1] / h.lr[0] == pytest.approx(0.9)


def test_validation_and_early_stopping_restore_the_best_weights(backend):
    X, y = data(n=40, k=4, labels=True, seed=1)
    Xv, yv = data(n=20, k=4, labels=True, seed=2)   # unrelated labels: val loss rises
    m = fb.MLP([3, 32, 4], activation="relu", output_activation="identity",
               loss="cross_entropy", backend=backend)
    h = m.fit(X, y, epochs=300, lr=0.1, batch_size=8, validation_data=(Xv, yv), patience=5)
    assert len(h.val_loss) == h.epochs_run and h.stop_reason == "early_stopping"
    assert h.epochs_run < 300
    best = int(np.argmin(h.val_loss))
    assert h.best_epoch == best + 1
    assert m.evaluate(Xv, yv)["loss"] == pytest.approx(h.val_loss[best], rel=1e-12)
    with pytest.raises(ValueError, match="validation_data"):
        m.fit(X, y, patience=3)


def test_divergence_raises_and_keeps_finite_weights(backend):
    X, y = data(n=20, k=1)
    X = X * 1e3
    m = fb.MLP([3, 8, 1], activation="relu", output_activation="identity", backend=backend)
    with pytest.raises(fb.TrainingDivergedError, match="epoch") as info:
        m.fit(X, y * 1e3, epochs=200, lr=10.0, batch_size=4)
    assert np.isfinite(m.params).all()
    assert isinstance(info.value.history, fb.History)


def test_print_every_prints_loss_lines(capsys):
    X, y = fb.datasets.generate_xor_easy()
    fb.MLP([2, 4, 1]).fit(X, y, epochs=10, lr=0.1, batch_size=1, print_every=5)
    lines = [l for l in capsys.readouterr().out.splitlines() if l.startswith("epoch")]
    assert len(lines) == 2 and "loss" in lines[0]


def test_integer_and_non_contiguous_inputs_are_converted():
    X = np.arange(60).reshape(20, 3)[:, ::-1]      # int, non-contiguous
    y = (np.arange(20) % 2).reshape(20, 1)
    m = fb.MLP([3, 4, 1])
    np.testing.assert_allclose(m.predict(X), m.predict(np.ascontiguousarray(X, dtype=float)))
    m.fit(X / 60, y, epochs=2)


@pytest.mark.parametrize("bad,exc,match", [
    (lambda X, y: (X[:, :2], y), ValueError, "features"),
    (lambda X, y: (X, y[:-1]), ValueError, "rows"),
    (lambda X, y: (X, np.full_like(y, 7)), ValueError, "outside"),
    (lambda X, y: (np.where(X > 1, np.nan, X), y), ValueError, "NaN"),
    (lambda X, y: (X[:0], y[:0]), ValueError, "empty"),
    (lambda X, y: (X.astype(str), y), TypeError, "numbers"),
    (lambda X, y: (X[None], y), ValueError, "2-D"),
    (lambda X, y: (X, y.astype(str)), TypeError, "numbers"),
    (lambda X, y: (X, y + 0.5), ValueError, "non-integer"),
])
def test_bad_data_is_rejected(bad, exc, match):
    X, y = data(k=4, labels=True)
    Xb, yb = bad(X, y)
    m = deep()
    with pytest.raises(exc, match=match):
        m.fit(Xb, yb)


@pytest.mark.parametrize("kwargs,match", [
    (dict(lr=0), "lr"), (dict(lr=-1), "lr"), (dict(epochs=0), "epochs"),
    (dict(batch_size=0), "batch_size"), (dict(optimizer="rmsprop"), "optimizer"),
    (dict(stop_at_accuracy=1.5), "stop_at_accuracy"), (dict(lr_schedule="cosine"), "lr_schedule"),
])
def test_bad_fit_arguments_are_rejected(kwargs, match):
    X, y = data(k=4, labels=True)
    with pytest.raises((ValueError, TypeError), match=match):
        deep().fit(X, y, **kwargs)


def test_divergence_rollback_keeps_history_and_epoch_count_consistent(backend):
    """When fit rolls the weights back, the History and epoch count roll back with them."""
    X, y = data(n=20, k=1)
    m = fb.MLP([3, 8, 1], activation="relu", output_activation="identity", backend=backend)
    m.fit(X, y, epochs=2, lr=0.01, batch_size=4)
    with pytest.raises(fb.TrainingDivergedError) as info:
        m.fit(X * 1e3, y * 1e3, epochs=200, lr=10.0, batch_size=4)
    h = info.value.history
    assert np.isfinite(m.params).all()
    assert h.epochs_run == len(h.loss) == len(h.accuracy) == len(h.lr)
    assert m.epochs_trained == 2 + h.epochs_run
    assert all(np.isfinite(h.loss))


def test_flags_must_be_booleans():
    X, y = data(k=4, labels=True)
    with pytest.raises(TypeError, match="shuffle"):
        deep().fit(X, y, shuffle="yes")
    with pytest.raises(TypeError, match="training"):
        deep().loss_and_grads(X, y, training="no")
    assert issubclass(fb.MemoryBudgetError, MemoryError)
