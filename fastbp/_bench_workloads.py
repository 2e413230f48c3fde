r"""The benchmark workloads, defined once: data, networks, bounds and the start-up probe.

Both ``fastbp bench`` (which imports this module as ``fastbp._bench_workloads``)
and the asv suite in ``asv_bench/benchmarks`` (whose ``common.py`` loads this
file by its path in the same checkout) use these definitions.

Rules that keep asv able to time older commits:

* This file uses only NumPy, SciPy and fastbp's public API (``fb.MLP``,
  ``fb.datasets``, ``fit``, ``params``, ``predict``...), imported when a function
  runs: asv loads it from the benchmarks' own checkout and runs it against
  whichever fastbp is under test, possibly an older one.
* Only ever append: a benchmark's history means something only while its data
  and its network stay the same from commit to commit. New data gets a new
  factory (or a new name), never a changed default.
"""
import json
import os
import subprocess
import sys
import time

import numpy as np

SEED = 0
TOL64 = 1e-10      # fastbp vs the reference after the same work, float64
TOL32 = 1e-4       # the same in float32 (different summation orders in BLAS)


def tolerance(dtype):
    """The agreement fastbp must reach with the reference in ``dtype``."""
    return TOL64 if np.dtype(dtype) == np.float64 else TOL32


# --------------------------------------------------------------------------- data
def linear_points(n=500, seed=SEED, dtype="float64"):
    """``fb.datasets.generate_linear``: (n, 2) points, (n, 1) labels 0/1."""
    import fastbp as fb

    return fb.datasets.generate_linear(n=n, seed=seed, dtype=dtype)


def blobs(n=500, n_features=4, n_classes=3, seed=SEED, dtype="float64"):
    """Gaussian blobs: (n, n_features) points around one centre per class, (n,) labels."""
    g = np.random.default_rng([seed, 7])
    centres = g.normal(0.0, 2.0, (n_classes, n_features))
    y = g.integers(0, n_classes, n).astype(np.int64)
    X = centres[y] + g.normal(0.0, 1.0, (n, n_features))
    return np.ascontiguousarray(X, dtype=dtype), y


def digits(dtype="float64"):
    """The training part of ``fb.datasets.load_digits``: (1438, 64) standardised, (1438,)."""
    import fastbp as fb

    X, _, y, _ = fb.datasets.load_digits(dtype=dtype)
    return X, y


def cifar_shaped(n=256, seed=SEED, dtype="float64"):
    """Random images of CIFAR-10's shape: (n, 3072) in [0, 1] (multiples of 1/255), (n,)."""
    g = np.random.default_rng([seed, 10])
    X = g.integers(0, 256, (n, 3072)).astype(np.float64) / 255.0
    y = g.integers(0, 10, n).astype(np.int64)
    return np.ascontiguousarray(X, dtype=dtype), y


def normal_rows(n, n_features, n_classes, seed=SEED, dtype="float64"):
    """Standard normal rows and uniform labels (the yardstick's data for B, C and D)."""
    g = np.random.default_rng(seed)
    X = g.normal(size=(n, n_features)).astype(dtype)
    return X, g.integers(0, n_classes, n).astype(np.int64)


# --------------------------------------------------------------------------- networks
# name -> (MLP keyword arguments, data factory, learning rate)
ONLINE_NETS = {
    "sigmoid-2-4-4-1-mse": (dict(sizes=[2, 4, 4, 1], activation="sigmoid",
                                 output_activation="sigmoid", loss="mse"), linear_points, 0.1),
    "tanh-2-8-8-1-mse": (dict(sizes=[2, 8, 8, 1], activation="tanh",
                              output_activation="sigmoid", loss="mse"), linear_points, 0.1),
    "relu-4-16-16-3-ce": (dict(sizes=[4, 16, 16, 3], activation="relu",
                               output_activation="identity", loss="cross_entropy"), blobs, 0.05),
}
# Per-sample epochs per fit call when timing the kernel's throughput: about 1%
# of such a call is fit's own per-call cost (20% and more with one epoch).
ONLINE_EPOCHS_PER_CALL = 50

DIGITS_NET = dict(sizes=[64, 128, 64, 10], activation="relu", output_activation="identity",
                  loss="cross_entropy")
DIGITS_LR = 0.05
DROPOUT_P = 0.2
DIGITS_ARCHS = {"plain": {}, "bn-dropout": dict(batchnorm=True, dropout=DROPOUT_P)}

CIFAR_NET = dict(sizes=[3072, 1024, 512, 10], activation="relu", output_activation="identity",
                 loss="cross_entropy")
