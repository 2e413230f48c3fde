"""``fastbp demo``: the seed experiments end to end, checked on the numbers they return."""
import contextlib
import io
import math
from pathlib import Path

import numpy as np
import pytest

from fastbp import cli, demo

PNG = b"\x89PNG\r\n\x1a\n"
FIGURES = ["seed000_lr_sweep.png", "seed001_linear_result.png", "seed001_lr_comparison.png",
           "seed001_xor_result.png", "seed003_digits_loss.png"]


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory):
    """``fastbp demo --quick --out DIR`` once; the dict ``run_all`` returned, the exit
    status, the printed report and the folder."""
    out = tmp_path_factory.mktemp("demo") / "figures"
    seen = {}
    real = demo.run_all

    def spy(*args, **kwargs):
        seen["result"] = real(*args, **kwargs)
        return seen["result"]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(demo, "run_all", spy)
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            rc = cli.main(["demo", "--quick", "--out", str(out)])
    return {"rc": rc, "res": seen["result"], "report": buf.getvalue(), "out": out}


def test_demo_quick_runs_and_writes_its_figures(quick_demo):
    assert quick_demo["rc"] == 0, quick_demo["report"]
    res, out = quick_demo["res"], quick_demo["out"]
    assert res["ok"] and res["checks_failed"] == []
    assert sorted(p.name for p in out.iterdir()) == FIGURES
    assert sorted(Path(f).name for f in res["figures"]) == FIGURES
    for name in FIGURES:
        data = (out / name).read_bytes()
        assert data[:8] == PNG and len(data) > 10_000, name
    for header in ("== seed 000: one sigmoid neuron", "== seed 002:", "== seed 001:",
                   "learning-rate sweep", "== seed 003:", "6 of 6 experiments as expected"):
        assert header in quick_demo["report"]


def test_seed000_neuron_matches_the_published_figures(quick_demo):
    v = quick_demo["res"]["seed000"]["values"]
    assert v["z"] == pytest.approx(0.36, abs=1e-15)
    assert round(v["y_hat"], 4) == 0.5890 and v["y_hat"] == pytest.approx(0.58904043, abs=5e-9)
    assert round(v["loss"], 4) == 0.0123 and v["loss"] == pytest.approx(0.01231203, abs=5e-9)
    # the write-up rounds intermediate values: -0.0053724 and 0.5026862 as printed
    assert v["dL_dw2"] == pytest.approx(-0.0053724, abs=5e-7)
    assert v["dL_dw2"] == pytest.approx(-0.00537204, abs=5e-9)
    assert v["w2_new"] == pytest.approx(0.5026862, abs=5e-7)
    assert v["w2_new"] == pytest.approx(0.50268602, abs=5e-9)
    # independently: dL/dw2 = -2 (y - y_hat) y_hat (1 - y_hat) x2
    yh = 1 / (1 + math.exp(-0.36))
    assert v["dL_dw2"] == pytest.approx(-2 * (0.7 - yh) * yh * (1 - yh) * 0.1, rel=1e-12)
    assert v["w2_new"] == pytest.approx(0.5 - 0.5 * v["dL_dw2"], rel=1e-15)
    assert quick_demo["res"]["seed000"]["numpy_max_diff"] <= 1e-15


def test_seed002_linear_network_matches_the_published_figures(quick_demo):
    v = quick_demo["res"]["seed002"]["values"]
    assert (v["h1"], v["h2"]) == (pytest.approx(0.85, abs=1e-15), pytest.approx(0.48, abs=1e-15))
    assert v["prediction"] == pytest.approx(0.191, abs=1e-15)
    assert round(v["error"], 4) == 0.3272
    got = [v[f"w{i}"] for i in range(1, 7)]
    np.testing.assert_allclose(got, [0.121326, 0.226989, 0.132135, 0.0982025, 0.1743825,
                                     0.169416], atol=1e-12)
    assert round(v["new_prediction"], 4) == 0.2557 and round(v["new_prediction"], 2) == 0.26
    assert quick_demo["res"]["seed002"]["numpy_max_diff"] <= 1e-15


def test_seed001_runs_converge_and_backends_agree(quick_demo):
    s = quick_demo["res"]["seed001"]
    assert s["seed"] == demo.DEFAULT_SEED
    assert set(s["runs"]) == {("linear", 0.1), ("linear", 0.02), ("XOR", 0.1), ("XOR", 0.02)}
    for key, run in s["runs"].items():
        assert run["converged"], key
        assert run["epochs"] < demo.SEED001_MAX_EPOCHS
        assert len(run["loss"]) == run["epochs"]
    # the order of magnitude the write-up reports for XOR (~15,000 at lr 0.1,
    # ~35,000 at lr 0.02): thousands of epochs, more at the smaller lr
    assert 1_000 <= s["runs"][("XOR", 0.1)]["epochs"] < s["runs"][("XOR", 0.02)]["epochs"]
    assert [c["data"] for c in s["backends"]] == ["linear", "XOR"]
    for c in s["backends"]:
        assert c["ok"] and c["same_epochs"], c
        assert c["max_weight_diff"] <= 1e-10
        assert not c["full_run"]          # --quick caps the NumPy reference
        assert c["epochs_numpy"] * (500 if c["data"] == "linear" else 21) <= 500


def test_seed000_sweep_curves(quick_demo):
    sw = quick_demo["res"]["sweep"]
    assert sorted(sw["curves"]) == [pytest.approx(0.1 * i) for i in range(1, 11)]
    assert all(len(c) == 1000 for c in sw["curves"].values())
    assert len({c[0] for c in sw["curves"].values()}) == 1      # the same start
    assert sw["final"][1.0] < sw["final"][0.5] < sw["final"][0.1]


def test_seed003_classifier_runs(quick_demo):
    d, c = quick_demo["res"]["digits"], quick_demo["res"]["cifar10"]
    assert d["epochs"] == 2 and not d["checked"]
    assert d["test_accuracy"] > 0.8
    assert c["read_back"] and c["ok"]
    assert all(math.isfinite(v) for v in c["loss"])


# ------------------------------------------------------------------ the checks can fail
def test_a_wrong_published_figure_is_reported(monkeypatch):
    monkeypatch.setitem(demo.SEED002_PUBLISHED, "w5", (0.1743826, 7))
    res = demo.linear_step("numba")
    assert not res["ok"]
    assert [c["name"] for c in res["checks"] if not c["ok"]] == ["w5"]


def test_a_backend_mismatch_is_reported(monkeypatch):
    """If the reference trained differently, the seed-001 comparison fails."""
    real = demo.seed001_model

    def skewed(seed=demo.DEFAULT_SEED, backend="numba"):
        m = real(seed, backend)
        if backend == "numpy":
            m.params[0] += 1e-6
        return m

    monkeypatch.setattr(demo, "seed001_model", skewed)
    X, y = demo.seed001_data("XOR")
    # a full run "longer" than the cap: both backends train the capped 20 epochs afresh
    res = demo._compare_backends("XOR", X, y, 0.1, demo.DEFAULT_SEED, (10**6, None, 0.0),
                                 21 * 20, lambda line: None)
    assert res["epochs_numba"] == res["epochs_numpy"] == 20
    assert not res["ok"] and res["max_weight_diff"] > 1e-10


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_neuron_and_linear_steps_on_each_backend(backend):
    assert demo.neuron_step(backend)["ok"]
    assert demo.linear_step(backend)["ok"]
