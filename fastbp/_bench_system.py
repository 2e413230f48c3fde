"""fastbp bench's system workloads: C (large batch), T (thread pools), M (memory), S (start-up).

C and T use the machine's default thread counts; M and S run in subprocesses.
"""
import gc
import json
import os
import subprocess
import sys
import time

import numpy as np

from . import _blas
from . import _bench_workloads as W
from ._bench_core import (BOUND, DEFAULT_THREADS, FASTBP, GEMMS_OWN, REFERENCE, TORCH,
                          fmt_num, interleave, max_diff, one_thread, perf_times, pools, torch_module,
                          weights_diff)
from ._bench_rivals import TorchTrainer

C_STEP_OVER_GEMMS = 1.05     # a step may take this many times its own products
C_VS_REFERENCE = 1.05        # fastbp this many times faster than the reference
C_VS_TORCH32 = 1.15          # ... and than PyTorch eager in float32
CLIFF_TARGET = 1.2           # alternating fastbp with NumPy: at most this much slower


# --------------------------------------------------------------------------- C: large batch
def _c_step_times(S, rep, name, fit, fast, ref):
    """fastbp in turns with its products on its kernels' BLAS, the bound, the reference."""
    nb, sizes = S.c_batches, W.CIFAR_NET["sizes"]
    gemms = W.StepGemms(sizes, W.CIFAR_BATCH, fast.dtype,
                        "scipy" if _blas.cblas() is None else "numpy")
    times = interleave({FASTBP: lambda: fit(fast), GEMMS_OWN: gemms}, S.c_rounds, S.warmup)
    t = {FASTBP: [x / nb for x in times[FASTBP]], GEMMS_OWN: times[GEMMS_OWN]}
    rep.time("C", name, FASTBP, t[FASTBP], "s/step", DEFAULT_THREADS,
             note=f"{nb} steps per fit call, time divided; in turns with the next row")
    rep.time("C", name, GEMMS_OWN, t[GEMMS_OWN], "s/step", DEFAULT_THREADS,
             note="the step's 8 matrix products into preallocated arrays")
    del gemms
    gemms = W.StepGemms(sizes, W.CIFAR_BATCH, fast.dtype, "numpy")
    t[BOUND] = perf_times(gemms, S.c_rounds, warmup=S.warmup)
    rep.time("C", name, BOUND, t[BOUND], "s/step", DEFAULT_THREADS,
             note="the same with NumPy's BLAS: the bound")
    t[REFERENCE] = [x / nb for x in perf_times(lambda: fit(ref), S.slow_repeat,
                                                 warmup=S.warmup)]
    return t


def _c_torch(S, rep, key, name, w0, w1, X, y, t_fast):
    dtype = X.dtype.name
    tr = TorchTrainer(W.CIFAR_NET, w0, X, y, W.CIFAR_BATCH, W.CIFAR_LR, dtype)
    times = [t / S.c_batches for t in perf_times(tr.epoch, S.slow_repeat, warmup=S.warmup)]
    check = TorchTrainer(W.CIFAR_NET, w0, X, y, W.CIFAR_BATCH, W.CIFAR_LR, dtype)
    check.epoch(W.CIFAR_BATCH)
    rep.time("C", name, TORCH + f" ({dtype})", times, "s/step", DEFAULT_THREADS,
             agreement=weights_diff(w1, check.weights()), agreement_with=FASTBP + ", 1 step")
    if dtype == "float32":
        rep.target("C", f"{key} speed-up vs torch eager (float32)",
                   float(np.median(times) / np.median(t_fast)), ">=", C_VS_TORCH32, "x")