CIFAR_LR = 0.01
CIFAR_BATCH = 256

# The yardstick's bound workloads: name -> (sizes, rows, batch, dtype). C32 and D32
# keep 4 of their 8 and 32 batches (the ratio is per step; rows only set the run time).
BOUND_WORKLOADS = {
    "B32": ([64, 128, 64, 10], 1437, 32, "float64"),
    "C32": ([3072, 1024, 512, 10], 1024, 256, "float32"),
    "D32": ([128, 512, 512, 10], 4096, 1024, "float32"),
}
BOUND_LR = 0.01


def mlp(spec, backend="numba", dtype="float64", seed=SEED, **extra):
    """``fb.MLP(**spec, **extra)`` on ``backend`` in ``dtype``."""
    import fastbp as fb

    kw = dict(spec)
    kw.update(extra)
    return fb.MLP(backend=backend, dtype=dtype, seed=seed, **kw)


def bound_spec(sizes):
    """The Dense + ReLU stack with softmax cross-entropy of the bound workloads."""
    return dict(sizes=list(sizes), activation="relu", output_activation="identity",
                loss="cross_entropy")


# --------------------------------------------------------------------------- checks
def max_param_diff(a, b):
    """max |a.params - b.params| of two models of the same layout."""
    return float(np.max(np.abs(a.params.astype(np.float64) - b.params.astype(np.float64))))


def check_matches_reference(build, train, dtype="float64", what="benchmark"):
    """Train ``build("numba")`` and ``build("numpy")`` with ``train(model)``; compare weights.

    Raises AssertionError (asv then reports the benchmark as failed) when the
    largest weight difference exceeds :func:`tolerance` of ``dtype``. Returns
    the Numba model, trained and compiled.
    """
    fast, ref = build("numba"), build("numpy")
    if not np.array_equal(fast.params, ref.params):
        raise AssertionError(f"{what}: the two backends start from different weights")
    train(fast)
    train(ref)
    diff = max_param_diff(fast, ref)
    if not diff <= tolerance(dtype):
        raise AssertionError(f"{what}: fastbp differs from the NumPy reference by {diff:.3g} "
                             f"(tolerance {tolerance(dtype):g})")
    return fast


def median_time(fn, repeat=5, number=1):
    """Median seconds of ``fn()`` over ``repeat`` runs of ``number`` calls (one warm-up)."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - t0) / number)
    return float(np.median(times))


# --------------------------------------------------------------------------- the bound
class StepGemms:
    """The matrix products of one training step of a Dense stack, alone: its bound.

    Forward ``x W_i`` per layer; backward ``dW_i = in_i' d_i`` per layer and
    ``d(in_i) = d_i W_i'`` for every layer but the first (no gradient for the
    network's input) -- the products the yardstick times as "the bound", here
    into preallocated arrays so nothing else is timed. ``blas="numpy"`` uses
    ``np.matmul(out=)`` (NumPy's BLAS; ``np.dot(out=)`` takes a slow non-BLAS
    path for some transposed operands); ``blas="scipy"`` calls SciPy's ``?gemm``,
    the one fastbp's kernels call where NumPy bundles no BLAS (:mod:`fastbp._blas`).
    """

    def __init__(self, sizes, batch, dtype, blas="numpy"):
        g = np.random.default_rng(0)

        def a(*shape):
            return g.standard_normal(shape).astype(dtype)

        x = a(batch, sizes[0])
        W = [a(sizes[i], sizes[i + 1]) for i in range(len(sizes) - 1)]
        h = [a(batch, s) for s in sizes[1:]]
        d = [a(batch, s) for s in sizes[1:]]
        dW = [np.empty_like(w) for w in W]
        dh = [np.empty((batch, s), dtype) for s in sizes[1:-1]]
        inp = [x] + h[:-1]
        calls = [(inp[i], W[i], h[i]) for i in range(len(W))]
        for i in range(len(W) - 1, -1, -1):
            calls.append((inp[i].T, d[i], dW[i]))
            if i > 0:
                calls.append((d[i], W[i].T, dh[i - 1]))
        self.n_products = len(calls)
        if blas == "numpy":
            self.calls = [(np.matmul, (p, q), {"out": o}) for p, q, o in calls]
        else:
            from scipy.linalg import blas as sb

            gemm = sb.dgemm if np.dtype(dtype) == np.float64 else sb.sgemm
            self.calls = [(gemm, *self._fortran(p, q, o)) for p, q, o in calls]

    @staticmethod
    def _fortran(x, y, out):
        """?gemm arguments computing C-ordered ``out = x @ y`` as ``out' = y' x'``."""
        def operand(m):           # an F-contiguous array and its trans flag
            return (m, 0) if m.flags.f_contiguous else (m.T, 1)

        (fa, ta), (fb, tb) = operand(y.T), operand(x.T)
        return (1.0, fa, fb), dict(beta=0.0, c=out.T, overwrite_c=1, trans_a=ta, trans_b=tb)

    def __call__(self):
        for fn, args, kw in self.calls:
            fn(*args, **kw)


