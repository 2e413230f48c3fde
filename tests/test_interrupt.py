"""Ctrl-C during fit: stop after the current step, keep that step's weights, report it.

Each case starts a child process that trains for a long time, sends it
SIGINT at a random moment mid-epoch, and checks that

- fit returned (no traceback) with ``History.interrupted`` set, promptly
  (within a second of the signal, even though one epoch takes seconds: the
  Numba kernel runs a whole epoch per call, so this needs Ctrl-C to reach the
  training loop mid-call);
- the parameters are finite and are exactly (bit for bit) those of a fresh
  model trained for the same number of steps: the child reports its step
  counter, and the parent replays that many steps: the completed epochs with
  ``fit``, then the interrupted epoch's first k batches (the next permutation
  of the shuffle generator) as a one-epoch ``fit`` without shuffling.
"""
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import fastbp as fb

# Build the data and the model (shared by the child and the parent's replay).
COMMON = textwrap.dedent("""
    import numpy as np
    import fastbp as fb

    def build(backend, n, d, hidden, batchnorm, dropout, seed=3):
        rng = np.random.default_rng(seed)
        X = rng.standard_normal((n, d))
        y = rng.integers(0, 4, n)
        model = fb.MLP([d, hidden, 4], activation="tanh", output_activation="identity",
                       loss="cross_entropy", backend=backend, seed=seed, batchnorm=batchnorm,
                       dropout=dropout)
        return model, X, y
""")

CHILD = COMMON + textwrap.dedent("""
    import json, sys, time
    cfg = json.loads(sys.argv[1])
    arch = (cfg["d"], cfg["hidden"], cfg["batchnorm"], cfg["dropout"])
    warm, Xw, yw = build(cfg["backend"], cfg["calibrate"], *arch)
    warm.fit(Xw[:64], yw[:64], epochs=1, **cfg["fit"])      # compile (or load) the kernels
    t = time.perf_counter()
    warm.fit(Xw, yw, epochs=1, **cfg["fit"])                 # time it: one epoch ~ seconds
    per_row = (time.perf_counter() - t) / cfg["calibrate"]
    batch = cfg["fit"]["batch_size"]
    n = int(min(cfg["max_rows"], max(cfg["calibrate"], cfg["epoch_seconds"] / per_row)))
    n -= n % batch
    model, X, y = build(cfg["backend"], n, *arch)
    print("READY", flush=True)
    hist = model.fit(X, y, epochs=1000, **cfg["fit"])
    done = time.perf_counter()
    model.save(cfg["out"])
    print(json.dumps({"n": n, "interrupted": hist.interrupted, "stop_reason": hist.stop_reason,
                      "epochs_run": hist.epochs_run, "n_losses": len(hist.loss),
                      "epochs_trained": model.epochs_trained,
                      "counters": [int(c) for c in model._counters],
                      "epoch_seconds": n * per_row, "finished_at": done}), flush=True)
""")

# backend, batch size, optimizer settings, (features, hidden units), batchnorm, dropout p.
# The child sizes the data so that one epoch takes about EPOCH_SECONDS.
EPOCH_SECONDS = 4.0
CASES = [
    ("numba", 1, dict(optimizer="sgd", momentum=0.9, nesterov=True), 64, 256, False, 0.2),
    ("numba", 16, dict(optimizer="adam"), 64, 256, True, 0.1),
    ("numpy", 1, dict(optimizer="adam"), 32, 32, False, 0.2),
    ("numpy", 16, dict(optimizer="sgd", momentum=0.5, weight_decay=1e-3), 32, 32, True, 0.0),
]


def _child_env():
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(fb.__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _run_and_interrupt(cfg, delay):
    proc = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(cfg)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_child_env())
    try:
        line = proc.stdout.readline()
        assert line.strip() == "READY", (line, proc.stderr.read())
        time.sleep(delay)
        sent = time.perf_counter()          # perf_counter is system-wide (CLOCK_MONOTONIC)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1]), sent


@pytest.mark.parametrize("backend,batch,opt,d,hidden,bn,p", CASES,
                         ids=[f"{c[0]}-batch{c[1]}-{c[2]['optimizer']}" for c in CASES])
