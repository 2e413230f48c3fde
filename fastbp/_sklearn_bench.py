"""Workload K of ``fastbp bench``: fastbp.sklearn's estimators against scikit-learn's.

The data sets scikit-learn ships (digits, breast cancer, wine, diabetes) and a
``make_classification`` set of 50,000 x 40 (5,000 with --quick), each split
75/25 (random_state 0) and standardised on the training part (diabetes' target
too). Both estimators get the same hyper-parameters (scikit-learn's defaults:
Adam, lr 1e-3, batch min(200, n), tol 1e-4, ``n_iter_no_change`` 10, here with
``hidden_layer_sizes=(100,)``, ``random_state=0`` and a ``max_iter`` per data
set), so they start from the same weights and follow the same update rule;
only the shuffle order differs. Timed: ``fit``, float64, taking turns, once
with one BLAS thread and once with the default thread counts. Reported: the
median fit time of each, the ratio, and both test scores (accuracy, R²).
"""
import time
import warnings

import numpy as np

GROUP = "K"
TITLE = "K. scikit-learn estimators: fit time and test score"
SPEEDUP = 5.0           # fastbp's fit must be this many times faster ...
SCORE_SLACK = 0.01      # ... at a test score no more than this below scikit-learn's


def datasets(quick):
    """[(name, X_train, X_test, y_train, y_test, kind, max_iter)], standardised."""
    from sklearn import datasets as D
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler
    big = 5_000 if quick else 50_000
    raw = [("digits", *D.load_digits(return_X_y=True), "clf", 200),
           ("breast cancer", *D.load_breast_cancer(return_X_y=True), "clf", 200),
           ("wine", *D.load_wine(return_X_y=True), "clf", 200),
           ("diabetes", *D.load_diabetes(return_X_y=True), "reg", 200),
           (f"make_classification {big}x40",
            *D.make_classification(big, 40, n_informative=20, random_state=0), "clf", 30)]
    out = []
    for name, X, y, kind, max_iter in raw:
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0)
        sx = StandardScaler().fit(Xtr)
        Xtr, Xte = sx.transform(Xtr), sx.transform(Xte)
        if kind == "reg":
            mu, sd = ytr.mean(), ytr.std()
            ytr, yte = (ytr - mu) / sd, (yte - mu) / sd
        out.append((name, Xtr, Xte, ytr, yte, kind, max_iter))
    return out


def _estimators(kind, max_iter):
    import sklearn.neural_network as skn

    from . import sklearn as fbs
    cls = "MLPClassifier" if kind == "clf" else "MLPRegressor"
    kw = dict(hidden_layer_sizes=(100,), random_state=0, max_iter=max_iter)
    return getattr(fbs, cls)(**kw), getattr(skn, cls)(**kw)


def _fit_time(est, X, y):
    from sklearn.base import clone
    e = clone(est)
    t0 = time.perf_counter()
    e.fit(X, y)
    return time.perf_counter() - t0, e


def products(X, n_out, epochs, hidden=100, batch=200):
    """Seconds the matrix products of ``epochs`` epochs take alone (NumPy's BLAS, into
    preallocated arrays): per batch ``x@W1``, ``a@W2``, ``a.T@d2``, ``d2@W2.T``,
    ``x.T@d1``. The bound of any library that makes these products."""
    rng = np.random.default_rng(0)
    W1, W2 = rng.standard_normal((X.shape[1], hidden)), rng.standard_normal((hidden, n_out))
    gW1, gW2 = np.empty_like(W1), np.empty_like(W2)
    batches = [np.ascontiguousarray(X[s:s + batch]) for s in range(0, X.shape[0], batch)]
    bufs = [(np.empty((len(x), hidden)), np.empty((len(x), n_out))) for x in batches]
    t0 = time.perf_counter()
    for _ in range(epochs):
        for x, (a, z) in zip(batches, bufs):
            np.dot(x, W1, out=a)
            np.dot(a, W2, out=z)
            np.dot(a.T, z, out=gW2)
            np.dot(z, W2.T, out=a)
            np.dot(x.T, a, out=gW1)
    return time.perf_counter() - t0


def measure(Xtr, Xte, ytr, yte, kind, max_iter, rounds):
    """{impl: (fit seconds of each round, test score, epochs)}, the two taking turns;
    "bound": the matrix products of scikit-learn's epochs alone, in the same turns."""
    from sklearn.exceptions import ConvergenceWarning
    fb, sk = _estimators(kind, max_iter)
    times = {"fastbp": [], "sklearn": []}
    fitted = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        _fit_time(fb.set_params(max_iter=1), Xtr, ytr)       # compile outside the timing
        fb.set_params(max_iter=max_iter)
        bound = []
        for _ in range(rounds):
            for name, est in (("fastbp", fb), ("sklearn", sk)):
                t, fitted[name] = _fit_time(est, Xtr, ytr)
                times[name].append(t)
            bound.append(products(Xtr, fitted["sklearn"].n_outputs_, fitted["sklearn"].n_iter_))
    out = {k: (times[k], float(fitted[k].score(Xte, yte)), fitted[k].n_iter_) for k in times}
    out["bound"] = (bound, None, fitted["sklearn"].n_iter_)
    return out


def workload_K(S, rep):
    """Run workload K into the bench Report ``rep`` (``S``: the bench Settings)."""
    from threadpoolctl import threadpool_limits
    for name, Xtr, Xte, ytr, yte, kind, max_iter in datasets(S.quick):
        n, d = Xtr.shape
        rounds = S.slow_repeat if n < 10_000 else 1      # scikit-learn takes minutes there
        workload = f"K {name} ({n}x{d}, {kind}, fit s)"
        for threads in ("1 BLAS thread", "default threads"):
            limit = threadpool_limits(limits=1) if threads == "1 BLAS thread" else None
            try:
                res = measure(Xtr, Xte, ytr, yte, kind, max_iter, rounds)
            finally:
                if limit is not None:
                    limit.unregister()
            metric = "accuracy" if kind == "clf" else "R2"
            for impl, label in (("fastbp", "fastbp.sklearn"), ("sklearn", "sklearn")):
                t, score, epochs = res[impl]
                rep.time(GROUP, f"{workload} [{threads}]", label if impl == "sklearn" else
                         _fastbp_label(), t, "s", threads,
                         note=f"test {metric} {score:.4f}, {epochs} epochs")
            rep.time(GROUP, f"{workload} [{threads}]", _bound_label(), res["bound"][0], "s",
                     threads, note=f"scikit-learn's {res['bound'][2]} epochs' matrix products "
                                   f"alone: the most any library making them can gain is "
                                   f"{np.median(res['sklearn'][0]) / np.median(res['bound'][0]):.2f}x")
            speed = float(np.median(res["sklearn"][0]) / np.median(res["fastbp"][0]))
            rep.target(GROUP, f"K {name} [{threads}]: fit speed-up vs sklearn", speed, ">=",
                       SPEEDUP, "x")
            rep.target(GROUP, f"K {name} [{threads}]: test {metric} fastbp-sklearn+{SCORE_SLACK}",
                       res["fastbp"][1] - res["sklearn"][1] + SCORE_SLACK, ">=", 0.0)


def _bound_label():
    from ._bench_core import BOUND
    return BOUND


def _fastbp_label():
    from ._bench_core import FASTBP
    return FASTBP