def workload_C(S, rep):
    B = W.CIFAR_BATCH
    for key, dtype in (("C1", "float32"), ("C2", "float64")):
        X, y = W.cifar_shaped(S.c_batches * B, dtype=dtype)
        name = f"{key} CIFAR-shaped 3072-1024-512-10 ReLU, batch 256, {dtype} (s/step)"

        def fit(m, Xs=X, ys=y):
            m.fit(Xs, ys, epochs=1, lr=W.CIFAR_LR, batch_size=B, shuffle=False)

        # agreement: one step each from the same weights
        fast, ref = W.mlp(W.CIFAR_NET, "numba", dtype), W.mlp(W.CIFAR_NET, "numpy", dtype)
        w0 = fast.get_weights()
        fit(fast, X[:B], y[:B])
        fit(ref, X[:B], y[:B])
        agree_ref = max_diff(fast.params, ref.params)
        w1 = fast.get_weights()
        t = _c_step_times(S, rep, name, fit, fast, ref)
        rep.time("C", name, REFERENCE, t[REFERENCE], "s/step", DEFAULT_THREADS,
                 agreement=agree_ref, agreement_with=FASTBP + ", 1 step")
        if dtype == "float64":
            rep.target("C", f"{key} agreement fastbp vs reference", agree_ref, "<=", W.TOL64,
                       "diff")
        else:
            rep.figure("C", f"{key} agreement fastbp vs reference (float32)", agree_ref, "")
        rep.target("C", f"{key} fastbp step / its GEMMs alone (its BLAS, in turns)",
                   float(np.median(np.array(t[FASTBP]) / np.array(t[GEMMS_OWN]))), "<=",
                   C_STEP_OVER_GEMMS, "x")
        rep.target("C", f"{key} speed-up vs reference",
                   float(np.median(t[REFERENCE]) / np.median(t[FASTBP])), ">=", C_VS_REFERENCE,
                   "x")
        rep.figure("C", f"{key} fastbp step / its GEMMs alone (np.matmul): x bound",
                   float(np.median(t[FASTBP]) / np.median(t[BOUND])), "x", "medians of blocks")
        if torch_module() is not None:
            _c_torch(S, rep, key, name, w0, w1, X, y, t[FASTBP])
        else:
            rep.skip("C", name, TORCH, "PyTorch is not importable")
        del fast, ref
        gc.collect()


# --------------------------------------------------------------------------- T: thread pools
def _cliff(S, epoch, matmul):
    """Median (epoch, matmul) times alone and alternating, over rounds of blocks."""
    alone_e, alone_m, alt_e, alt_m = [], [], [], []
    for _ in range(S.cliff_rounds):      # short blocks in rounds: load drift hits all alike
        alone_e += perf_times(epoch, S.cliff_runs)     # the warm-up run absorbs the switch
        alone_m += perf_times(matmul, S.cliff_runs)
        epoch()
        matmul()
        for _ in range(S.cliff_runs):
            t0 = time.perf_counter()
            epoch()
            t1 = time.perf_counter()
            matmul()
            t2 = time.perf_counter()
            alt_e.append(t1 - t0)
            alt_m.append(t2 - t1)
    med = [float(np.median(v)) for v in (alone_e, alone_m, alt_e, alt_m)]
    return med, med[2] / med[0], med[3] / med[1]


def workload_T(S, rep):
    X, y = W.digits()
    model = W.mlp(W.DIGITS_NET, "numba")

    def epoch():
        model.fit(X, y, epochs=1, lr=W.DIGITS_LR, batch_size=32, shuffle=False)

    g = np.random.default_rng(0)
    A, B = g.random((512, 512)), g.random((512, 512))
    C = np.empty_like(A)

    def matmul():
        np.dot(A, B, out=C)

    epoch()
    matmul()
    blas = ", ".join(f"{p['library']}={p['threads']}" for p in pools() if p["api"] == "blas")
    (ae, am, xe, xm), re_, rm = _cliff(S, epoch, matmul)
    name = "T fastbp digits epoch (batch 32) alternating with NumPy 512x512 @ 512x512"
    rep.figure("T", "T fastbp epoch alone", ae, "s", f"default threads: {blas}")
    rep.figure("T", "T fastbp epoch when alternating", xe, "s")
    rep.figure("T", "T NumPy matmul alone", am, "s")
    rep.figure("T", "T NumPy matmul when alternating", xm, "s")
    rep.target("T", "T fastbp epoch: alternating / alone (default threads)", re_, "<=",
               CLIFF_TARGET, "x")
    rep.target("T", "T NumPy matmul: alternating / alone (default threads)", rm, "<=",
               CLIFF_TARGET, "x")
    with one_thread():
        (ae1, am1, xe1, xm1), re1, rm1 = _cliff(S, epoch, matmul)
    rep.figure("T", "T fastbp epoch: alternating / alone, 1 thread per pool", re1, "x",
               "diagnostic: the same with threadpoolctl limits=1")
    rep.figure("T", "T NumPy matmul: alternating / alone, 1 thread per pool", rm1, "x",
               "diagnostic: the same with threadpoolctl limits=1")
    rep.notes.append(f"{name}: median of {S.cliff_rounds * S.cliff_runs} runs each")


