r"""Seeded data, networks and checks shared by fastbp's asv suite.

Only ever append to this module: a benchmark's history means something only
while its data and its network stay the same from commit to commit. New data
gets a new factory (or a new name), never a changed default.

Every benchmark's ``setup`` trains the Numba model and the NumPy reference on
the same data from the same weights and calls :func:`check_matches_reference`
before anything is timed; that first call also compiles the kernels, so no
JIT time lands in a timed body.

Running the suite (from ``asv_bench/``)::

    asv machine --yes                      # once per machine
    asv check --python=same                # imports and validates every benchmark
    asv run --python=same --quick          # smoke run; not saved (see below)
    asv run --python=same --set-commit-hash $(git rev-parse HEAD)   # saved

``environment_type`` is ``existing``: asv times the fastbp that the running
Python imports and builds nothing, so it saves results only when told which
commit they belong to (``--set-commit-hash``), and ``asv continuous`` refuses
to run ("No range spec may be specified if benchmarking in an existing
environment"). To compare two commits, benchmark a checkout of each with this
suite (asv hands ``ASV_PYTHONPATH`` to the benchmark processes as their
``PYTHONPATH``, ahead of the editable install), then compare::

    for sha in $(git rev-parse main~1 main); do
        git worktree add --detach ../../fastbp-$sha $sha
        ASV_PYTHONPATH=$(realpath ../../fastbp-$sha) \
            asv run --python=same --set-commit-hash $sha
        git worktree remove ../../fastbp-$sha
    done
    asv compare $(git rev-parse main~1) $(git rev-parse main)
"""
import numpy as np

import fastbp as fb

SEED = 0
TOL64 = 1e-10      # fastbp vs the reference after the same work, float64
TOL32 = 1e-4       # the same in float32 (different summation orders in BLAS)


def tolerance(dtype):
    return TOL64 if np.dtype(dtype) == np.float64 else TOL32


# --------------------------------------------------------------------------- data
def linear_points(n=500, seed=SEED, dtype="float64"):
    """``fb.datasets.generate_linear``: (n, 2) points, (n, 1) labels 0/1."""
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
    X, _, y, _ = fb.datasets.load_digits(dtype=dtype)
    return X, y


def cifar_shaped(n=256, seed=SEED, dtype="float64"):
    """Random images of CIFAR-10's shape: (n, 3072) in [0, 1] (multiples of 1/255), (n,)."""
    g = np.random.default_rng([seed, 10])
    X = g.integers(0, 256, (n, 3072)).astype(np.float64) / 255.0
    y = g.integers(0, 10, n).astype(np.int64)
    return np.ascontiguousarray(X, dtype=dtype), y


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

DIGITS_NET = dict(sizes=[64, 128, 64, 10], activation="relu", output_activation="identity",
                  loss="cross_entropy")
DIGITS_LR = 0.05
DIGITS_ARCHS = {"plain": {}, "bn-dropout": dict(batchnorm=True, dropout=0.2)}

CIFAR_NET = dict(sizes=[3072, 1024, 512, 10], activation="relu", output_activation="identity",
                 loss="cross_entropy")
CIFAR_LR = 0.01
CIFAR_BATCH = 256


def mlp(spec, backend="numba", dtype="float64", seed=SEED, **extra):
    kw = dict(spec)
    kw.update(extra)
    return fb.MLP(backend=backend, dtype=dtype, seed=seed, **kw)


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
    import time
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - t0) / number)
    return float(np.median(times))
