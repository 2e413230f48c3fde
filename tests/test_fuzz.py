"""Fuzzed parity: random layer stacks, batch sizes, dtypes, losses and optimizers.

For every generated example:

- one epoch of training (1 to 3 steps) on the Numba backend and on the NumPy
  reference gives the same parameters, BatchNorm statistics and optimizer
  state (norm-wise relative error 1e-10 in float64, 1e-4 in float32), and
  ``loss_and_grads`` / ``predict`` agree too;
- the gradients of ``loss_and_grads`` match central finite differences in
  float64, on a random subset of the flat parameters. Training mode is used
  as it is: the dropout mask is a pure function of (seed, layer, step
  counter, element), and ``loss_and_grads`` does not advance the counter, so
  the mask is the same for every perturbed evaluation and the loss is an
  ordinary smooth-or-piecewise-smooth function of the parameters. A
  coordinate whose difference quotients at h and h/4 disagree sits on a kink
  (ReLU) or in strong curvature and is skipped (counted, and bounded);
- nothing is NaN or infinite for finite inputs.

Inputs of extreme magnitude (1e+-30, 1e+-300, subnormals, float32 overflow)
either work, with finite results, or raise a clear error: ValueError from
validation when a value does not fit the model's dtype, FloatingPointError
(TrainingDivergedError in ``fit``) when the arithmetic overflows. Nothing
returns NaN or inf.

Example counts: FASTBP_FUZZ_EXAMPLES=N runs N examples per property (default
below, chosen so the file runs in about a minute). The counts that ran are
printed at the end of the module (``pytest -s``).
"""
import collections
import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import fastbp as fb
from fastbp.layers import ACTIVATION_LAYERS, INITS

from conftest import rel_error

_N = os.environ.get("FASTBP_FUZZ_EXAMPLES")
STATS = collections.Counter()


def examples(default):
    return settings(max_examples=int(_N) if _N else default, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much],
                    print_blob=True)


@pytest.fixture(scope="module", autouse=True)
def generic_online_kernel():
    """Random shapes run the generic per-sample kernel: the shape-specialised one costs a
    compilation (seconds) per new shape. :func:`test_specialised_online_parity` covers it."""
    try:
        from fastbp.kernels import specialize
    except ImportError:
        yield
        return
    old = specialize.ENABLED
    specialize.ENABLED = False
    yield
    specialize.ENABLED = old
    print("\nfuzz examples run: " + ", ".join(f"{k}={v}" for k, v in sorted(STATS.items())))


# --------------------------------------------------------------------------- strategies
@st.composite
def networks(draw, max_depth=5, max_width=64):
    """A recipe: (list of (layer class name, kwargs), loss name, dtype)."""
    loss = draw(st.sampled_from(["mse", "mse_sum_half", "cross_entropy", "bce"]))
    dtype = draw(st.sampled_from(["float64", "float32"]))
    depth = draw(st.integers(1, max_depth))
    widths = [draw(st.integers(1, max_width)) for _ in range(depth + 1)]
    if loss == "cross_entropy":
        widths[-1] = max(2, widths[-1])
    recipe = []
    if draw(st.integers(0, 5)) == 0:
        recipe.append(("BatchNorm", dict(num_features=widths[0])))
    for i in range(depth):
        # "uniform" (weights in [0, 1), the original sigmoid nets) saturates every unit
        # of a wide layer, where both backends compute gradients of rounding noise.
        inits = [None, *INITS] if widths[i] <= 8 else [None, *(x for x in INITS
                                                               if x != "uniform")]
        recipe.append(("Dense", dict(in_features=widths[i], out_features=widths[i + 1],
                                     bias=draw(st.booleans()),
                                     init=draw(st.sampled_from(inits)))))
        if i < depth - 1:
            if draw(st.integers(0, 3)) == 0:
                recipe.append(("BatchNorm", dict(
                    num_features=widths[i + 1],
                    momentum=draw(st.sampled_from([0.0, 0.1, 0.5, 1.0])),
                    eps=draw(st.sampled_from([1e-5, 1e-3, 0.1])))))
            act = draw(st.sampled_from([None, *ACTIVATION_LAYERS]))
            if act:
                recipe.append((act, {}))
            if draw(st.integers(0, 2)) == 0:
                recipe.append(("Dropout", dict(p=draw(st.sampled_from([0.0, 0.1, 0.5, 0.9])))))
        elif loss == "bce":
            recipe.append(("sigmoid", {}))
        elif loss == "cross_entropy":
            if draw(st.booleans()):
                recipe.append(("identity", {}))
        else:
            act = draw(st.sampled_from([None, *ACTIVATION_LAYERS]))
            if act:
                recipe.append((act, {}))
    return recipe, loss, dtype