# --------------------------------------------------------------------------- M: memory
_MEMORY_CHILD = r"""
import gc, json, sys, tracemalloc
import numpy as np
import fastbp as fb

def nrt():
    # Numba's allocation counter (NUMBA_NRT_STATS=1), once the runtime is up
    try:
        from numba.core.runtime import rtsys
        return rtsys.get_allocation_stats().alloc
    except Exception:
        return None

out = {}

def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return None

def steady(tag, model, X, y, batch, lr, steps):
    # X holds exactly `steps` steps; X2 twice as many (for the allocation counter)
    X2, y2 = np.concatenate([X, X]), np.concatenate([y, y])
    fit = lambda Xs, ys, e=1: model.fit(Xs, ys, epochs=e, lr=lr, batch_size=batch,
                                        shuffle=False)
    fit(X, y); fit(X2, y2); fit(X, y, 2)              # compile / load, buffers
    a0 = nrt(); fit(X, y); a1 = nrt(); fit(X2, y2); a2 = nrt()
    per_step_nrt = None if None in (a0, a1, a2) else ((a2 - a1) - (a1 - a0)) / steps
    tracemalloc.start()
    fit(X, y)
    gc.collect()
    base = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    fit(X, y)
    cur, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    out[tag] = dict(steps=steps, call_peak_bytes=peak - base, retained_bytes=cur - base,
                    nrt_allocs_per_step=per_step_nrt,
                    nrt_allocs_per_call=None if None in (a0, a1) else a1 - a0)

X, y = fb.datasets.generate_linear(n=100, seed=0)
m = fb.MLP([2, 4, 4, 1], activation="sigmoid", output_activation="sigmoid", loss="mse")
steady("per-sample", m, X, y, 1, 0.1, 100)
X, _, y, _ = fb.datasets.load_digits()
reps = -(-3200 // X.shape[0])
X, y = np.concatenate([X] * reps)[:3200], np.concatenate([y] * reps)[:3200]
m = fb.MLP([64, 128, 64, 10], activation="relu", output_activation="identity",
           loss="cross_entropy")
steady("mini-batch", m, X, y, 32, 0.05, 100)

n_batches = int(sys.argv[1])
for dtype in sys.argv[2].split(","):
    g = np.random.default_rng([0, 10])
    X = (g.integers(0, 256, (n_batches * 256, 3072)) / 255.0).astype(dtype)
    y = g.integers(0, 10, n_batches * 256)
    spec = dict(activation="relu", output_activation="identity", loss="cross_entropy",
                dtype=dtype)
    warm = fb.MLP([3072, 1024, 512, 10], **spec)
    warm.fit(X[:256], y[:256], epochs=1, lr=0.01, batch_size=256, shuffle=False)
    del warm
    gc.collect()
    rss0 = status("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        reset = True
    except OSError:
        reset = False
    m = fb.MLP([3072, 1024, 512, 10], **spec)
    m.fit(X, y, epochs=1, lr=0.01, batch_size=256, shuffle=False)
    peak = status("VmHWM")
    item = np.dtype(dtype).itemsize
    out["peak-" + dtype] = dict(
        beyond_data_bytes=peak - rss0, peak_reset=reset,
        params_bytes=m.n_params * item, activations_bytes=256 * (1024 + 512 + 10) * item)
    del m
    gc.collect()
print(json.dumps(out))
"""


