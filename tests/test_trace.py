"""``model.trace`` and ``fastbp trace``: one SGD step recorded term by term.

The record must be the step ``fit`` takes (the Numba backend within 1e-12, the
NumPy backend bit for bit), leave the model as it was, and, written out,
reproduce the write-ups' worked examples figure for figure.
"""
import contextlib
import io

import numpy as np
import pytest

import fastbp as fb
from fastbp import _cli_trace, cli, demo
from fastbp.trace import STAGES

TOL = 1e-12


def _nets():
    """Every layer kind and every loss, small (each compiles no new kernel shape)."""
    return {
        "sigmoid-tanh-mse": (lambda: [fb.Dense(3, 4), fb.Sigmoid(), fb.Dense(4, 2), fb.Tanh()],
                             fb.MSE(), 3, "float"),
        "bn-relu-dropout-ce": (lambda: [fb.Dense(3, 5), fb.BatchNorm(5), fb.ReLU(),
                                        fb.Dropout(0.3), fb.Dense(5, 4), fb.Identity()],
                               fb.SoftmaxCrossEntropy(), 4, "label"),
        "nobias-relu-bce": (lambda: [fb.Dense(3, 4, bias=False), fb.ReLU(), fb.Dense(4, 1),
                                     fb.Sigmoid()], fb.BinaryCrossEntropy(), 2, "binary"),
        "bn-first-sum-half": (lambda: [fb.BatchNorm(3), fb.Dense(3, 2), fb.Tanh(),
                                       fb.Dropout(0.5)], fb.MSE(reduction="sum", half=True), 3,
                              "float"),
        "online-dropout": (lambda: [fb.Dense(2, 3), fb.Tanh(), fb.Dropout(0.5), fb.Dense(3, 1),
                                    fb.Sigmoid()], fb.MSE(), 1, "float"),
    }


def _data(rng, n, n_in, n_out, kind):
    X = rng.normal(size=(n, n_in))
    if kind == "label":
        return X, rng.integers(0, n_out, size=n)
    if kind == "binary":
        return X, rng.integers(0, 2, size=(n, n_out)).astype(float)
    return X, rng.normal(size=(n, n_out))


def _snapshot(m):
    return m.params.copy(), m.state.copy(), m._counters.copy(), m.epochs_trained


