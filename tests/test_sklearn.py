"""fastbp.sklearn against scikit-learn itself, and inside scikit-learn's tools.

The oracle: from identical starting weights and the same batch order, one
epoch of fastbp's estimator and of scikit-learn's gives the same coefs_ and
intercepts_ to 1e-10 in float64. The starting weights are set the same way on
both sides, through public API only: a first ``fit`` (which creates the fitted
attributes, the classes and the network's shapes), then the chosen weights
written in place into ``coefs_`` / ``intercepts_``, then ``warm_start=True``
and a second ``fit``: scikit-learn documents that warm_start reuses the
previous solution as the initialisation, and starts a fresh optimizer in every
``fit`` (so does fastbp). ``shuffle=False`` gives both the same batch order.
"""
import os
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")
import sklearn.neural_network as skn  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

import fastbp.sklearn as fbs  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _data(rng, n=157, d=5):
    X = rng.standard_normal((n, d))
    z = X @ rng.standard_normal(d)
    return X, z


TARGETS = {
    "regression": lambda X, z: ("MLPRegressor", z),
    "regression-2-outputs": lambda X, z: ("MLPRegressor", np.c_[z, np.sin(z)]),
    "binary-strings": lambda X, z: ("MLPClassifier", np.where(z > 0, "yes", "no")),
    "multiclass": lambda X, z: ("MLPClassifier", np.digitize(z, [-1.0, 0.0, 1.0])),
    "multilabel": lambda X, z: ("MLPClassifier", np.c_[z > 0, np.abs(z) > 1].astype(int)),
}


def _one_epoch_from(cls, W, kw, X, y, sample_weight=None):
    est = cls(max_iter=1, shuffle=False, **kw)
    est.fit(X, y)
    for dst, src in zip(est.coefs_ + est.intercepts_, W):
        dst[...] = src
    est.set_params(warm_start=True)
    if sample_weight is None:
        est.fit(X, y)
    else:
        est.fit(X, y, sample_weight=sample_weight)
    return est


@pytest.mark.parametrize("target", list(TARGETS))
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_one_epoch_equals_sklearn(rng, target, solver):
    X, z = _data(rng)
    name, y = TARGETS[target](X, z)
    kw = dict(hidden_layer_sizes=(7, 6), activation="tanh", solver=solver, alpha=0.03,
              batch_size=40, learning_rate_init=0.05 if solver == "sgd" else 0.01,
              momentum=0.9, nesterovs_momentum=True, random_state=0)
    ref = getattr(skn, name)(max_iter=1, **kw).fit(X, y)
    W = [rng.uniform(-0.5, 0.5, a.shape) for a in ref.coefs_ + ref.intercepts_]
    sk = _one_epoch_from(getattr(skn, name), W, kw, X, y)
    fb = _one_epoch_from(getattr(fbs, name), W, kw, X, y)
    assert fb.n_iter_ == sk.n_iter_ == 1
    for a, b in zip(sk.coefs_ + sk.intercepts_, fb.coefs_ + fb.intercepts_):
        assert a.shape == b.shape
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-10)
    assert not np.allclose(fb.coefs_[0], W[0])          # it trained
    if target != "regression-2-outputs":   # scikit-learn reports 2 outputs' L2 term unscaled
        assert fb.loss_ == pytest.approx(sk.loss_, rel=1e-10)


@pytest.mark.parametrize("name", ["MLPClassifier", "MLPRegressor"])
def test_sample_weight_matches_sklearn(rng, name):
    X, z = _data(rng)
    y = z if name == "MLPRegressor" else np.digitize(z, [-1.0, 0.0, 1.0])
    sw = rng.uniform(0.0, 3.0, X.shape[0])
    kw = dict(hidden_layer_sizes=(6,), solver="adam", alpha=0.01, batch_size=32,
              learning_rate_init=0.01, random_state=0)
    ref = getattr(skn, name)(max_iter=1, **kw).fit(X, y)
    W = [rng.uniform(-0.5, 0.5, a.shape) for a in ref.coefs_ + ref.intercepts_]
    sk = _one_epoch_from(getattr(skn, name), W, kw, X, y, sw)
    fb = _one_epoch_from(getattr(fbs, name), W, kw, X, y, sw)
    for a, b in zip(sk.coefs_ + sk.intercepts_, fb.coefs_ + fb.intercepts_):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-10)
    unweighted = _one_epoch_from(getattr(fbs, name), W, kw, X, y)
    assert not np.allclose(unweighted.coefs_[0], fb.coefs_[0])