@st.composite
def problems(draw, max_batch=300):
    """(recipe, loss, dtype, n, batch, optimizer kwargs, seed)."""
    recipe, loss, dtype = draw(networks())
    batch = draw(st.one_of(st.integers(1, 4), st.integers(1, max_batch)))   # small ones often
    n = draw(st.integers(batch, min(max_batch, 3 * batch)))
    if any(name == "BatchNorm" for name, _ in recipe):
        batch = max(batch, 2)
        n = max(n, batch)
        if n % batch == 1:
            n -= 1
    opt = draw(st.sampled_from([
        dict(optimizer="sgd"), dict(optimizer="sgd", momentum=0.9),
        dict(optimizer="sgd", momentum=0.5, nesterov=True, weight_decay=1e-3),
        dict(optimizer="adam"), dict(optimizer="adam", weight_decay=1e-2)]))
    opt["lr"] = draw(st.sampled_from([1e-3, 1e-2, 0.1]))
    if loss == "mse_sum_half":          # a summed loss has gradients ~batch times larger
        opt["lr"] /= batch
    return recipe, loss, dtype, n, batch, opt, draw(st.integers(0, 2**31 - 1))


def _layer(name, kwargs):
    cls = ACTIVATION_LAYERS.get(name) or getattr(fb, name)
    return cls(**kwargs)


def _model(recipe, loss, dtype, backend, seed):
    lossobj = {"mse": fb.MSE(), "mse_sum_half": fb.MSE(reduction="sum", half=True),
               "cross_entropy": fb.SoftmaxCrossEntropy(), "bce": fb.BinaryCrossEntropy()}[loss]
    return fb.Sequential([_layer(n, k) for n, k in recipe], loss=lossobj, backend=backend,
                         dtype=dtype, seed=seed % 1000)


def _data(model, loss, n, seed, scale=1.0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, model.n_inputs)) * scale
    k = model.n_outputs
    if loss == "cross_entropy":
        y = rng.integers(0, k, n)
    elif loss == "bce":
        y = rng.integers(0, 2, (n, k)).astype(float)
    else:
        y = rng.random((n, k))
    return X, y


def _tol(dtype):
    return 1e-10 if dtype == "float64" else 1e-4


# --------------------------------------------------------------------------- parity
def _flat(grads):
    return np.concatenate([g.ravel() for g in grads] or [np.zeros(0)])


def _grads_agree(la, lb, ga, gb, dtype):
    """Losses and gradients from the two backends agree: norm-wise within 10 tol, with a
    floor for gradients that are themselves rounding noise (a saturated tanh's 1 - y**2
    when y rounds to +-1 carries an error of eps times the loss's scale)."""
    tol = _tol(dtype)
    assert math.isfinite(la) and abs(la - lb) <= tol * max(1.0, abs(lb)), (la, lb)
    floor = 1e3 * np.finfo(dtype).eps * max(1.0, abs(lb))
    allowed = 10 * tol * np.abs(gb).max(initial=0.0) + floor
    bad = np.abs(ga.astype(float) - gb) > allowed
    assert not bad.any(), (f"gradients differ at {np.flatnonzero(bad)[:5]}: {ga[bad][:3]} vs "
                           f"{gb[bad][:3]} (allowed {allowed:.3g})")


def _update_allowance(opt, ga, gb, dtype, params):
    """How far one update may move a parameter apart on the two backends, given that
    their gradients differ by |ga - gb|.

    SGD moves by lr * g (plus momentum): the difference is about lr * |ga - gb|.
    Adam moves by about lr * g / (|g| + eps), which turns a gradient that is rounding
    noise into a step of up to lr in a direction that is noise. Such gradients are
    common: a parameter whose exact gradient is zero (a bias whose shift a later
    BatchNorm removes; a beta when the batch is symmetric) gets whatever the rounding
    of its code path gives, which differs between backends and even between
    ``loss_and_grads`` and the training kernel. A component is noise where it is tiny
    against the largest, or where the backends' values are not close. Adam sees the
    gradient plus weight decay times the weight (``params``, before the step), which
    can cancel to noise as well."""
    dg = np.abs(ga.astype(float) - gb)
    lr = opt["lr"]
    if opt["optimizer"] != "adam":
        return 4.0 * lr * dg
    wd = opt.get("weight_decay", 0.0) * params.astype(float)
    ea, eb = np.abs(ga + wd), np.abs(gb + wd)            # what Adam's moments take in
    g = np.minimum(ea, eb)
    top = max(ea.max(initial=0.0), eb.max(initial=0.0))
    noise = np.maximum(ea, eb) <= math.sqrt(np.finfo(dtype).eps) * top
    STATS["parity_adam_noise_params"] += int((noise & (ga != gb)).sum())
    return lr * np.where(noise, 2.0, np.minimum(2.0, 100.0 * dg / (g + 1e-8)))