def _child(code, args=(), env=None, timeout=900):
    e = dict(os.environ)
    e.update(env or {})
    proc = subprocess.run([sys.executable, "-c", code, *map(str, args)], env=e,
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark subprocess failed ({proc.returncode}):\n"
                           f"{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def workload_M(S, rep):
    dtypes = ("float64",) if S.quick else ("float32", "float64")
    res = _child(_MEMORY_CHILD, [S.c_batches + 1, ",".join(dtypes)],
                 env={"NUMBA_NRT_STATS": "1"})
    for tag in ("per-sample", "mini-batch"):
        r = res[tag]
        steps = r["steps"]
        rep.figure("M", f"M {tag} fit: bytes allocated per step (tracemalloc, {steps} steps)",
                   r["call_peak_bytes"] / steps, "B",
                   f"traced peak of one fit call of {steps} steps "
                   f"({fmt_num(r['call_peak_bytes'], 'B')}, allocated per call by the checks; "
                   f"the snapshots go into kept buffers), divided by {steps}; "
                   f"{fmt_num(r['retained_bytes'], 'B')} kept")
        rep.target("M", f"M {tag} fit: Numba allocations inside the step loop, per step",
                   r["nrt_allocs_per_step"], "<=", 0.0, "")
        if r["nrt_allocs_per_call"] is not None:
            rep.figure("M", f"M {tag} fit: Numba allocations per fit call",
                       r["nrt_allocs_per_call"], "", "array arguments boxed per kernel call")
    for dtype in dtypes:
        r = res["peak-" + dtype]
        denom = r["params_bytes"] + r["activations_bytes"]
        rep.figure("M", f"M C {dtype}: peak memory beyond the data set",
                   int(r["beyond_data_bytes"]), "B",
                   "RSS high-water mark during fit" + ("" if r["peak_reset"] else
                                                      " (peak not resettable: upper bound)"))
        rep.figure("M", f"M C {dtype}: that peak / (parameters + one batch of activations)",
                   r["beyond_data_bytes"] / denom, "x",
                   f"parameters {r['params_bytes'] / 2**20:.1f} MiB + layer outputs of 256 rows "
                   f"{r['activations_bytes'] / 2**20:.1f} MiB")


# --------------------------------------------------------------------------- S: start-up
def workload_S(S, rep):
    """The cold-start figures, each in fresh processes (``W.measure_cold_start``)."""
    runs = 1 if S.quick else 3
    rep.figure("S", "S import fastbp (fresh process)", W.measure_import(S.import_runs), "s",
               f"median of {S.import_runs}")
    kinds = ("per-sample",) if S.quick else W.STARTUP_KINDS
    res = W.measure_cold_start(kinds, warm_runs=runs)
    for kind in W.STARTUP_KINDS:
        if kind not in res:
            rep.figure("S", f"S first fit {kind}, empty cache", None, "s",
                       "skipped with --quick (compiles for about a minute)")
            continue
        cold, warm = res[kind]["cold"], res[kind]["warm"]
        rep.figure("S", f"S first fit {kind}, empty cache: model + fit", cold["first_fit_s"],
                   "s", "fresh NUMBA_CACHE_DIR: compiles every kernel it needs")
        rep.figure("S", f"S {kind}: predict + evaluate + loss_and_grads after it",
                   cold["after_fit_s"], "s", "same process, empty cache")
        rep.figure("S", f"S {kind}: whole process, empty cache", cold["process_s"], "s",
                   "interpreter start to exit: import, model, fit, the calls after it")
        rep.figure("S", f"S first fit {kind}, warm cache: model + fit", warm["first_fit_s"],
                   "s", f"the same NUMBA_CACHE_DIR again, beyond import (median of {runs})")
        rep.figure("S", f"S {kind}: whole process, warm cache", warm["process_s"], "s",
                   f"median of {runs}")
