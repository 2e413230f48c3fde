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