def _sync(dst, src):
    dst.params[...] = src.params
    dst.state[...] = src.state
    dst._opt_a[...] = src._opt_a
    dst._opt_b[...] = src._opt_b


@examples(150)
@given(problems())
def test_training_step_parity(problem):
    """Each step of an epoch, from the same state on both backends, gives the same state."""
    recipe, loss, dtype, n, batch, opt, seed = problem
    a = _model(recipe, loss, dtype, "numba", seed)
    b = _model(recipe, loss, dtype, "numpy", seed)
    assert np.array_equal(a.params, b.params)
    X, y = _data(a, loss, n, seed)
    try:
        _steps_agree(a, b, X, y, n, batch, opt, dtype, seed)
    except FloatingPointError as exc:    # diverged (the weights overflow): a clear error
        assert "overflow" in str(exc) or "loss became" in str(exc), str(exc)
        STATS["parity_diverged"] += 1
        event("diverged")
    STATS["parity"] += 1
    event(f"dtype={dtype} loss={loss} batch={'1' if batch == 1 else '>1'}")


def _steps_agree(a, b, X, y, n, batch, opt, dtype, seed):
    tol = _tol(dtype)
    la, ga = a.loss_and_grads(X, y)
    lb, gb = b.loss_and_grads(X, y)
    _grads_agree(la, lb, _flat(ga), _flat(gb), dtype)
    order = np.random.default_rng(seed).permutation(n)
    for start in range(0, n, batch):               # the epoch's batches, one step at a time
        idx = order[start:start + batch]
        Xb, yb = X[idx], y[idx]
        la, ga = a.loss_and_grads(Xb, yb)          # with the dropout mask this step uses
        lb, gb = b.loss_and_grads(Xb, yb)
        ga, gb = _flat(ga), _flat(gb)
        _grads_agree(la, lb, ga, gb, dtype)
        before = b.params.copy()
        ha = a.fit(Xb, yb, epochs=1, batch_size=len(idx), shuffle=False, **opt)
        hb = b.fit(Xb, yb, epochs=1, batch_size=len(idx), shuffle=False, **opt)
        assert np.array_equal(a._counters, b._counters)
        assert abs(ha.loss[0] - hb.loss[0]) <= tol * max(1.0, abs(hb.loss[0]))
        for name, u, v in (("params", a.params, b.params), ("state", a.state, b.state),
                           ("opt_a", a._opt_a, b._opt_a), ("opt_b", a._opt_b, b._opt_b)):
            assert np.isfinite(u).all() and np.isfinite(v).all(), name
        move = _update_allowance(opt, ga, gb, dtype, before)
        dg = np.abs(ga.astype(float) - gb)
        gsum = np.abs(ga).astype(float) + np.abs(gb)
        checks = [("params", a.params, b.params, move)]
        if a._opt_a.size:
            checks.append(("opt_a", a._opt_a, b._opt_a, 2 * dg))
        if a._opt_b.size:
            checks.append(("opt_b", a._opt_b, b._opt_b, 2 * gsum * dg))
        for name, u, v, extra in checks:
            top = max(np.abs(u).max(initial=0.0), np.abs(v).max(initial=0.0))
            allowed = tol * top + extra
            bad = np.abs(u.astype(float) - v) > allowed
            assert not bad.any(), (f"{name} differ at {np.flatnonzero(bad)[:5]}: "
                                   f"{u[bad][:3]} vs {v[bad][:3]}")
        assert rel_error(a.state, b.state) <= tol, rel_error(a.state, b.state)
        # The forward pass, in both modes, from the same weights (after the update the
        # weights may differ by Adam's noise steps, which the outputs would show).
        _sync(a, b)
        for pa, pb in ((a.predict(X), b.predict(X)),
                       (a.forward(X, training=True), b.forward(X, training=True))):
            assert np.isfinite(pa).all() and np.isfinite(pb).all()
            assert rel_error(pa, pb) <= 10 * tol + 1e3 * np.finfo(dtype).eps
        STATS["parity_steps"] += 1


