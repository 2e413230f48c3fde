"""Numba kernels against the NumPy reference, op by op, in float64 and float32.

Shapes sweep batch 1, width 1, odd sizes and sizes large enough for dense's
BLAS branch; inputs sweep magnitudes from 1e-30 to 1e30. Agreement: 1e-12
relative in float64, 1e-5 in float32, relative to the magnitude of the terms
where a result can cancel to near zero (see ``conftest.assert_close``).
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastbp.kernels as K
import fastbp.reference as R
from conftest import DTYPES, SCALES, SIZES, SQUARE_SCALES, assert_close, rtol_for
from fastbp._config import IDENTITY, RELU, SIGMOID, SMALL_GEMM, TANH

ACTS = {"identity": IDENTITY, "sigmoid": SIGMOID, "relu": RELU, "tanh": TANH}
SWEEP = settings(max_examples=25, deadline=None)
sizes = st.sampled_from(SIZES)
seeds = st.integers(0, 2**32 - 1)
scale_index = st.integers(0, 2)
dtypes = pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])


def both(fn_name, make_args):
    """Run ``fn_name`` of both backends on fresh copies of ``make_args()``.

    Returns ((kernel_return, kernel_args), (reference_return, reference_args)),
    the args after the call, so in-place outputs can be compared.
    """
    out = []
    for mod in (K, R):
        args = make_args()
        ret = getattr(mod, fn_name)(*args)
        out.append((ret, args))
    return out


def normal(g, shape, dtype, scale=1.0):
    return (g.standard_normal(shape) * scale).astype(dtype)


# --------------------------------------------------------------------------- dense
def check_dense(n, i, o, dtype, scale, g, bias=True):
    x = normal(g, (n, i), dtype, scale)  # (n, i)
    W = normal(g, (i, o), dtype)  # (i, o)
    b = normal(g, (o,), dtype, scale) if bias else np.zeros(0, dtype)  # (o,) or (0,)
    dout = normal(g, (n, o), dtype)  # (n, o); x carries the scale (x.T @ dout must not overflow)
    rtol = rtol_for(dtype)
    x64, W64, d64 = (a.astype(np.float64) for a in (x, W, dout))

    (_, ka), (_, ra) = both("dense_forward", lambda: (x, W, b, np.full((n, o), np.nan, dtype)))
    assert ka[3].dtype == dtype
    scale_out = np.abs(x64) @ np.abs(W64) + (np.abs(b.astype(np.float64)) if bias else 0)
    assert_close(ka[3], ra[3], rtol, scale_out, "dense_forward out")

    db_shape = (o,) if bias else (0,)
    (_, ka), (_, ra) = both("dense_backward", lambda: (
        dout, x, W, np.full((n, i), np.nan, dtype), np.full((i, o), np.nan, dtype),
        np.full(db_shape, np.nan, dtype)))
    assert_close(ka[3], ra[3], rtol, np.abs(d64) @ np.abs(W64.T), "dense_backward dx")
    assert_close(ka[4], ra[4], rtol, np.abs(x64.T) @ np.abs(d64), "dense_backward dW")
    if bias:
        assert_close(ka[5], ra[5], rtol, np.abs(d64).sum(0), "dense_backward db")


@dtypes
@SWEEP
@given(n=sizes, i=sizes, o=sizes, k=scale_index, seed=seeds, bias=st.booleans())
def test_dense_sweep(dtype, n, i, o, k, seed, bias):
    g = np.random.default_rng(seed)
    check_dense(n, i, o, dtype, SCALES[np.dtype(dtype)][k], g, bias)


@dtypes
@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 7, 33), (1, SMALL_GEMM - 1, 1),
                                   (1, SMALL_GEMM, 1), (16, 16, 16), (33, 130, 7),
                                   (130, 130, 130), (2, 1, 3000)])
def test_dense_both_branches(dtype, shape, rng):
    """Shapes on both sides of SMALL_GEMM: loops below it, BLAS at and above."""
    check_dense(*shape, dtype, 1.0, rng)


@dtypes
def test_dense_backward_optional_outputs(dtype, rng):
    """dx of shape (0, i) and db of shape (0,) are skipped; dW is unchanged."""
    for n, i, o in [(5, 4, 3), (40, 50, 60)]:
        x, W, dout = normal(rng, (n, i), dtype), normal(rng, (i, o), dtype), normal(rng, (n, o), dtype)
        for mod in (K, R):
            dx, dW, db = np.empty((n, i), dtype), np.empty((i, o), dtype), np.empty(o, dtype)
            mod.dense_backward(dout, x, W, dx, dW, db)
            dW2 = np.empty((i, o), dtype)
            mod.dense_backward(dout, x, W, np.empty((0, i), dtype), dW2, np.empty(0, dtype))
            np.testing.assert_array_equal(dW2, dW)


# --------------------------------------------------------------------------- activations
def act_scale(name, x, dout, y):
    """Magnitude of the terms of each activation's forward/backward output."""
    x, dout, y = (np.abs(a.astype(np.float64)) for a in (x, dout, y))
    fwd = {"identity": x, "relu": x, "sigmoid": 0 * x, "tanh": 0 * x}[name]
    bwd = {"identity": dout, "relu": dout, "sigmoid": dout * y * (1 + y),
           "tanh": dout * (1 + y * y)}[name]
    return fwd, bwd


