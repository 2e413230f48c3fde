"""Determinism: one seed, one result, in this process, in another, and on either backend."""
import hashlib
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastbp as fb

from conftest import SEED, rel_error

# A run with every source of randomness on: init, shuffling, dropout, momentum.
RUN = textwrap.dedent("""
    import hashlib, json, sys
    import numpy as np
    import fastbp as fb

    def run(backend, batch, seed):
        rng = np.random.default_rng(11)
        X = rng.standard_normal((60, 5))
        y = rng.integers(0, 3, 60)
        model = fb.Sequential(
            [fb.Dense(5, 16), fb.BatchNorm(16), fb.ReLU(), fb.Dropout(0.3), fb.Dense(16, 8),
             fb.Tanh(), fb.Dropout(0.1), fb.Dense(8, 3)] if batch > 1 else
            [fb.Dense(5, 16), fb.Sigmoid(), fb.Dropout(0.3), fb.Dense(16, 3)],
            loss="cross_entropy", backend=backend, seed=seed)
        hist = model.fit(X, y, epochs=4, batch_size=batch, lr=0.05, momentum=0.9, shuffle=True)
        h = hashlib.sha256(model.params.tobytes() + model.state.tobytes()
                           + model._opt_a.tobytes() + np.array(hist.loss).tobytes())
        return h.hexdigest()

    if __name__ == "__main__":
        backend, batch, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
        print(json.dumps(run(backend, batch, seed)))
""")


def _in_process(backend, batch, seed):
    ns = {"__name__": "runner"}
    exec(RUN, ns)
    return ns["run"](backend, batch, seed)