# --------------------------------------------------------------------------- gradients
def _fd_check(model, X, y, rng, n_coords=10):
    """(checked, skipped) after comparing loss_and_grads with central differences.

    Skipped: coordinates at a kink. A kink inside [-h, h] makes the central
    differences at h and h/4 disagree; a kink exactly at the point (a ReLU input
    that is exactly 0, e.g. a dropped unit times a zero bias) makes the one-sided
    slopes differ by a jump that does not shrink with h, where a smooth function's
    differ by about h * f''.
    """
    loss, grads = model.loss_and_grads(X, y)
    g = np.concatenate([x.ravel() for x in grads])
    assert g.shape == model.params.shape         # get_weights order is the flat buffer's
    idx = rng.choice(model.n_params, size=min(n_coords, model.n_params), replace=False)
    f = lambda: model.loss_and_grads(X, y)[0]
    # Rounding noise of one loss evaluation: a sum of n * k terms of size ~|loss|.
    noise = 4 * np.finfo(np.float64).eps * max(1.0, abs(loss)) * math.sqrt(y.size)
    checked = skipped = 0
    for j in idx:
        old = model.params[j]
        central, jump = [], []
        for h in (1e-5 * max(1.0, abs(old)), 2.5e-6 * max(1.0, abs(old))):
            model.params[j] = old + h
            fp = f()
            model.params[j] = old - h
            fm = f()
            model.params[j] = old
            central.append((fp - fm) / (2 * h))
            jump.append((fp - loss) / h - (loss - fm) / h)
        # relative part: truncation (h**2 * third derivative / 6) and margin; absolute
        # part: the loss's rounding noise divided by the smaller step
        tol = 1e-5 * max(abs(g[j]), abs(central[0])) + noise / (2.5e-6 * max(1.0, abs(old)))
        kink_inside = abs(central[0] - central[1]) > tol
        kink_here = abs(jump[1]) > 2 * tol and abs(jump[1]) > 0.5 * abs(jump[0])
        if kink_inside or kink_here:
            skipped += 1
            continue
        assert abs(g[j] - central[0]) <= tol, (
            f"param {j}: analytic {g[j]!r}, finite difference {central[0]!r} (h) / "
            f"{central[1]!r} (h/4)")
        checked += 1
    return checked, skipped