@dtypes
@SWEEP
@given(n=sizes, d=sizes, k=scale_index, seed=seeds)
def test_activations_sweep(dtype, n, d, k, seed):
    g = np.random.default_rng(seed)
    scale = SCALES[np.dtype(dtype)][k]
    x = normal(g, (n, d), dtype, scale)  # (n, d)
    dout = normal(g, (n, d), dtype, scale)  # (n, d)
    rtol = rtol_for(dtype)
    for name, code in ACTS.items():
        y = np.empty_like(x)
        R.act_forward(x, code, y)
        s_fwd, s_bwd = act_scale(name, x, dout, y)
        for fwd, bwd in [(f"{name}_forward", f"{name}_backward"), ("act_forward", "act_backward")]:
            if fwd == "act_forward":
                mk_f = lambda: (x, code, np.full_like(x, np.nan))  # noqa: E731
                mk_b = lambda: (dout, y, code, np.full_like(x, np.nan))  # noqa: E731
            else:
                mk_f = lambda: (x, np.full_like(x, np.nan))  # noqa: E731
                mk_b = lambda: (dout, y, np.full_like(x, np.nan))  # noqa: E731
            (_, ka), (_, ra) = both(fwd, mk_f)
            assert_close(ka[-1], ra[-1], rtol, s_fwd, f"{fwd} {name}")
            (_, ka), (_, ra) = both(bwd, mk_b)
            assert_close(ka[-1], ra[-1], rtol, s_bwd, f"{bwd} {name}")


@dtypes
@SWEEP
@given(n=sizes, d=sizes, k=scale_index, seed=seeds, bias=st.booleans())
def test_bias_act_sweep(dtype, n, d, k, seed, bias):
    g = np.random.default_rng(seed)
    scale = SCALES[np.dtype(dtype)][k]
    z = normal(g, (n, d), dtype, scale)
    b = normal(g, (d,), dtype, scale) if bias else np.zeros(0, dtype)
    for name, code in ACTS.items():
        (_, ka), (_, ra) = both("bias_act_forward", lambda: (z, b, code, np.full_like(z, np.nan)))
        s = (np.abs(z.astype(np.float64)) + (np.abs(b.astype(np.float64)) if bias else 0)
             if name in ("identity", "relu") else 0.0)
        assert_close(ka[3], ra[3], rtol_for(dtype), s, f"bias_act_forward {name}")


@pytest.mark.parametrize("mod", [K, R], ids=["numba", "numpy"])
@dtypes
def test_bias_act_equals_add_then_act(mod, dtype, rng):
    """The fused pass equals the unfused one of the same backend, bit for bit."""
    z = normal(rng, (7, 5), dtype, 3.0)
    b = normal(rng, (5,), dtype)
    for code in ACTS.values():
        fused = np.empty_like(z)
        mod.bias_act_forward(z, b, code, fused)
        unfused = np.empty_like(z)
        mod.act_forward(z + b, code, unfused)
        np.testing.assert_array_equal(fused, unfused)
        mod.bias_act_forward(z, np.zeros(0, dtype), code, fused)
        mod.act_forward(z, code, unfused)
        np.testing.assert_array_equal(fused, unfused)