def test_sigint_stops_after_a_complete_step(tmp_path, backend, batch, opt, d, hidden, bn, p):
    rng = np.random.default_rng()
    delay = float(rng.uniform(0.3, 1.2))
    fit_args = dict(batch_size=batch, lr=0.01, shuffle=True, **opt)
    cfg = dict(backend=backend, d=d, hidden=hidden, batchnorm=bn, dropout=p, fit=fit_args,
               calibrate=2048 if backend == "numba" else 256, max_rows=400_000,
               epoch_seconds=EPOCH_SECONDS, out=str(tmp_path / "interrupted.npz"))
    res, sent = _run_and_interrupt(cfg, delay)
    n = res["n"]

    assert res["interrupted"] is True and res["stop_reason"] == "interrupted"
    assert res["epochs_run"] == res["n_losses"] == res["epochs_trained"]
    latency = res["finished_at"] - sent
    assert 0 <= latency < 1.0, (f"fit took {latency:.2f} s to stop after SIGINT (one epoch "
                                f"takes about {res['epoch_seconds']:.1f} s)")

    got = fb.load(cfg["out"])
    assert np.isfinite(got.params).all() and np.isfinite(got.state).all()

    # Replay the same number of steps in this process.
    spe = math.ceil(n / batch)                       # steps per epoch
    epochs_done = res["epochs_trained"]
    steps = res["counters"][0]
    k = steps - epochs_done * spe
    assert 0 < k < spe, f"{epochs_done} epochs + {k} steps: not stopped inside an epoch"
    ns = {}
    exec(COMMON, ns)
    model, X, y = ns["build"](backend, n, d, hidden, bn, p)
    if epochs_done:
        model.fit(X, y, epochs=epochs_done, **fit_args)
    if k:
        idx = model._shuffle_rng.permutation(n)[:k * batch]
        model.fit(X[idx], y[idx], epochs=1, **dict(fit_args, shuffle=False))
    assert np.array_equal(model._counters, got._counters)
    assert np.array_equal(model.params, got.params), "weights differ from a replay of the steps"
    assert np.array_equal(model.state, got.state)
    assert np.array_equal(model._opt_a, got._opt_a) and np.array_equal(model._opt_b, got._opt_b)
    print(f"\n{backend} batch {batch}: SIGINT {delay:.2f} s into fit, stopped after {steps} "
          f"steps (epoch of {spe}, ~{res['epoch_seconds']:.1f} s) within "
          f"{latency * 1000:.0f} ms; replay bit-exact")


def test_fit_outside_main_thread_runs_without_signal_handler():
    import threading
    X, y = fb.datasets.generate_xor_easy()
    model = fb.MLP([2, 4, 1], seed=1)
    out = {}
    before = signal.getsignal(signal.SIGINT)    # Python's own, or SIG_IGN in a background job
    t = threading.Thread(target=lambda: out.setdefault("h", model.fit(X, y, epochs=3, lr=0.1)))
    t.start()
    t.join()
    assert out["h"].epochs_run == 3 and not out["h"].interrupted
    assert signal.getsignal(signal.SIGINT) is before


def test_handler_restored_and_errors_propagate():
    """An exception inside the training call reaches the caller; the handler is restored."""
    import types
    X, y = fb.datasets.generate_xor_easy()
    model = fb.MLP([2, 4, 1], seed=1)
    before = signal.getsignal(signal.SIGINT)
    real = model._ops

    def boom(*args):
        raise RuntimeError("kernel failed")

    model._ops = types.SimpleNamespace(train_epochs=boom, train_epochs_online=boom,
                                       select_batch=lambda *args: None)
    with pytest.raises(RuntimeError, match="kernel failed"):
        model.fit(X, y, epochs=5, lr=0.1, batch_size=4)
    assert signal.getsignal(signal.SIGINT) is before
    model._ops = real
    hist = model.fit(X, y, epochs=2, lr=0.1)
    assert not hist.interrupted and hist.epochs_run == 2


def test_cli_sigint_saves_the_model_and_exits_130(tmp_path):
    """``fastbp train --save`` under a real SIGINT: exit status 130 and a loadable model."""
    pytest.importorskip("fastbp.cli")
    out = tmp_path / "model.npz"
    cmd = [sys.executable, "-m", "fastbp", "train", "--data", "digits", "--lr-decay", "1"]
    # a first run compiles this network's kernels into the cache, so that the signal
    # below lands in fit, not in the warm-up
    subprocess.run(cmd + ["--epochs", "1"], capture_output=True, env=_child_env(),
                   cwd=tmp_path, timeout=600, check=True)
    proc = subprocess.Popen(
        cmd + ["--epochs", "100000", "--save", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_child_env(),
        cwd=tmp_path)
    try:
        for line in proc.stdout:                 # the run has started once it says so
            if line.startswith("training:"):
                break
        time.sleep(3.0)                          # past the warm-up, inside fit
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and str(out) in stderr
    model = fb.load(out)
    assert 1 <= model.epochs_trained < 100000
    assert np.isfinite(model.params).all()
    assert sorted(os.listdir(tmp_path)) == ["model.npz"]      # no temporary left behind