class EpochGemms:
    """The bound of one epoch of ``n`` rows in batches of ``batch``: every step's products."""

    def __init__(self, sizes, n, batch, dtype, blas="numpy"):
        full, rest = divmod(n, batch)
        self.steps = [(StepGemms(sizes, batch, dtype, blas), full)]
        if rest:
            self.steps.append((StepGemms(sizes, rest, dtype, blas), 1))

    def __call__(self):
        for step, count in self.steps:
            for _ in range(count):
                step()


# --------------------------------------------------------------------------- start-up
# Runs in a fresh process; prints one JSON line of seconds. "import": import
# fastbp. "per-sample" / "mini-batch": also build the model and run its first
# fit ("first_fit_s", construction included), then predict + evaluate +
# loss_and_grads ("after_fit_s"). Only the public API, so any commit runs it.
STARTUP_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
import fastbp as fb
t1 = time.perf_counter()
kind = sys.argv[1]
out = {"import_s": t1 - t0}
if kind != "import":
    if kind == "per-sample":
        X, y = fb.datasets.generate_linear(n=500, seed=0)
        build = lambda: fb.MLP([2, 4, 4, 1], activation="sigmoid", output_activation="sigmoid",
                               loss="mse")
        kw = dict(batch_size=1, lr=0.1)
    else:
        X, _, y, _ = fb.datasets.load_digits()
        build = lambda: fb.MLP([64, 128, 64, 10], activation="relu",
                               output_activation="identity", loss="cross_entropy")
        kw = dict(batch_size=32, lr=0.05)
    t2 = time.perf_counter()
    model = build()
    model.fit(X, y, epochs=1, shuffle=False, **kw)
    t3 = time.perf_counter()
    model.predict(X)
    model.evaluate(X, y)
    if hasattr(model, "loss_and_grads"):
        model.loss_and_grads(X[:32], y[:32])
    t4 = time.perf_counter()
    out.update(first_fit_s=t3 - t2, after_fit_s=t4 - t3)
print(json.dumps(out))
"""
STARTUP_KINDS = ("per-sample", "mini-batch")


def run_startup_child(kind, env_extra=None, timeout=900):
    """Run :data:`STARTUP_CHILD` for ``kind`` in a fresh interpreter.

    Returns its figures plus ``process_s``, the whole process's wall time
    (interpreter start to exit). Raises RuntimeError with the child's stderr
    when it fails.
    """
    env = dict(os.environ)
    env.update(env_extra or {})
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", STARTUP_CHILD, kind], env=env,
                          capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"start-up probe {kind!r} failed ({proc.returncode}):\n"
                           f"{proc.stderr[-2000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["process_s"] = wall
    return out


def cold_env(cache_dir):
    """Environment for a start-up probe with Numba's cache in ``cache_dir``."""
    return {"NUMBA_CACHE_DIR": cache_dir, "FASTBP_NUMBA_CACHE": "1"}


def measure_cold_start(kinds=STARTUP_KINDS, warm_runs=3):
    """{kind: {"cold": figures, "warm": figures}} of :func:`run_startup_child`.

    "cold": one process with an empty ``NUMBA_CACHE_DIR`` (everything compiles);
    "warm": the median of ``warm_runs`` processes on the cache it filled.
    """
    import shutil
    import tempfile

    out = {}
    for kind in kinds:
        tmp = tempfile.mkdtemp(prefix="fastbp-numba-cache-")
        try:
            cold = run_startup_child(kind, cold_env(tmp))
            warm = [run_startup_child(kind, cold_env(tmp)) for _ in range(warm_runs)]
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        out[kind] = {"cold": cold,
                     "warm": {k: float(np.median([w[k] for w in warm])) for k in cold}}
    return out


def measure_import(runs=3):
    """Median seconds of ``import fastbp`` over ``runs`` fresh processes."""
    return float(np.median([run_startup_child("import")["import_s"] for _ in range(runs)]))