@pytest.mark.parametrize("mod", [K, R], ids=["numba", "numpy"])
@dtypes
def test_elementwise_aliasing(mod, dtype, rng):
    """out may be x (forwards, bias_act, dropout); dx may be dout (backwards)."""
    x = normal(rng, (6, 9), dtype, 2.0)
    dout = normal(rng, (6, 9), dtype)
    b = normal(rng, (9,), dtype)
    mask = np.where(rng.random((6, 9)) < 0.5, dtype(2.0), dtype(0.0))
    for name, code in ACTS.items():
        y = np.empty_like(x)
        getattr(mod, f"{name}_forward")(x, y)
        a = x.copy()
        getattr(mod, f"{name}_forward")(a, a)
        np.testing.assert_array_equal(a, y, err_msg=name)
        a = x.copy()
        mod.act_forward(a, code, a)
        np.testing.assert_array_equal(a, y, err_msg=name)
        dx = np.empty_like(x)
        getattr(mod, f"{name}_backward")(dout, y, dx)
        a = dout.copy()
        getattr(mod, f"{name}_backward")(a, y, a)
        np.testing.assert_array_equal(a, dx, err_msg=name)
        a = dout.copy()
        mod.act_backward(a, y, code, a)
        np.testing.assert_array_equal(a, dx, err_msg=name)
        ref = np.empty_like(x)
        mod.bias_act_forward(x, b, code, ref)
        a = x.copy()
        mod.bias_act_forward(a, b, code, a)
        np.testing.assert_array_equal(a, ref, err_msg=name)
    ref = np.empty_like(x)
    mod.dropout_forward(x, mask, ref)
    a = x.copy()
    mod.dropout_forward(a, mask, a)
    np.testing.assert_array_equal(a, ref)
    mod.dropout_backward(dout, mask, ref)
    a = dout.copy()
    mod.dropout_backward(a, mask, a)
    np.testing.assert_array_equal(a, ref)


# --------------------------------------------------------------------------- batchnorm
@dtypes
@SWEEP
@given(n=sizes.filter(lambda v: v >= 2), d=sizes, k=scale_index, seed=seeds,
       momentum=st.sampled_from([0.1, 0.3, 1.0]))
def test_batchnorm_sweep(dtype, n, d, k, seed, momentum):
    g = np.random.default_rng(seed)
    scale = SQUARE_SCALES[np.dtype(dtype)][k]
    rtol = rtol_for(dtype)
    eps = 1e-5
    x = (normal(g, (n, d), dtype, scale) + (g.standard_normal(d) * scale).astype(dtype))
    gamma, beta = normal(g, (d,), dtype), normal(g, (d,), dtype)
    rmean, rvar = normal(g, (d,), dtype, scale), (g.random(d) * scale**2 + 0.5).astype(dtype)
    (_, ka), (_, ra) = both("batchnorm_forward_train", lambda: (
        x, gamma, beta, rmean.copy(), rvar.copy(), momentum, eps,
        np.full((n, d), np.nan, dtype), np.full(d, np.nan, dtype), np.full((n, d), np.nan, dtype)))
    x64 = x.astype(np.float64)
    mean = x64.mean(0)
    inv = ra[8].astype(np.float64)
    s_xhat = (np.abs(x64) + np.abs(mean)) * inv
    assert_close(ka[8], ra[8], rtol, 0.0, "inv_std")
    assert_close(ka[7], ra[7], rtol, s_xhat, "xhat")
    assert_close(ka[9], ra[9], rtol, np.abs(gamma) * s_xhat + np.abs(beta), "out")
    assert_close(ka[3], ra[3], rtol, np.abs(rmean) + np.abs(x64).mean(0), "running_mean")
    assert_close(ka[4], ra[4], rtol, 0.0, "running_var")
    xhat, inv_std = ra[7], ra[8]  # saved for the backward check below

    (_, ka), (_, ra) = both("batchnorm_forward_eval", lambda: (
        x, gamma, beta, rmean, rvar, eps, np.full((n, d), np.nan, dtype)))
    s = np.abs(gamma) * (np.abs(x64) + np.abs(rmean)) / np.sqrt(rvar + eps) + np.abs(beta)
    assert_close(ka[6], ra[6], rtol, s, "eval out")

    dout = normal(g, (n, d), dtype, scale)
    for dx_rows in (n, 0):
        (_, ka), (_, ra) = both("batchnorm_backward", lambda: (
            dout, xhat, inv_std, gamma, np.full((dx_rows, d), np.nan, dtype),
            np.full(d, np.nan, dtype), np.full(d, np.nan, dtype)))
        d64, xh64 = np.abs(dout.astype(np.float64)), np.abs(xhat.astype(np.float64))
        s_db, s_dg = d64.sum(0), (d64 * xh64).sum(0)
        assert_close(ka[6], ra[6], rtol, s_db, "dbeta")
        assert_close(ka[5], ra[5], rtol, s_dg, "dgamma")
        if dx_rows:
            kk = np.abs(gamma.astype(np.float64) * inv_std) / n
            assert_close(ka[4], ra[4], rtol, kk * (n * d64 + s_db + xh64 * s_dg), "dx")