def test_same_random_state_same_training_as_sklearn(rng):
    """Same initial weights (scikit-learn's Glorot draw) and the same stopping epoch."""
    X, z = _data(rng)
    y = np.digitize(z, [0.0])
    kw = dict(hidden_layer_sizes=(9,), solver="sgd", learning_rate_init=0.1, alpha=1e-3,
              max_iter=300, shuffle=False, random_state=3, tol=1e-3)
    sk = skn.MLPClassifier(**kw).fit(X, y)
    fb = fbs.MLPClassifier(**kw).fit(X, y)
    assert fb.n_iter_ == sk.n_iter_ < 300
    np.testing.assert_allclose(fb.loss_curve_, sk.loss_curve_, rtol=1e-9)
    np.testing.assert_allclose(fb.coefs_[0], sk.coefs_[0], atol=1e-9)


def test_fitted_attributes_and_predictions(rng):
    X, z = _data(rng)
    y = np.array(["a", "b", "c", "d"])[np.digitize(z, [-1.0, 0.0, 1.0])]
    clf = fbs.MLPClassifier(hidden_layer_sizes=(12,), max_iter=200, random_state=0,
                             learning_rate_init=0.02).fit(X, y)
    assert list(clf.classes_) == ["a", "b", "c", "d"]
    assert clf.n_layers_ == 3 and clf.n_outputs_ == 4 and clf.out_activation_ == "softmax"
    assert clf.n_features_in_ == 5 and clf.t_ == clf.n_iter_ * X.shape[0]
    assert len(clf.loss_curve_) == clf.n_iter_ and clf.loss_ == clf.loss_curve_[-1]
    assert [c.shape for c in clf.coefs_] == [(5, 12), (12, 4)]
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(clf.predict_log_proba(X), np.log(proba))
    assert (clf.predict(X) == clf.classes_[proba.argmax(axis=1)]).all()
    assert clf.score(X, y) > 0.8
    binary = fbs.MLPClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0).fit(X, z > 0)
    assert binary.coefs_[-1].shape == (4, 1) and binary.out_activation_ == "logistic"
    assert binary.predict_proba(X).shape == (X.shape[0], 2)


def test_warm_start_partial_fit_and_fresh_fit(rng):
    X, z = _data(rng)
    y = (z > 0).astype(int)
    kw = dict(hidden_layer_sizes=(6,), max_iter=3, random_state=0, shuffle=False)
    a = fbs.MLPClassifier(**kw).fit(X, y)
    first = [c.copy() for c in a.coefs_]
    a.fit(X, y)                                  # warm_start=False: starts again
    np.testing.assert_array_equal(a.coefs_[0], first[0])
    a.set_params(warm_start=True).fit(X, y)      # continues
    assert not np.allclose(a.coefs_[0], first[0])
    p = fbs.MLPClassifier(hidden_layer_sizes=(6,), random_state=0, shuffle=False)
    p.partial_fit(X[:80], y[:80], classes=[0, 1])
    p.partial_fit(X[80:], y[80:])
    assert p.n_iter_ == 1 and p.t_ == X.shape[0]
    with pytest.raises(ValueError, match="classes"):
        fbs.MLPClassifier().partial_fit(X, y)


def test_pickle_joblib_clone_and_get_params(rng, tmp_path):
    from joblib import dump, load
    from sklearn.base import clone
    X, z = _data(rng)
    reg = fbs.MLPRegressor(hidden_layer_sizes=(5,), max_iter=5, random_state=0, dropout=0.1,
                           batchnorm=True, batch_size=16).fit(X, z)
    again = pickle.loads(pickle.dumps(reg))
    np.testing.assert_array_equal(again.predict(X), reg.predict(X))
    dump(reg, tmp_path / "reg.joblib")
    loaded = load(tmp_path / "reg.joblib")
    np.testing.assert_array_equal(loaded.predict(X), reg.predict(X))
    reg.partial_fit(X, z)          # the optimizer state travels too: same continuation
    loaded.partial_fit(X, z)
    np.testing.assert_array_equal(loaded.predict(X), reg.predict(X))
    c = clone(reg)
    assert c.get_params() == reg.get_params() and not hasattr(c, "model_")
    assert reg.get_params()["dropout"] == 0.1


