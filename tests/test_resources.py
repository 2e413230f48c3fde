"""Resource limits: a memory budget checked before fit copies anything, and bounded memory
while training on a CIFAR-10-sized data set."""
import json
import os
import subprocess
import sys
import textwrap
import time
import tracemalloc

import numpy as np
import pytest

import fastbp as fb
from fastbp import _memory
from fastbp._memory import ENV, MemoryBudgetError, parse_size

from conftest import SEED

MiB = 1 << 20


@pytest.fixture(autouse=True)
def no_budget_from_outside(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)


def _problem(n=20000, d=100, dtype=np.float32):
    rng = np.random.default_rng(SEED)
    return rng.random((n, d), dtype=np.float32).astype(dtype), rng.integers(0, 4, n)


def _model(dtype="float64"):
    return fb.MLP([100, 16, 4], activation="relu", output_activation="identity",
                  loss="cross_entropy", dtype=dtype, seed=0)


@pytest.mark.parametrize("text,expected", [
    ("123456", 123456), ("512M", 512 * MiB), ("512MB", 512 * MiB), ("1.5g", int(1.5 * 1024 * MiB)),
    ("2GiB", 2048 * MiB), ("64k", 64 * 1024), ("off", None), ("0", None), ("none", None),
])
def test_parse_size(text, expected):
    assert parse_size(text) == expected


def test_parse_size_percent():
    total = _memory.total_memory()
    assert parse_size("50%") == int(total * 0.5)


@pytest.mark.parametrize("text", ["lots", "-1G", "12Q", "%", "nan", "1e400"])
def test_parse_size_rejects(text):
    with pytest.raises(ValueError, match=ENV):
        parse_size(text)


def test_fit_refuses_before_copying(monkeypatch):
    """float32 data for a float64 model needs a converted copy: refused before it is made."""
    X, y = _problem()                               # 8 MB as float32, 16 MB as float64
    model = _model("float64")
    before = model.params.copy()
    monkeypatch.setenv(ENV, "10M")
    tracemalloc.start()
    try:
        t0 = time.perf_counter()
        with pytest.raises(MemoryBudgetError) as info:
            model.fit(X, y, epochs=1, batch_size=64)
        elapsed = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    msg = str(info.value)
    for word in ("X", "(20000, 100)", "budget", ENV, "converted copy", "10.0 MiB"):
        assert word in msg, msg
    assert isinstance(info.value, MemoryError) and isinstance(info.value, ValueError)
    assert peak < 1 * MiB, f"{peak / MiB:.1f} MiB allocated before refusing"
    assert elapsed < 1.0
    assert np.array_equal(model.params, before) and model.epochs_trained == 0


def test_budget_counts_the_data_set_in_the_model_dtype(monkeypatch):
    X, y = _problem(dtype=np.float64)               # 16 MB, used in place
    model = _model("float64")
    monkeypatch.setenv(ENV, "12M")
    with pytest.raises(MemoryBudgetError, match="12.0 MiB"):
        model.fit(X, y, epochs=1, batch_size=64)
    monkeypatch.setenv(ENV, "64M")
    hist = model.fit(X, y, epochs=1, batch_size=64)
    assert hist.epochs_run == 1
    monkeypatch.setenv(ENV, "off")
    model.fit(X, y, epochs=1, batch_size=64)


def test_float32_model_halves_the_need(monkeypatch):
    X, y = _problem(dtype=np.float32)               # 8 MB, in place for a float32 model
    monkeypatch.setenv(ENV, "12M")
    _model("float32").fit(X, y, epochs=1, batch_size=64)
    with pytest.raises(MemoryBudgetError):
        _model("float64").fit(X, y, epochs=1, batch_size=64)


def test_bad_budget_setting_is_reported(monkeypatch):
    X, y = _problem(n=100)
    monkeypatch.setenv(ENV, "plenty")
    with pytest.raises(ValueError, match=ENV):
        _model().fit(X, y)