def _subprocess(backend, batch, seed, hashseed):
    env = dict(os.environ, PYTHONHASHSEED=str(hashseed))
    root = os.path.dirname(os.path.dirname(os.path.abspath(fb.__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c", RUN, backend, str(batch), str(seed)],
                         capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout)


@pytest.mark.parametrize("batch", [1, 10])
def test_same_seed_same_bits_in_process(backend, batch):
    first = _in_process(backend, batch, 4)
    assert _in_process(backend, batch, 4) == first
    assert _in_process(backend, batch, 5) != first          # the seed does matter


@pytest.mark.parametrize("batch", [1, 10])
def test_same_seed_same_bits_across_processes(backend, batch):
    here = _in_process(backend, batch, 4)
    a = _subprocess(backend, batch, 4, hashseed=1)
    b = _subprocess(backend, batch, 4, hashseed=2)
    assert a == b == here


def test_fit_in_pieces_equals_fit_in_one_go(backend):
    rng = np.random.default_rng(SEED)
    X = rng.standard_normal((30, 4))
    y = rng.random((30, 2))
    make = lambda: fb.Sequential([fb.Dense(4, 6), fb.Tanh(), fb.Dropout(0.2), fb.Dense(6, 2)],
                                 backend=backend, seed=2)
    one, pieces = make(), make()
    one.fit(X, y, epochs=6, batch_size=4, optimizer="adam")
    for e in (1, 2, 3):
        pieces.fit(X, y, epochs=e, batch_size=4, optimizer="adam")
    assert np.array_equal(one.params, pieces.params)


# ----------------------------------------------------------------- numba vs numpy
# Every layer kind, every loss, every optimizer setting, batch 1 and mini-batch.
# name: (layers, loss, fit arguments)
STACKS = {
    "sigmoid-mse-sgd-online": (
        lambda: [fb.Dense(3, 5), fb.Sigmoid(), fb.Dense(5, 2), fb.Sigmoid()],
        fb.MSE(), dict(batch_size=1, lr=0.5)),
    "relu-identity-mse-sum-momentum": (
        lambda: [fb.Dense(3, 6), fb.ReLU(), fb.Dense(6, 2), fb.Identity()],
        fb.MSE(reduction="sum", half=True), dict(batch_size=4, lr=0.01, momentum=0.9)),
    "tanh-dropout-bce-nesterov-wd-online": (
        lambda: [fb.Dense(3, 6), fb.Tanh(), fb.Dropout(0.3), fb.Dense(6, 1), fb.Sigmoid()],
        fb.BinaryCrossEntropy(),
        dict(batch_size=1, lr=0.05, momentum=0.8, nesterov=True, weight_decay=1e-3)),
    # A bias just before BatchNorm has an exactly-zero gradient, so what the backward pass
    # computes for it is rounding noise; Adam divides that by its own root mean square and
    # turns it into steps of size lr. The two backends' noise differs, so with Adam the
    # bias before BatchNorm is left out (as is usual); the SGD stack keeps it.
    "batchnorm-relu-dropout-ce-adam": (
        lambda: [fb.Dense(3, 8, bias=False), fb.BatchNorm(8), fb.ReLU(), fb.Dropout(0.25),
                 fb.Dense(8, 3)],
        fb.SoftmaxCrossEntropy(), dict(batch_size=8, lr=0.01, optimizer="adam")),
    "batchnorm-after-bias-ce-momentum": (
        lambda: [fb.Dense(3, 8), fb.BatchNorm(8, momentum=0.3), fb.Sigmoid(), fb.Dense(8, 3)],
        fb.SoftmaxCrossEntropy(), dict(batch_size=8, lr=0.1, momentum=0.9)),
    "input-batchnorm-nobias-mse-adam-wd": (
        lambda: [fb.BatchNorm(3), fb.Dense(3, 5, bias=False), fb.Tanh(), fb.Dense(5, 4),
                 fb.Identity(), fb.Dense(4, 2)],
        fb.MSE(), dict(batch_size=5, lr=0.01, optimizer="adam", weight_decay=1e-2)),
    "deep-mixed-ce-momentum-online-dropout": (
        lambda: [fb.Dense(3, 6), fb.Sigmoid(), fb.Dense(6, 6), fb.Tanh(), fb.Dropout(0.2),
                 fb.Dense(6, 5), fb.ReLU(), fb.Dense(5, 3)],
        fb.SoftmaxCrossEntropy(), dict(batch_size=1, lr=0.02, momentum=0.5)),
    "standalone-activations-bce-adam-fullbatch": (
        lambda: [fb.Dense(3, 6, bias=False), fb.Dropout(0.2), fb.Sigmoid(), fb.BatchNorm(6),
                 fb.Tanh(), fb.Dense(6, 1), fb.Sigmoid()],
        fb.BinaryCrossEntropy(), dict(batch_size=24, lr=0.05, optimizer="adam")),
    "identity-stack-mse-sgd-wd-schedule": (
        lambda: [fb.Dense(3, 4), fb.Identity(), fb.Dense(4, 4), fb.ReLU(), fb.Dense(4, 2)],
        fb.MSE(half=True), dict(batch_size=6, lr=0.05, weight_decay=1e-2,
                                lr_schedule=fb.StepLR(20, 0.5))),
}


def _stack_data(loss, n=24):
    rng = np.random.default_rng(SEED)
    X = rng.standard_normal((n, 3))
    if isinstance(loss, fb.SoftmaxCrossEntropy):
        return X, rng.integers(0, 3, n)
    if isinstance(loss, fb.BinaryCrossEntropy):
        return X, rng.integers(0, 2, (n, 1)).astype(float)
    return X, rng.random((n, 2))


def _train(name, backend, dtype, epochs):
    layers, loss, fit_args = STACKS[name]
    model = fb.Sequential(layers(), loss=type(loss)(**loss.get_config()), backend=backend,
                          dtype=dtype, seed=9)
    X, y = _stack_data(loss)
    hist = model.fit(X, y, epochs=epochs, shuffle=True, **fit_args)
    return model, hist


@pytest.mark.parametrize("name", sorted(STACKS))
def test_backends_agree_after_100_epochs_float64(name):
    a, ha = _train(name, "numba", "float64", 100)
    b, hb = _train(name, "numpy", "float64", 100)
    assert np.isfinite(a.params).all()
    assert not np.array_equal(a.params, fb.Sequential(
        STACKS[name][0](), loss=type(STACKS[name][1])(**STACKS[name][1].get_config()),
        seed=9).params), "training did not move the weights"
    assert np.array_equal(a._counters, b._counters)
    for what, x, y in (("params", a.params, b.params), ("state", a.state, b.state),
                       ("optimizer", a._opt_a, b._opt_a), ("losses", ha.loss, hb.loss)):
        err = rel_error(x, y)
        assert err <= 1e-10, f"{name}: {what} differ by {err:.2e} (relative)"


@pytest.mark.parametrize("name", sorted(STACKS))
def test_backends_agree_float32(name):
    a, _ = _train(name, "numba", "float32", 10)
    b, _ = _train(name, "numpy", "float32", 10)
    assert a.params.dtype == np.float32
    assert rel_error(a.params, b.params) <= 1e-4