def test_pipeline_grid_search_and_cross_val_score(rng):
    from sklearn.model_selection import GridSearchCV, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    X, z = _data(rng, n=240)
    X = X * 50 + 7
    y = (z > 0).astype(int)
    pipe = make_pipeline(StandardScaler(), fbs.MLPClassifier(
        hidden_layer_sizes=(8,), max_iter=100, random_state=0, learning_rate_init=0.05))
    assert pipe.fit(X, y).score(X, y) > 0.9
    grid = GridSearchCV(pipe, {"mlpclassifier__alpha": [1e-4, 1e-1]}, cv=3, n_jobs=2)
    grid.fit(X, y)
    assert grid.best_score_ > 0.85 and len(grid.cv_results_["params"]) == 2
    scores = cross_val_score(fbs.MLPRegressor(hidden_layer_sizes=(8,), max_iter=80,
                                              random_state=0, learning_rate_init=0.01),
                             StandardScaler().fit_transform(X), z, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.5


def test_class_weight_and_sample_weight_change_training(rng):
    X, z = _data(rng)
    y = (z + 2 * rng.standard_normal(z.shape) > 2.5).astype(int)    # noisy, imbalanced
    kw = dict(hidden_layer_sizes=(6,), max_iter=100, random_state=0, learning_rate_init=0.05)
    plain = fbs.MLPClassifier(**kw).fit(X, y)
    balanced = fbs.MLPClassifier(class_weight="balanced", **kw).fit(X, y)
    assert balanced.predict(X).mean() > plain.predict(X).mean()
    weighted = fbs.MLPClassifier(**kw).fit(X, y, sample_weight=np.where(y == 1, 5.0, 1.0))
    assert weighted.predict(X).mean() > plain.predict(X).mean()
    with pytest.raises(ValueError):
        fbs.MLPClassifier(**kw).fit(X, y, sample_weight=-np.ones(X.shape[0]))


def test_sparse_float32_and_bad_solver(rng):
    import scipy.sparse as sp
    X, z = _data(rng)
    y = (z > 0).astype(int)
    kw = dict(hidden_layer_sizes=(6,), max_iter=5, random_state=0, shuffle=False)
    dense = fbs.MLPClassifier(**kw).fit(X, y)
    sparse = fbs.MLPClassifier(**kw).fit(sp.csr_matrix(X), y)
    np.testing.assert_array_equal(sparse.coefs_[0], dense.coefs_[0])
    f32 = fbs.MLPClassifier(**kw).fit(X.astype(np.float32), y)
    assert f32.coefs_[0].dtype == np.float32 and f32.model_.dtype == np.float32
    with pytest.raises(ValueError, match="solver"):
        fbs.MLPClassifier(solver="lbfgs").fit(X, y)


def test_max_iter_warns_and_early_stopping(rng):
    X, z = _data(rng, n=300)
    y = (z > 0).astype(int)
    with pytest.warns(ConvergenceWarning):
        fbs.MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        es = fbs.MLPClassifier(hidden_layer_sizes=(8,), early_stopping=True, max_iter=500,
                               n_iter_no_change=3, random_state=0, learning_rate_init=0.05)
        es.fit(X, y)
    assert es.n_iter_ < 500 and len(es.validation_scores_) == es.n_iter_
    assert es.best_validation_score_ == max(es.validation_scores_)


def test_import_fastbp_does_not_import_sklearn():
    code = "import sys, fastbp; print('sklearn' in sys.modules, 'fastbp.sklearn' in sys.modules)"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.getcwd()] + sys.path))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True).stdout.split()
    assert out == ["False", "False"]


def test_bench_workload_k_measures_both():
    from fastbp import _sklearn_bench, bench
    assert bench.parse_workloads("sklearn") == ["K"]
    name, Xtr, Xte, ytr, yte, kind, _ = _sklearn_bench.datasets(quick=True)[2]
    assert name == "wine" and Xte.shape[0] == 45
    res = _sklearn_bench.measure(Xtr, Xte, ytr, yte, kind, max_iter=20, rounds=1)
    for impl in ("fastbp", "sklearn"):
        times, score, epochs = res[impl]
        assert len(times) == 1 and times[0] > 0 and 0.5 < score <= 1.0 and epochs == 20