def test_default_budget_is_available_memory_plus_data_in_place(monkeypatch):
    """Default: 80% of MemAvailable, plus the caller's X when fit uses it as it is."""
    monkeypatch.setattr(_memory, "available_memory", lambda: 10 * MiB)
    X32, y = _problem(dtype=np.float32)
    X64 = X32.astype(np.float64)                    # 16 MB
    with pytest.raises(MemoryBudgetError, match="available now"):
        _model("float64").fit(X32, y, epochs=1, batch_size=64)     # would copy 16 MB
    with pytest.raises(MemoryBudgetError):
        _model("float64").fit(X64[:, ::-1], y, epochs=1, batch_size=64)  # not contiguous
    hist = _model("float64").fit(X64, y, epochs=1, batch_size=64)  # resident: no new memory
    assert hist.epochs_run == 1
    need, resident, _ = _memory.fit_footprint(_model("float64"), X64, 64)
    assert resident == X64.nbytes and need > X64.nbytes
    assert _memory.fit_footprint(_model("float64"), X32, 64)[1] == 0


def test_huge_virtual_array_fails_fast_with_default_budget():
    """A 120 GB (as float32; 240 GB as float64) view that costs nothing until copied."""
    X = np.broadcast_to(np.float32(0.5), (10_000_000, 3072))
    y = np.zeros(10_000_000, dtype=np.int64)
    model = fb.MLP([3072, 8, 10], output_activation="identity", loss="cross_entropy")
    t0 = time.perf_counter()
    with pytest.raises(MemoryBudgetError, match=r"\(10000000, 3072\)"):
        model.fit(X, y, epochs=1, batch_size=128)
    assert time.perf_counter() - t0 < 2.0


def test_validation_data_is_counted(monkeypatch):
    X, y = _problem(n=2000)                        # 0.8 MB as float32
    Xv = np.asfortranarray(_problem(n=40000)[0])   # needs a 32 MB float64 copy
    monkeypatch.setenv(ENV, "16M")
    with pytest.raises(MemoryBudgetError):
        _model("float64").fit(X, y, validation_data=(Xv, np.zeros(40000, dtype=int)))


# ------------------------------------------------------------------ peak memory
CHILD = textwrap.dedent("""
    import json, resource, sys, time
    import numpy as np
    import fastbp as fb

    def rss():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024

    def peak():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    n, d, hidden, batch = 50_000, 3072, 64, 128
    rng = np.random.default_rng(0)
    make = lambda: fb.MLP([d, hidden, 10], activation="relu", output_activation="identity",
                          loss="cross_entropy", dtype="float32", seed=0)
    warm = make()          # load the kernels and start BLAS before measuring
    warm.fit(rng.random((2 * batch, d), dtype=np.float32), rng.integers(0, 10, 2 * batch),
             epochs=1, batch_size=batch)
    model = make()
    baseline = peak()
    X = rng.random((n, d), dtype=np.float32)            # CIFAR-10's shape, as float32
    y = rng.integers(0, 10, n)
    with_data = rss()
    t = time.perf_counter()
    hist = model.fit(X, y, epochs=1, batch_size=batch, lr=0.01, momentum=0.9)
    secs = time.perf_counter() - t
    print(json.dumps(dict(baseline=baseline, with_data=with_data, fit_peak=peak(),
                          data=X.nbytes + y.nbytes, params=model.params.nbytes,
                          activations=batch * (d + hidden + 10) * 4, secs=secs,
                          loss=hist.loss[-1])))
""")


def test_cifar_sized_training_runs_in_bounded_memory():
    root = os.path.dirname(os.path.dirname(os.path.abspath(fb.__file__)))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop(ENV, None)
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=env,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout.strip().splitlines()[-1])
    over = r["fit_peak"] - max(r["with_data"], r["baseline"])
    bound = 3 * (r["params"] + r["activations"]) + 32 * MiB
    print(f"\nCIFAR-shaped fit (50000 x 3072 float32, one epoch in {r['secs']:.1f} s): data "
          f"{r['data'] / MiB:.0f} MiB; RSS {r['with_data'] / MiB:.0f} MiB with the data "
          f"loaded (interpreter, NumPy, Numba and kernels: {(r['with_data'] - r['data']) / MiB:.0f}"
          f" MiB); peak {r['fit_peak'] / MiB:.0f} MiB, i.e. fit added {over / MiB:.1f} MiB "
          f"(bound {bound / MiB:.1f} MiB = 3 x (params + batch activations) + 32 MiB)")
    assert np.isfinite(r["loss"])
    assert r["with_data"] >= r["data"]
    assert over <= bound, f"fit used {over / MiB:.1f} MiB beyond the data (bound {bound / MiB:.1f})"
