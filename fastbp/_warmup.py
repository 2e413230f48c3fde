"""``fastbp warmup``: compile the common kernels ahead of time.

Run it once when building an image or a CI cache: every later process loads
the machine code from fastbp's cache folder (:mod:`fastbp._cache`) instead of
compiling on its first ``fit``. It trains a tiny network of each common kind
for one epoch and calls ``predict``, ``evaluate`` and ``loss_and_grads`` on
it, per dtype, and reports what each step compiled and how long it took.
"""
import time

import numpy as np

# label, MLP keyword arguments, fit keyword arguments. fastbp generates the
# kernels of each network for its layer stack (fastbp.kernels.specialize_online and
# specialize_batch), so a warm cache serves the networks warmed here: the CLI's
# default ones (the 2-D sets' per-sample 2-4-4-1, the images' classifier on
# digits) and small networks of every other kind. The kernels they share with
# every network (BatchNorm's, the random streams', Numba's own) load from the
# cache for any shape. The mini-batch networks are wide enough (over
# specialize.EVAL_MAX_MACS multiply-adds per row) that predict, evaluate and
# loss_and_grads run in batches, not a row at a time.
CONFIGS = (
    ("per-sample 2-4-4-1 sigmoid, mse, sgd",
     dict(sizes=[2, 4, 4, 1], activation="sigmoid", loss="mse", init="uniform"),
     dict(batch_size=1, optimizer="sgd")),
    ("mini-batch 64-128-64-10 relu + batchnorm + dropout, cross-entropy, sgd momentum",
     dict(sizes=[64, 128, 64, 10], activation="relu", output_activation="identity",
          loss="cross_entropy", batchnorm=True, dropout=0.1),
     dict(batch_size=32, optimizer="sgd", momentum=0.9)),
    ("mini-batch tanh, mse, adam",
     dict(sizes=[8, 64, 64, 4], activation="tanh", output_activation="identity", loss="mse"),
     dict(batch_size=4, optimizer="adam")),
    ("mini-batch sigmoid, binary cross-entropy, sgd",
     dict(sizes=[8, 64, 64, 1], activation="sigmoid", output_activation="sigmoid", loss="bce"),
     dict(batch_size=4, optimizer="sgd")),
)
DTYPES = ("float64", "float32")


def _data(sizes, loss, dtype, n=64):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, sizes[0])).astype(dtype)
    k = sizes[-1]
    if loss == "cross_entropy":
        return X, rng.integers(0, k, n)
    if loss == "bce" or k == 1:
        return X, rng.integers(0, 2, (n, k)).astype(dtype)
    return X, rng.standard_normal((n, k)).astype(dtype)


def _step(model_kw, fit_kw, dtype):
    from .model import MLP

    kw = dict(model_kw)
    sizes = kw.pop("sizes")
    model = MLP(sizes, dtype=dtype, seed=0, **kw)
    X, y = _data(sizes, kw["loss"], dtype)
    model.fit(X, y, epochs=1, lr=0.01, shuffle=False, **fit_kw)
    model.predict(X)
    model.evaluate(X, y)
    model.loss_and_grads(X, y)


def warmup(dtypes=DTYPES, log=print):
    """Compile (or load) the kernels of :data:`CONFIGS` in each dtype.

    Returns a list of ``(dtype, label, seconds, compiled)``, ``compiled``
    being the number of functions Numba compiled for that step (0: all of
    them came from the cache).
    """
    from numba.core import event

    from . import _cache

    class Count(event.Listener):
        n = 0

        def on_start(self, ev):
            pass

        def on_end(self, ev):
            Count.n += 1

    import fastbp.kernels  # noqa: F401  (resolves the cache folder first)

    root = _cache.folder()
    log(f"fastbp warmup: kernels are cached in {root}" if root else
        "fastbp warmup: no private cache folder; these kernels will compile again in every "
        "process (set FASTBP_CACHE_DIR to a folder of yours)")
    done = []
    width = max(len(label) for label, _, _ in CONFIGS)
    listener = Count()
    with event.install_listener("numba:compile", listener):
        for dtype in dtypes:
            for label, model_kw, fit_kw in CONFIGS:
                before, t0 = Count.n, time.perf_counter()
                _step(model_kw, fit_kw, dtype)
                row = (dtype, label, time.perf_counter() - t0, Count.n - before)
                done.append(row)
                log(f"  {dtype}  {label:<{width}} {row[2]:6.1f} s  "
                    + (f"({row[3]} compiled)" if row[3] else "(loaded from the cache)"))
    return done


def add_parser(sub):
    p = sub.add_parser(
        "warmup", help="compile the common kernels ahead of time (for images and CI)",
        description="Compile (or load) the kernels of the common networks (per-sample "
                    "and mini-batch; every activation, BatchNorm, Dropout, every loss, SGD "
                    "with momentum and Adam; fit, predict, evaluate, loss_and_grads) into "
                    "fastbp's cache folder, so that later processes start without compiling. "
                    "Reports what each step compiled and how long it took.",
        epilog="Example: fastbp warmup --dtype float32")
    p.add_argument("--dtype", action="append", choices=list(DTYPES),
                   help="warm this dtype; repeat for both (default: float64 and float32)")
    p.add_argument("--quiet", action="store_true",
                   help="print the summary line only (and no compile notice)")
    p.set_defaults(func=run)


def run(args):
    from . import _cache

    if args.quiet:
        _cache.quiet = True
    log = (lambda line: None) if args.quiet else (lambda line: print(line, flush=True))
    t0 = time.perf_counter()
    rows = warmup(tuple(dict.fromkeys(args.dtype or DTYPES)), log=log)
    total = time.perf_counter() - t0
    compiled = sum(r[3] for r in rows)
    print(f"warmed {len(rows)} configurations in {total:.1f} s: {compiled} functions compiled"
          + (", the rest loaded from the cache" if compiled else ", all loaded from the cache")
          + ("" if _cache.folder() else " (not cached: no private cache folder)"), flush=True)
    return 0