@pytest.mark.parametrize("name", sorted(_nets()))
def test_trace_equals_the_numba_step_and_leaves_the_model_alone(name, rng):
    layers, loss, n, kind = _nets()[name]
    m = fb.Sequential(layers(), loss=loss, backend="numba", seed=3)
    n_in = m.n_inputs
    X, y = _data(rng, n, n_in, m.n_outputs, kind)
    lr = 0.37
    # one step first: the trace must use the dropout step counter the next fit uses
    m.fit(X, y, epochs=1, lr=lr, batch_size=n, shuffle=False)
    before = _snapshot(m)
    t = m.trace(X, y, lr=lr)
    after = _snapshot(m)
    for a, b in zip(before[:3], after[:3]):
        np.testing.assert_array_equal(a, b)
    assert before[3] == after[3]
    loss_value, grads = m.loss_and_grads(X, y)
    assert t.loss == pytest.approx(loss_value, rel=TOL, abs=TOL)
    for g_trace, g_numba in zip(t.grads, grads, strict=True):
        np.testing.assert_allclose(g_trace, g_numba, rtol=TOL, atol=TOL)
    m.fit(X, y, epochs=1, lr=lr, batch_size=n, shuffle=False)
    for w_trace, w_numba in zip(t.new_weights, m.get_weights(), strict=True):
        np.testing.assert_allclose(w_trace, w_numba, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(t.new_state, m.state, rtol=TOL, atol=TOL)
    assert [s["stage"] for s in t.steps] == sorted(
        (s["stage"] for s in t.steps), key=STAGES.index)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_trace_is_the_numpy_backend_step_bit_for_bit(dtype, rng):
    layers, loss, n, kind = _nets()["bn-relu-dropout-ce"]
    m = fb.Sequential(layers(), loss=loss, backend="numpy", dtype=dtype, seed=5)
    X, y = _data(rng, n, 3, 4, kind)
    t = m.trace(X, y, lr=0.2)
    m.fit(X, y, epochs=1, lr=0.2, batch_size=n, shuffle=False)
    for w_trace, w_ref in zip(t.new_weights, m.get_weights(), strict=True):
        assert w_trace.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(w_trace, w_ref)


def test_record_holds_terms_factors_and_each_kind(rng):
    m = fb.Sequential([fb.Dense(3, 4), fb.BatchNorm(4), fb.Sigmoid(), fb.Dropout(0.5),
                       fb.Dense(4, 2)], loss=fb.SoftmaxCrossEntropy(), seed=1)
    X = rng.normal(size=(3, 3))
    t = m.trace(X, [0, 1, 1], lr=0.1)
    d = t.stage("forward")[0]
    # each weighted sum is the sum of its terms plus the bias
    np.testing.assert_allclose(d["terms"].sum(axis=1) + d["b"], d["z"], rtol=1e-14)
    np.testing.assert_array_equal(d["terms"][2, 1, 3], X[2, 1] * d["W"][1, 3])
    bn = t.stage("forward")[1]
    np.testing.assert_allclose(bn["mean"], d["z"].mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(bn["inv_std"], 1 / np.sqrt(d["z"].var(axis=0) + 1e-5), rtol=1e-12)
    drop = t.stage("forward")[3]
    assert set(np.unique(drop["mask"])) <= {0.0, 2.0}
    np.testing.assert_array_equal(drop["y"], drop["x"] * drop["mask"])
    # each weight gradient is the sum over samples of its two factors
    back = {s["layer"]: s for s in t.stage("backward")}
    dense1 = back[0]
    np.testing.assert_allclose(dense1["dW"], dense1["x"].T @ dense1["delta"], rtol=1e-13)
    assert dense1["dx"] is None and back[4]["dx"] is not None
    upd = t.stage("update")
    assert [(s["layer"], s["param"]) for s in upd] == [(0, "W"), (0, "b"), (1, "gamma"),
                                                       (1, "beta"), (4, "W"), (4, "b")]
    for s in upd:
        np.testing.assert_array_equal(s["new"], s["old"] - 0.1 * s["grad"])
    with pytest.raises(ValueError, match="unknown stage"):
        t.stage("sideways")


def test_bad_input_is_refused(rng):
    m = fb.Sequential([fb.Dense(2, 3), fb.BatchNorm(3), fb.Dense(3, 1)], seed=0)
    with pytest.raises(ValueError, match="at least 2 samples"):
        m.trace([[0.1, 0.2]], [[1.0]], lr=0.1)
    with pytest.raises(ValueError, match="lr"):
        m.trace(np.ones((2, 2)), np.ones((2, 1)), lr=0.0)
    with pytest.raises(ValueError, match="features"):
        m.trace(np.ones((2, 3)), np.ones((2, 1)), lr=0.1)
    with pytest.raises(ValueError, match="NaN"):
        m.trace(np.array([[np.nan, 1], [1, 1]]), np.ones((2, 1)), lr=0.1)


# --------------------------------------------------------------------------- the write-ups
def _run(argv):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = cli.main(argv)
    return rc, buf.getvalue()


@pytest.mark.parametrize("name,published", [("neuron", demo.SEED000_PUBLISHED),
                                            ("2-2-1", demo.SEED002_PUBLISHED)])
def test_examples_reproduce_every_published_figure(name, published):
    rc, out = _run(["trace", "--example", name])
    assert rc == 0, out
    model, x, y, lr, names, checks = _cli_trace.example(name)
    results = checks(model.trace(x, y, lr=lr))
    assert len(results) == len(published) and all(c["ok"] for c in results)
    for key, (value, decimals) in published.items():
        assert f"{value:.{decimals}f}" in out, key
    assert f"{len(published)} of {len(published)} published values reproduced" in out
    order = [out.index(h) for h in ("== 1. Forward pass", "== 2. Loss", "== 3. Backward pass",
                                    "== 4. Update", "Check:")]
    assert order == sorted(order)


def test_example_221_is_written_as_the_write_up_does():
    rc, out = _run(["trace", "--example", "2-2-1"])
    for line in ["h1 = w1·i1 + w2·i2 = 0.11·2 + 0.21·3 = 0.85",
                 "h2 = w3·i1 + w4·i2 = 0.12·2 + 0.08·3 = 0.48",
                 "prediction = w5·h1 + w6·h2 = 0.14·0.85 + 0.15·0.48 = 0.191",
                 "E = ½·(prediction - actual)² = ½·(0.191 - 1)² = 0.3272405",
                 "Δ = dE/dprediction = prediction - actual = 0.191 - 1 = -0.809",
                 "dE/dw6 = h2·Δ = 0.48·(-0.809) = -0.38832",
                 "δh1 = dE/dh1 = w5·Δ = 0.14·(-0.809) = -0.11326",
                 "dE/dw1 = i1·δh1 = 2·(-0.11326) = -0.22652",
                 "new w1 = w1 - lr·dE/dw1 = 0.11 - 0.05·(-0.22652) = 0.121326",
                 "new w6 = w6 - lr·dE/dw6 = 0.15 - 0.05·(-0.38832) = 0.169416",
                 "prediction: 0.191 → 0.25574578"]:
        assert line in out, line


def test_example_neuron_is_written_as_the_write_up_does():
    rc, out = _run(["trace", "--example", "neuron"])
    for line in ["z = w1·x1 + w2·x2 + b = 0.2·0.05 + 0.5·0.1 + 0.3 = 0.36",
                 "ŷ = σ(z) = 1 / (1 + e^(-0.36)) = 0.58904043",
                 "L = (ŷ - y)² = (0.58904043 - 0.7)² = 0.012312025",
                 "dL/dw2 = x2·δ = 0.1·(-0.053720364) = -0.0053720364",
                 "new w2 = w2 - lr·dL/dw2 = 0.5 - 0.5·(-0.0053720364) = 0.50268602"]:
        assert line in out, line


# --------------------------------------------------------------------------- the command
def test_trace_a_saved_model_with_batchnorm_and_dropout(tmp_path):
    m = fb.Sequential([fb.Dense(2, 3), fb.BatchNorm(3), fb.ReLU(), fb.Dropout(0.5),
                       fb.Dense(3, 2)], loss="cross_entropy", seed=2)
    path = tmp_path / "m.npz"
    m.save(path)
    rc, out = _run(["trace", "--model", str(path), "--x", "0.5,-1", "--y", "1",
                    "--x=-0.25,2", "--y", "0", "--lr", "0.3"])
    assert rc == 0, out
    for piece in ("μ[1] = Σ_r z1[1]/2", "σ²[1] =", "1/√(σ²[1] + ε)", "running mean[1] ←",
                  "[sample 2] mask m = [", "(label 0: output 1)", "dL/dγ1[1] =",
                  "new W2[3,2] ="):
        assert piece in out, piece
    t = m.trace([[0.5, -1], [-0.25, 2]], [1, 0], lr=0.3)
    assert f"{t.loss:.8g}" in out


def test_large_layers_are_summarised_and_say_so(rng):
    m = fb.Sequential([fb.Dense(30, 40), fb.ReLU(), fb.Dense(40, 3)], loss="cross_entropy")
    t = m.trace(rng.normal(size=(1, 30)), [2], lr=0.1)
    text = t.text(limit=64)
    assert "summarised: 1,200 values here, more than the limit of 64" in text
    assert "z1: shape (1, 40)" in text and "largest |entries|" in text
    assert "z1[1] = W1[1,1]·x[1] + W1[2,1]·x[2]" not in text    # 30 terms x 40 units
    full = t.text(limit=10_000)
    assert "summarised" not in full and "z1[1] = W1[1,1]·x[1] + W1[2,1]·x[2]" in full
    assert len(full.splitlines()) > len(text.splitlines()) + 1_200


@pytest.mark.parametrize("argv,message", [
    (["trace"], "choose --example"),
    (["trace", "--model", "m.npz", "--x", "1,2"], "needs --x (inputs) and --y"),
    (["trace", "--example", "neuron", "--x", "1,2"], "go with --model"),
    (["trace", "--example", "neuron", "--limit", "0"], "must be >= 1"),
    (["trace", "--model", "nope.npz", "--x", "1", "--y", "1"], "no such model file"),
    (["trace", "--example", "2-2-1", "--x", "a,b"], "expected numbers"),
])
def test_command_errors(argv, message, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("fastbp: error:") and message in err, err


def test_ascii_output():
    rc, out = _run(["trace", "--example", "2-2-1", "--ascii"])
    assert rc == 0 and out.isascii()
    assert "E = 1/2*(prediction - actual)^2 = 1/2*(0.191 - 1)^2 = 0.3272405" in out