@examples(100)
@given(problems(), st.integers(0, 3))
def test_gradients_match_finite_differences(problem, steps):
    recipe, loss, dtype, n, batch, opt, seed = problem
    model = _model(recipe, loss, "float64", "numba", seed)
    X, y = _data(model, loss, n, seed)
    if steps:                                   # move the counters and the weights on
        model.fit(X, y, epochs=1, batch_size=batch, shuffle=True, **opt)
    checked, skipped = _fd_check(model, X, y, np.random.default_rng(seed))
    assert skipped <= max(2, (checked + skipped) // 2), (checked, skipped)
    STATS["fd_examples"] += 1
    STATS["fd_coords_checked"] += checked
    STATS["fd_coords_skipped"] += skipped
    # eval mode too: running statistics, no dropout
    model.eval()
    l_eval, g_eval = model.loss_and_grads(X, y, training=False)
    assert math.isfinite(l_eval) and all(np.isfinite(x).all() for x in g_eval)


def test_finite_difference_check_catches_a_wrong_gradient():
    """Control: the check above fails when one gradient entry is off by 0.1%."""
    model = fb.Sequential([fb.Dense(3, 4), fb.Tanh(), fb.Dense(4, 2)], seed=1)
    X, y = _data(model, "mse", 10, 1)
    real = model.loss_and_grads

    def skewed(X, y, training=True):
        loss, grads = real(X, y, training)
        grads[0][1, 2] *= 1.001
        return loss, grads
    model.loss_and_grads = skewed
    with pytest.raises(AssertionError, match="finite difference"):
        _fd_check(model, X, y, np.random.default_rng(0), n_coords=model.n_params)


# --------------------------------------------------------------------------- magnitudes
SCALES = {
    "float64": [1e-300, 5e-324, 1e-30, 1e30, 1e150, 1e300, 1e307],
    "float32": [1e-44, 1e-30, 1e-20, 1e15, 1e30, 1e38, 1e150],
}


def _kind(value):
    """'finite' for a value with no NaN/inf, else 'NONFINITE'."""
    arrays = value if isinstance(value, (list, tuple)) else [value]
    return "finite" if all(np.isfinite(np.asarray(a, dtype=float)).all() for a in arrays) \
        else "NONFINITE"


def _outcome(call):
    """'finite', or the error class for a clear error; anything else fails the test."""
    try:
        return _kind(call())
    except ValueError as exc:
        msg = str(exc)
        assert "X" in msg and ("range of float32" in msg or "NaN or infinite" in msg), msg
        return "ValueError"
    except FloatingPointError as exc:
        msg = str(exc)
        assert "overflow" in msg or "loss became" in msg, msg
        assert "scale the inputs" in msg or "smaller lr" in msg, msg
        return type(exc).__name__


@examples(100)
@given(networks(max_depth=3, max_width=16), st.data())
def test_extreme_magnitudes_work_or_raise_clearly(net, data):
    recipe, loss, dtype = net
    scale = data.draw(st.sampled_from(SCALES[dtype]), label="scale")
    backend = data.draw(st.sampled_from(["numba", "numpy"]), label="backend")
    seed = data.draw(st.integers(0, 1000), label="seed")
    model = _model(recipe, loss, dtype, backend, seed)
    n = 8
    X, y = _data(model, loss, n, seed, scale=scale)
    X = X.astype(np.float64)                     # the user's data, before conversion
    fits = scale <= float(np.finfo(dtype).max)

    outcomes = {
        "predict": _outcome(lambda: model.predict(X)),
        "loss_and_grads": _outcome(lambda: (lambda r: [r[0], *r[1]])(model.loss_and_grads(X, y))),
        "evaluate": _outcome(lambda: model.evaluate(X, y)["loss"]),
    }
    before = model.params.copy()
    lr = 1e-3 / (y.size if loss == "mse_sum_half" else 1)    # no divergence from lr alone
    outcomes["fit"] = _outcome(lambda: model.fit(X, y, epochs=2, batch_size=4, lr=lr).loss)
    for what, result in outcomes.items():
        assert result != "NONFINITE", (what, scale, outcomes)
        if not fits:
            assert result == "ValueError", (what, scale, outcomes)     # refused at the edge
        elif scale <= 1.0:
            assert result == "finite", (what, scale, outcomes)          # tiny inputs just work
    assert np.isfinite(model.params).all()
    if outcomes["fit"] == "ValueError":
        assert np.array_equal(model.params, before)
    STATS["magnitudes"] += 1
    event(f"scale={scale:g}: " + ",".join(sorted(set(outcomes.values()))))


# --------------------------------------------------------------------------- specialised
@examples(6)
@given(st.sampled_from([0, 1]), st.integers(1, 40), st.integers(0, 2**31 - 1))
def test_specialised_online_parity(which, n, seed):
    """Per-sample training through whatever ``select_online`` picks for a fixed network."""
    try:
        from fastbp.kernels import specialize
    except ImportError:
        pytest.skip("no shape-specialised kernels")
    recipe, loss, opt = [
        ([("Dense", dict(in_features=3, out_features=5)), ("tanh", {}),
          ("Dropout", dict(p=0.2)), ("Dense", dict(in_features=5, out_features=2))],
         "mse", dict(optimizer="sgd", momentum=0.9, lr=0.05)),
        ([("Dense", dict(in_features=4, out_features=6)), ("relu", {}),
          ("Dense", dict(in_features=6, out_features=3)), ("identity", {})],
         "cross_entropy", dict(optimizer="adam", lr=0.01)),
    ][which]
    old = specialize.ENABLED
    specialize.ENABLED = True
    try:
        a = _model(recipe, loss, "float64", "numba", seed)
        b = _model(recipe, loss, "float64", "numpy", seed)
        X, y = _data(a, loss, n, seed)
        a.fit(X, y, epochs=2, batch_size=1, **opt)
        b.fit(X, y, epochs=2, batch_size=1, **opt)
    finally:
        specialize.ENABLED = old
    assert rel_error(a.params, b.params) <= 1e-10
    STATS["specialised"] += 1