# --------------------------------------------------------------------------- dropout
@dtypes
@SWEEP
@given(n=sizes, d=sizes, seed=seeds, key=st.integers(0, 2**63 - 1),
       counter=st.integers(0, 2**40), p=st.sampled_from([0.0, 0.1, 0.5, 0.9]))
def test_dropout_sweep(dtype, n, d, seed, key, counter, p):
    g = np.random.default_rng(seed)
    (_, ka), (_, ra) = both("dropout_mask", lambda: (key, counter, p, np.full((n, d), np.nan, dtype)))
    np.testing.assert_array_equal(ka[3], ra[3])
    mask = ra[3]
    x = normal(g, (n, d), dtype, 1e30)
    (_, ka), (_, ra) = both("dropout_forward", lambda: (x, mask, np.full_like(x, np.nan)))
    np.testing.assert_array_equal(ka[2], ra[2])
    (_, ka), (_, ra) = both("dropout_backward", lambda: (x, mask, np.full_like(x, np.nan)))
    np.testing.assert_array_equal(ka[2], ra[2])


# --------------------------------------------------------------------------- losses
@dtypes
@SWEEP
@given(n=sizes, k=sizes, si=scale_index, seed=seeds, sum_reduction=st.booleans(),
       half=st.booleans())
def test_mse_sweep(dtype, n, k, si, seed, sum_reduction, half):
    g = np.random.default_rng(seed)
    scale = SQUARE_SCALES[np.dtype(dtype)][si]
    pred, target = normal(g, (n, k), dtype, scale), normal(g, (n, k), dtype, scale)
    (lk, ka), (lr, ra) = both("mse_loss", lambda: (pred, target, sum_reduction, half,
                                                   np.full_like(pred, np.nan)))
    rtol = rtol_for(dtype)
    assert isinstance(lk, float) and isinstance(lr, float)
    assert_close(lk, lr, rtol, 0.0, "mse loss")
    assert_close(ka[4], ra[4], rtol, 0.0, "mse dpred")


@dtypes
@SWEEP
@given(n=sizes, k=sizes.filter(lambda v: v >= 2), si=scale_index, seed=seeds)
def test_softmax_cross_entropy_sweep(dtype, n, k, si, seed):
    g = np.random.default_rng(seed)
    scale = SCALES[np.dtype(dtype)][si]
    logits = normal(g, (n, k), dtype, scale)
    labels = g.integers(0, k, n).astype(np.int64)
    (lk, ka), (lr, ra) = both("softmax_cross_entropy", lambda: (
        logits, labels, np.full_like(logits, np.nan), np.full_like(logits, np.nan)))
    rtol = rtol_for(dtype)
    l64 = np.abs(logits.astype(np.float64))
    assert_close(lk, lr, rtol, np.mean(l64.max(1) + l64[np.arange(n), labels]) + np.log(k), "ce loss")
    assert_close(ka[2], ra[2], rtol, 0.0, "probs")
    assert_close(ka[3], ra[3], rtol, 1.0 / n, "dlogits")


@dtypes
@SWEEP
@given(n=sizes, k=sizes, si=scale_index, seed=seeds)
def test_bce_with_logits_sweep(dtype, n, k, si, seed):
    g = np.random.default_rng(seed)
    scale = SCALES[np.dtype(dtype)][si]
    z = normal(g, (n, k), dtype, scale)
    t = g.random((n, k)).astype(dtype)
    t[g.random((n, k)) < 0.3] = 1.0
    (lk, ka), (lr, ra) = both("bce_with_logits", lambda: (z, t, np.full_like(z, np.nan)))
    rtol = rtol_for(dtype)
    assert_close(lk, lr, rtol, np.mean(np.abs(z.astype(np.float64))) + np.log(2), "bce loss")
    assert_close(ka[2], ra[2], rtol, (1.0 + t) / z.size, "bce dz")


