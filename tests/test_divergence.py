"""After TrainingDivergedError the model kept is the last finite, usable one."""
import numpy as np
import pytest

import fastbp as fb


def _data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 4)) * 100          # large inputs: float32 overflows fast
    return X, (X[:, :1] > 0).astype(float)


@pytest.mark.parametrize("lr", [1e8, 1e30])
@pytest.mark.parametrize("seed", [0, 1])
def test_kept_model_predicts_on_its_training_data(backend, lr, seed):
    X, y = _data()
    m = fb.MLP([4, 16, 16, 1], activation="relu", output_activation="identity",
               dtype="float32", seed=seed, backend=backend)
    with np.errstate(all="ignore"), pytest.raises(fb.TrainingDivergedError) as info:
        m.fit(X, y, epochs=50, lr=lr, batch_size=8)
    msg = str(info.value)
    assert "keeps the weights" in msg and "finite" in msg
    out = m.predict(X)                              # main: FloatingPointError (overflow)
    assert np.isfinite(out).all()
    h = info.value.history
    assert m.epochs_trained == h.epochs_run == len(h.loss)


def test_kept_weights_are_named_in_the_message(backend):
    """A second fit that diverges keeps the weights the first one left (usable)."""
    X, y = _data()
    m = fb.MLP([4, 8, 1], activation="relu", output_activation="identity", dtype="float32",
               backend=backend)
    m.fit(X / 100, y, epochs=3, lr=0.01, batch_size=8)
    before = m.predict(X)
    with np.errstate(all="ignore"), pytest.raises(fb.TrainingDivergedError,
                                                  match="before epoch 4"):
        m.fit(X, y, epochs=50, lr=1e30, batch_size=8)
    assert m.epochs_trained == 3
    np.testing.assert_array_equal(m.predict(X), before)


@pytest.mark.parametrize("shuffle", [True, False])
def test_a_call_rolled_back_to_its_start_leaves_the_shuffle_order_as_it_was(backend, shuffle):
    """The rollback restores the shuffle generator too: the next fit trains exactly as on
    a twin that never made the diverging call (the generator is drawn only when shuffling)."""
    X, y = _data()
    Xs = X / 100
    models = [fb.MLP([4, 8, 1], activation="relu", output_activation="identity",
                     dtype="float32", backend=backend, seed=3) for _ in range(2)]
    for m in models:
        m.fit(Xs, y, epochs=2, lr=0.01, batch_size=8, shuffle=shuffle)
    with np.errstate(all="ignore"), pytest.raises(fb.TrainingDivergedError,
                                                  match="before epoch 3"):
        models[0].fit(X, y, epochs=50, lr=1e30, batch_size=8, shuffle=shuffle)
    for m in models:
        m.fit(Xs, y, epochs=2, lr=0.01, batch_size=8, shuffle=True)
    np.testing.assert_array_equal(models[0].params, models[1].params)
    assert models[0].epochs_trained == models[1].epochs_trained == 4


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_a_later_call_that_diverges_is_rolled_back_to_its_own_start(backend, optimizer):
    """With validation data every epoch is a kernel call of its own: the ninth diverges and
    the model keeps the state after the eighth, optimizer state included, exactly as a
    twin that stopped there has it (the first fit's snapshots held no optimizer state)."""
    X, y = _data()
    Xs = X / 100
    models = [fb.MLP([4, 8, 1], activation="relu", output_activation="identity",
                     dtype="float32", backend=backend, seed=5) for _ in range(2)]
    for m in models:
        m.fit(Xs, y, epochs=2, lr=0.01, batch_size=8)
    boom = lambda epoch: 1.0 if epoch < 8 else 1e32     # noqa: E731  (epochs count from 0)
    kw = dict(lr=0.01, batch_size=8, optimizer=optimizer, lr_schedule=boom)
    with np.errstate(all="ignore"), pytest.raises(fb.TrainingDivergedError,
                                                  match="before epoch 9"):
        models[0].fit(Xs, y, epochs=20, validation_data=(Xs, y), **kw)
    models[1].fit(Xs, y, epochs=6, **kw)
    for a, b in zip(models[0].state_dict()["arrays"].values(),
                    models[1].state_dict()["arrays"].values()):
        np.testing.assert_array_equal(a, b)
    assert models[0].epochs_trained == models[1].epochs_trained == 8


def test_a_fit_after_the_first_copies_the_training_state_into_memory_it_kept():
    """The snapshots Rollback takes go into buffers the model keeps: a later fit allocates
    no copy of the parameters (fresh memory costs a page fault per page)."""
    import tracemalloc
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(64, 256)), rng.integers(0, 10, 64)
    m = fb.MLP([256, 512, 10], activation="relu", output_activation="identity",
               loss="cross_entropy")
    fit = lambda: m.fit(X, y, epochs=3, lr=0.01, batch_size=16, momentum=0.9,  # noqa: E731
                        validation_data=(X[:8], y[:8]))      # three calls: both snapshots
    fit()
    tracemalloc.start()
    try:
        fit()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert m.params.nbytes > 1 << 20
    assert peak < m.params.nbytes / 2, (peak, m.params.nbytes)