# --------------------------------------------------------------------------- optim
@dtypes
@SWEEP
@given(P=sizes, si=scale_index, seed=seeds, momentum=st.sampled_from([0.0, 0.9]),
       nesterov=st.booleans(), wd=st.sampled_from([0.0, 1e-2]))
def test_sgd_sweep(dtype, P, si, seed, momentum, nesterov, wd):
    g = np.random.default_rng(seed)
    scale = SCALES[np.dtype(dtype)][si]
    params = normal(g, (P,), dtype, scale)
    grads = [normal(g, (P,), dtype, scale) for _ in range(4)]
    vel_shape = (P,) if momentum else (0,)
    state = [[params.copy(), np.zeros(vel_shape, dtype)] for _ in range(2)]
    for step in range(4):
        for mod, (p, v) in zip((K, R), state):
            gr = grads[step].copy()
            mod.sgd_update(p, gr, v, 0.1, momentum, wd, nesterov)
            np.testing.assert_array_equal(gr, grads[step])  # grads untouched
        rtol = rtol_for(dtype)
        s = np.abs(state[1][0]) + 0.1 * np.abs(state[1][1]).max(initial=0) + scale
        assert_close(state[0][0], state[1][0], rtol, s, "sgd params")
        assert_close(state[0][1], state[1][1], rtol, np.abs(state[1][1]).max(initial=0), "velocity")


@dtypes
@SWEEP
@given(P=sizes, si=scale_index, seed=seeds, wd=st.sampled_from([0.0, 1e-2]))
def test_adam_sweep(dtype, P, si, seed, wd):
    g = np.random.default_rng(seed)
    scale = SQUARE_SCALES[np.dtype(dtype)][si]
    params = normal(g, (P,), dtype, scale)
    grads = [normal(g, (P,), dtype, scale) for _ in range(4)]
    state = [[params.copy(), np.zeros(P, dtype), np.zeros(P, dtype)] for _ in range(2)]
    rtol = rtol_for(dtype)
    for step in range(1, 5):
        for mod, (p, m, v) in zip((K, R), state):
            gr = grads[step - 1].copy()
            mod.adam_update(p, gr, m, v, step, 1e-3, 0.9, 0.999, 1e-8, wd)
            np.testing.assert_array_equal(gr, grads[step - 1])
        for a, b, what in zip(state[0], state[1], ("params", "m", "v")):
            assert_close(a, b, rtol, np.abs(b).max() if what == "m" else 0.0, f"adam {what}")


# --------------------------------------------------------------------------- allocation
def _kernel_calls(dtype, rng):
    """(name, args) for one call of every kernel, dense in both branches."""
    f = lambda *s: normal(rng, s, dtype)  # noqa: E731
    n, d = 6, 5
    x, y, dout = f(n, d), f(n, d), f(n, d)
    v = f(d)
    labels = rng.integers(0, d, n).astype(np.int64)
    calls = [("dense_forward", (f(4, 3), f(3, 2), f(2), f(4, 2))),
             ("dense_forward", (f(40, 30), f(30, 20), f(20), f(40, 20))),
             ("dense_backward", (f(4, 2), f(4, 3), f(3, 2), f(4, 3), f(3, 2), f(2))),
             ("dense_backward", (f(40, 20), f(40, 30), f(30, 20), f(40, 30), f(30, 20), f(20))),
             ("bias_act_forward", (x, v, SIGMOID, y)),
             ("batchnorm_forward_train", (x, v, v.copy(), f(d), np.abs(f(d)), 0.1, 1e-5, y, f(d), f(n, d))),
             ("batchnorm_forward_eval", (x, v, v, v, np.abs(v), 1e-5, y)),
             ("batchnorm_backward", (dout, x, np.abs(v), v, y, f(d), f(d))),
             ("hash_uniform", (3, 4, y)),
             ("dropout_mask", (3, 4, 0.5, y)),
             ("dropout_forward", (x, dout, y)),
             ("dropout_backward", (x, dout, y)),
             ("mse_loss", (x, dout, False, True, y)),
             ("softmax_cross_entropy", (x, labels, y, f(n, d))),
             ("bce_with_logits", (x, np.abs(dout) / 10, y)),
             ("sgd_update", (f(9), f(9), f(9), 0.1, 0.9, 0.01, True)),
             ("adam_update", (f(9), f(9), f(9), np.abs(f(9)), 2, 0.1, 0.9, 0.999, 1e-8, 0.01))]
    for name in ACTS:
        calls += [(f"{name}_forward", (x, y)), (f"{name}_backward", (dout, x, y))]
    calls += [("act_forward", (x, TANH, y)), ("act_backward", (dout, x, TANH, y))]
    return calls


def extra_allocations():
    """A function ``(fn, args) -> count`` of the allocations a call of the Numba
    function ``fn`` makes beyond what passing its arguments costs (measured on a
    no-op kernel with the same arguments), from Numba's runtime statistics."""
    numba = pytest.importorskip("numba")
    try:
        from numba.core.runtime import _nrt_python, rtsys
        _nrt_python.memsys_enable_stats()
    except (ImportError, AttributeError):  # pragma: no cover - private API moved
        pytest.skip("Numba runtime allocation statistics unavailable")

    @numba.njit
    def noop(*args):
        return None

    def allocs(fn, args):
        fn(*args)  # compile outside the measurement
        before = rtsys.get_allocation_stats().alloc
        fn(*args)
        return rtsys.get_allocation_stats().alloc - before

    return lambda fn, args: allocs(fn, args) - allocs(noop, args)


@dtypes
def test_kernels_allocate_nothing(dtype, rng):
    extra = extra_allocations()
    for name, args in _kernel_calls(dtype, rng):
        assert extra(getattr(K, name), args) == 0, name


# --------------------------------------------------------------------------- views in kernels
def _view_driver():
    numba = pytest.importorskip("numba")

    @numba.njit
    def run(x, W, b, out, dx, dW, db, bits, mask):
        # [:, :] makes Numba type the views as non-contiguous ('A' layout)
        K.dense_forward(x[:, :], W[:, :], b, out[:, :])
        K.dense_forward(x[:, :], W[:, :], b, out)  # same values, contiguous out
        K.dense_backward(out[:, :], x[:, :], W[:, :], dx[:, :], dW[:, :], db)
        K.hash_uniform(3, 4, bits[:, 1:])
        K.dropout_mask(3, 4, 0.5, mask[:, :])

    return run


@dtypes
@pytest.mark.parametrize("shape", [(3, 4, 5), (40, 30, 20)], ids=["loops", "blas"])
def test_kernels_on_views_inside_njit(dtype, shape, rng):
    """Kernels called from other kernels on views Numba cannot prove contiguous
    compile, allocate nothing, and give the reference's results."""
    extra = extra_allocations()
    run = _view_driver()
    n, i, o = shape
    x, W, b = normal(rng, (n, i), dtype), normal(rng, (i, o), dtype), normal(rng, (o,), dtype)

    def fresh():
        return (np.empty((n, o), dtype), np.empty((n, i), dtype), np.empty((i, o), dtype),
                np.empty(o, dtype), np.zeros((n, 4), dtype), np.empty((n, o), dtype))

    bufs = fresh()
    assert extra(run, (x, W, b, *bufs)) == 0
    out, dx, dW, db, bits, mask = bufs
    ref_out = np.empty((n, o), dtype)
    R.dense_forward(x, W, b, ref_out)
    rtol = rtol_for(dtype)
    x64, W64 = x.astype(np.float64), W.astype(np.float64)
    assert_close(out, ref_out, rtol, np.abs(x64) @ np.abs(W64) + np.abs(b), "out")
    rdx, rdW, rdb = np.empty((n, i), dtype), np.empty((i, o), dtype), np.empty(o, dtype)
    R.dense_backward(out, x, W, rdx, rdW, rdb)
    o64 = np.abs(out.astype(np.float64))
    assert_close(dx, rdx, rtol, o64 @ np.abs(W64.T), "dx")
    assert_close(dW, rdW, rtol, np.abs(x64.T) @ o64, "dW")
    assert_close(db, rdb, rtol, o64.sum(0), "db")
    ref_bits = np.empty((n, 3), dtype)
    R.hash_uniform(3, 4, ref_bits)
    np.testing.assert_array_equal(bits[:, 1:], ref_bits)
    assert np.all(bits[:, 0] == 0)
    ref_mask = np.empty((n, o), dtype)
    R.dropout_mask(3, 4, 0.5, ref_mask)
    np.testing.assert_array_equal(mask, ref_mask)
