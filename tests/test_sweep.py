"""fastbp.sweep and ``fastbp sweep``: grids, executors, results files, resume, retries, plots.

The Dask executor has its own file (tests/test_sweep_dask.py). Networks here are
small (2-4-4-1 and 2-4-1 on the 21 XOR points or the 500 linear points) so that a
run takes milliseconds, except where a run must still be going when a worker is
killed or Ctrl-C arrives.
"""
import json
import multiprocessing as mp
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import fastbp as fb
from fastbp import cli, demo
from fastbp import plot as fbplot
from fastbp.sweep import ResultsFile, SweepInterrupted, format_summary, summarize

XOR = dict(data="xor", sizes=[2, 4, 4, 1], batch_size=1, epochs=150)
GRID = {"lr": [0.1, 0.5], "seed": [0, 1, 2]}
FIELDS = {"key", "params", "config", "data", "status", "error", "loss", "accuracy",
          "final_loss", "final_accuracy", "epochs_run", "stop_reason", "seconds",
          "weights_sha256", "attempts", "worker", "compiles"}


def weights_sha(model):
    import hashlib
    h = hashlib.sha256()
    for w in model.get_weights():
        h.update(w.tobytes())
    return h.hexdigest()[:16]


def plain_fit(lr, seed, epochs=150):
    """The same run, alone, with the model's public API."""
    X, y = fb.datasets.generate_xor_easy()
    m = fb.MLP([2, 4, 4, 1], activation="sigmoid", output_activation="sigmoid", loss="mse",
               init="uniform", seed=seed)
    h = m.fit(X, y, epochs=epochs, lr=lr, batch_size=1, shuffle=False)
    return h, m


def same_results(a, b):
    assert [r["key"] for r in a] == [r["key"] for r in b]
    for x, y in zip(a, b):
        for field in ("status", "loss", "accuracy", "final_loss", "epochs_run",
                      "weights_sha256"):
            assert x[field] == y[field], (field, x["params"])


@pytest.fixture(scope="module")
def serial():
    return fb.sweep(GRID, workers=0, **XOR)


# ------------------------------------------------------------------ the runs
def test_one_record_per_grid_point_equal_to_plain_fit(serial):
    assert [r["params"] for r in serial] == [{"lr": lr, "seed": s} for lr in (0.1, 0.5)
                                             for s in (0, 1, 2)]
    for r in serial:
        assert FIELDS <= set(r)
        assert r["status"] == "ok" and r["error"] is None
        assert r["config"]["sizes"] == [2, 4, 4, 1] and r["config"]["batch_size"] == 1
        h, m = plain_fit(r["params"]["lr"], r["params"]["seed"])
        assert r["loss"] == h.loss                   # bit for bit
        assert r["final_loss"] == h.loss[-1] and r["epochs_run"] == 150
        assert r["weights_sha256"] == weights_sha(m)
    assert len({r["key"] for r in serial}) == 6
    assert len({r["weights_sha256"] for r in serial}) == 6    # the runs really differ


def test_local_pool_equals_this_process_bit_for_bit(serial):
    seen = []
    local = fb.sweep(GRID, workers=2, on_record=seen.append, **XOR)
    same_results(local, serial)
    assert len(seen) == 6
    pids = {r["worker"] for r in local}
    assert str(os.getpid()) not in {p.split(":")[1] for p in pids}   # ran in the workers
    assert all(r["compiles"] == 0 for r in local)   # the kernels were warmed before


def test_grid_over_model_settings_and_validation_data():
    X, y = fb.datasets.generate_linear(60, seed=1)
    labels = y[:, 0].astype(np.int64)
    recs = fb.sweep({"hidden": [[3], [4, 2]], "loss": ["mse", "cross_entropy"]},
                    data=(X[:40], labels[:40], X[40:], labels[40:]), workers=0, epochs=5,
                    batch_size=8, activation="tanh")
    sizes = [r["config"]["sizes"] for r in recs]
    assert sizes == [[2, 3, 1], [2, 3, 2], [2, 4, 2, 1], [2, 4, 2, 2]]
    assert [r["config"]["output_activation"] for r in recs] == ["sigmoid", "identity"] * 2
    for r in recs:
        assert r["status"] == "ok", r["error"]
        assert len(r["val_loss"]) == 5 and r["final_val_loss"] == r["val_loss"][-1]
    rows = summarize(recs)
    assert rows[0]["metric"] == "final_val_loss"


def test_named_image_sets_digits_and_a_cifar10_file(tmp_path):
    recs = fb.sweep({"lr": [0.05]}, data="digits", hidden=[8], epochs=2, batch_size=64,
                    workers=0)
    r = recs[0]
    assert r["status"] == "ok", r["error"]
    assert r["config"]["sizes"] == [64, 8, 10] and r["config"]["loss"] == "cross_entropy"
    assert len(r["val_accuracy"]) == 2 and r["data"] == {"name": "digits", "dtype": "float64",
                                                         "data_seed": 0}
    rng = np.random.default_rng(0)
    path = fb.datasets.write_cifar10(tmp_path / "data_batch_1.bin",
                                     rng.integers(0, 256, (20, 3072), dtype=np.uint8),
                                     rng.integers(0, 10, 20))
    recs = fb.sweep({"seed": [0, 1]}, data=path, hidden=[4], epochs=1, batch_size=8,
                    workers=0)
    assert [r["status"] for r in recs] == ["ok", "ok"], recs[0]["error"]
    assert recs[0]["config"]["sizes"] == [3072, 4, 10]
    assert recs[0]["data"]["cifar_path"] == str(Path(path).resolve())


def test_a_failing_run_is_recorded_and_the_sweep_goes_on(tmp_path):
    out = tmp_path / "r.jsonl"
    recs = fb.sweep({"lr": [0.1, 1e6], "loss": ["mse", "bce"]}, data="linear", out=out,
                    workers=0, epochs=30, activation="relu", output_activation="identity")
    by = {(r["params"]["lr"], r["params"]["loss"]): r for r in recs}
    assert by[(0.1, "mse")]["status"] == "ok"
    diverged = by[(1e6, "mse")]
    assert diverged["status"] == "failed" and diverged["error"].startswith("diverged:")
    assert all(v is None or np.isfinite(v) for v in diverged["loss"])
    bad = by[(0.1, "bce")]       # BCE needs a sigmoid output: the model refuses it
    assert bad["status"] == "failed" and bad["error"].startswith("ValueError:")
    assert "Sigmoid" in bad["error"]
    lines = out.read_text().splitlines()
    assert len(lines) == 4 and all(json.loads(line)["key"] for line in lines)
    json.loads(lines[0], parse_constant=lambda c: pytest.fail(f"{c} in strict JSON"))


# ------------------------------------------------------------------ results file and resume
def test_results_file_holds_the_records_and_a_rerun_skips_them(tmp_path):
    out = tmp_path / "sub" / "results.jsonl"
    first = fb.sweep({"lr": [0.1, 0.5]}, out=out, workers=0, **XOR)
    saved = [json.loads(line) for line in out.read_text().splitlines()]
    assert saved == first
    assert fb.load_sweep(out) == first
    ran = []
    again = fb.sweep({"lr": [0.1, 0.5]}, out=out, workers=0, on_record=ran.append, **XOR)
    assert ran == [] and again == first
    wider = fb.sweep({"lr": [0.1, 0.5, 0.2]}, out=out, workers=0, on_record=ran.append, **XOR)
    assert [r["params"] for r in ran] == [{"lr": 0.2}]
    assert wider[:2] == first and len(out.read_text().splitlines()) == 3


def test_a_line_cut_short_is_dropped_and_its_run_runs_again(tmp_path):
    out = tmp_path / "r.jsonl"
    fb.sweep({"lr": [0.1, 0.5]}, out=out, workers=0, **XOR)
    text = out.read_text()
    out.write_text(text[:-40])                       # a crash in the middle of the last write
    ran = []
    recs = fb.sweep({"lr": [0.1, 0.5]}, out=out, workers=0, on_record=ran.append, **XOR)
    assert [r["params"] for r in ran] == [{"lr": 0.5}]
    assert out.read_text() == text.splitlines(keepends=True)[0] + json.dumps(
        recs[1], separators=(",", ":")) + "\n"


def test_failed_runs_are_skipped_unless_retry_failed(tmp_path):
    out = tmp_path / "r.jsonl"
    kw = dict(data="linear", out=out, workers=0, epochs=30, activation="relu",
              output_activation="identity")
    fb.sweep({"lr": [1e6]}, **kw)
    ran = []
    fb.sweep({"lr": [1e6]}, on_record=ran.append, **kw)
    assert ran == []
    fb.sweep({"lr": [1e6]}, on_record=ran.append, retry_failed=True, **kw)
    assert len(ran) == 1 and ran[0]["status"] == "failed"


def test_interrupt_then_resume_without_repeating(tmp_path):
    """Ctrl-C (SIGINT to the command) mid-sweep, then the same command again."""
    out, plot = tmp_path / "r.jsonl", tmp_path / "s.png"
    argv = [sys.executable, "-m", "fastbp", "sweep", "--data", "linear",
            "--grid", "lr=0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8", "--grid", "seed=0,1",
            "--sizes", "2,4,4,1", "--batch-size", "1", "--epochs", "2500", "--workers", "2",
            "--out", str(out), "--plot", str(plot)]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and p.poll() is None:
        if out.exists() and out.read_text().count("\n") >= 2:
            break
        time.sleep(0.02)
    p.send_signal(signal.SIGINT)
    stdout, stderr = p.communicate(timeout=120)
    assert p.returncode == 130, stdout + stderr
    assert "run the same sweep with the same results file" in stderr
    assert "Traceback" not in stderr and not plot.exists()
    kept = out.read_text().splitlines()
    assert 2 <= len(kept) < 16
    p2 = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert p2.returncode == 0, p2.stderr
    assert f"{len(kept)} runs already there, {16 - len(kept)} to run" in p2.stdout
    lines = out.read_text().splitlines()
    assert lines[:len(kept)] == kept                 # the finished runs are not repeated
    keys = [json.loads(line)["key"] for line in lines]
    assert len(lines) == 16 and len(set(keys)) == 16
    assert plot.exists()


def test_ctrl_c_in_this_process_raises_sweep_interrupted(tmp_path):
    out = tmp_path / "r.jsonl"

    def stop_after_two(rec, seen=[]):
        seen.append(rec)
        if len(seen) == 2:
            raise KeyboardInterrupt
    with pytest.raises(SweepInterrupted) as info:
        fb.sweep(GRID, out=out, workers=2, on_record=stop_after_two, **XOR)
    assert len(info.value.records) == 2 and "other 4" in str(info.value)
    assert len(out.read_text().splitlines()) == 2
    assert not [c for c in mp.active_children() if c.name == "fastbp-sweep-worker"]


# ------------------------------------------------------------------ a worker dies
def test_a_killed_worker_gets_its_run_retried(serial):
    """SIGKILL a local worker in the middle of a run: every run still finishes."""
    killed = []

    def kill_the_other(rec):
        if killed:
            return
        mine = int(rec["worker"].split(":")[1])
        for c in mp.active_children():
            if c.name == "fastbp-sweep-worker" and c.pid != mine:
                os.kill(c.pid, signal.SIGKILL)
                killed.append(c.pid)
    grid = {"lr": [0.1, 0.2, 0.3], "seed": [0, 1]}
    kw = dict(data="linear", sizes=[2, 4, 4, 1], batch_size=1, epochs=1500)
    recs = fb.sweep(grid, workers=2, on_record=kill_the_other, **kw)
    assert killed
    assert all(r["status"] == "ok" for r in recs)
    assert any(r["attempts"] == 2 for r in recs)           # the run it held, run again
    assert killed[0] not in {int(r["worker"].split(":")[1]) for r in recs if r["attempts"] == 2}
    same_results(recs, fb.sweep(grid, workers=0, **kw))


# ------------------------------------------------------------------ summary and plots
def test_summary_mean_and_spread_over_seeds(serial):
    rows = summarize(serial)
    assert [r["params"] for r in rows] and all("seed" not in r["params"] for r in rows)
    for row in rows:
        vals = [r["final_loss"] for r in serial if r["params"]["lr"] == row["params"]["lr"]]
        assert row["mean"] == pytest.approx(np.mean(vals), rel=1e-15)
        assert row["std"] == pytest.approx(np.std(vals, ddof=1), rel=1e-12)
        assert row["runs"] == row["ok"] == 3 and row["seeds"] == [0, 1, 2]
    assert rows[0]["mean"] <= rows[1]["mean"]
    text = format_summary(rows)
    assert "mean ± std over 3 seeds" in text and text.splitlines()[1].startswith("1 ")


def test_progress_bar_shows_the_best_so_far(capsys):
    lines = []
    fb.sweep({"lr": [0.1, 0.5]}, workers=0, progress=True, log=lines.append, **XOR)
    err = capsys.readouterr().err
    assert "2/2" in err and "best final_loss" in err and "lr=" in err
    assert sum(line.startswith("  [") for line in lines) == 2


def test_seed000_lr_sweep_through_the_api(tmp_path, monkeypatch):
    """Seed 000: ten lrs, 1,000 full-batch epochs each from the same start; larger rates
    fall faster. The API gives the demo's curves bit for bit, and the figure is one call."""
    recs = fb.sweep({"lr": list(demo.SWEEP_LRS)}, data="linear", workers=2)
    ref = demo.lr_sweep(tmp_path / "demo")
    assert [r["loss"] for r in recs] == [ref["curves"][lr] for lr in demo.SWEEP_LRS]
    assert all(len(r["loss"]) == 1000 for r in recs)
    assert len({r["loss"][0] for r in recs}) == 1
    finals = [r["final_loss"] for r in recs]
    assert all(a > b for a, b in zip(finals, finals[1:]))        # larger lr, lower loss
    seen = {}
    real = fbplot._save

    def spy(fig, path):
        ax = fig.axes[0]
        seen["labels"] = [t.get_text() for t in ax.get_legend().get_texts()]
        seen["lines"] = [line.get_ydata() for line in ax.get_lines()]
        return real(fig, path)
    monkeypatch.setattr(fbplot, "_save", spy)
    path = fbplot.plot_sweep_curves(recs, tmp_path / "seed000_lr_sweep.png")
    assert Path(path).read_bytes()[:4] == b"\x89PNG"
    assert seen["labels"] == [f"lr={lr:.1f}" for lr in demo.SWEEP_LRS]
    assert [list(y) for y in seen["lines"]] == [r["loss"] for r in recs]


def test_plot_sweep_metric_with_seed_spread(serial, tmp_path, monkeypatch):
    seen = {}
    real = fbplot._save

    def spy(fig, path):
        seen["ax"] = [(line.get_xdata().tolist(), line.get_ydata().tolist())
                      for line in fig.axes[0].get_lines()]
        return real(fig, path)
    monkeypatch.setattr(fbplot, "_save", spy)
    fbplot.plot_sweep_metric(serial, tmp_path / "final.png", param="lr")
    means = [np.mean([r["final_loss"] for r in serial if r["params"]["lr"] == lr])
             for lr in (0.1, 0.5)]
    assert ([0.1, 0.5], pytest.approx(means)) in seen["ax"]
    with pytest.raises(ValueError, match="no parameter 'momentum'"):
        fbplot.plot_sweep_curves(serial, tmp_path / "x.png", by="momentum")
    assert not (tmp_path / "x.png").exists()


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("call, match", [
    (dict(grid={"lrr": [0.1]}), "unknown sweep parameter 'lrr'"),
    (dict(grid={"lr": []}), "empty"),
    (dict(grid={"lr": [0.1, -1]}), "lr=-1"),
    (dict(grid={"lr": 0.1}), "list of values"),
    (dict(grid={"seed": [0]}, seed=1), "both a grid axis and a fixed setting"),
    (dict(grid={"hidden": [[4]]}, sizes=[2, 4, 1]), "give one of them"),
    (dict(grid={"lr": [0.1, 0.1]}), "the same run twice"),
    (dict(grid={"lr": [0.1]}, data="mnist"), "neither a data set name"),
    (dict(grid={"lr": [0.1]}, workers=-1), "workers"),
    (dict(grid={"optimizer": ["rmsprop"]}), "sgd, adam"),
])
def test_bad_arguments_are_refused_before_any_run(tmp_path, call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        fb.sweep(out=tmp_path / "r.jsonl", **call)
    assert list(tmp_path.iterdir()) == []


def test_unknown_setting_is_a_type_error():
    with pytest.raises(TypeError, match="unexpected keyword argument 'learning_rate'"):
        fb.sweep({"lr": [0.1]}, learning_rate=0.1)


def test_a_results_file_of_something_else_is_refused(tmp_path):
    out = tmp_path / "r.jsonl"
    out.write_text('{"a": 1}\nnot json\n')
    with pytest.raises(ValueError, match="line 1: not a fastbp sweep record"):
        fb.sweep({"lr": [0.1]}, out=out, workers=0, **XOR)
    with pytest.raises(ValueError, match="is a folder"):
        ResultsFile(tmp_path)


# ------------------------------------------------------------------ the command
def run_cli(capsys, *argv):
    rc = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_command_grid_out_and_plots(capsys, tmp_path):
    out, plot, final = tmp_path / "r.jsonl", tmp_path / "s.png", tmp_path / "f.png"
    rc, stdout, err = run_cli(capsys, "sweep", "--data", "xor", "--grid", "lr=0.1,0.5",
                              "--grid", "seed=0,1,2", "--sizes", "2,4,4,1", "--epochs", "150",
                              "--batch-size", "1", "--out", out, "--plot", plot,
                              "--plot-final", final, "--workers", "0")
    assert rc == 0, err
    recs = fb.load_sweep(out)
    assert len(recs) == 6
    for r in recs:
        h, _ = plain_fit(r["params"]["lr"], r["params"]["seed"])
        assert r["loss"] == h.loss
    assert "mean ± std over 3 seeds" in stdout
    assert len(re.findall(r"final loss \S+ after 150 epochs", stdout)) == 6
    assert plot.read_bytes()[:4] == final.read_bytes()[:4] == b"\x89PNG"
    rc, stdout, err = run_cli(capsys, "sweep", "--data", "xor", "--lrs", "0.1,0.5",
                              "--grid", "seed=0,1,2", "--sizes", "2,4,4,1", "--epochs", "150",
                              "--batch-size", "1", "--out", out, "--plot", plot,
                              "--workers", "0")
    assert rc == 0 and "6 runs already there, 0 to run" in stdout


@pytest.mark.parametrize("argv, word", [
    (["--grid", "lr"], "NAME=V1,V2"),
    (["--grid", "speed=1,2"], "unknown parameter 'speed'"),
    (["--grid", "lr=0.1,fast"], "lr='fast'"),
    (["--grid", "batch-size=0"], "batch_size=0"),
    (["--grid", "shuffle=maybe"], "true or false"),
    (["--grid", "lr=0.1", "--lrs", "0.2"], "--lrs"),
    (["--grid", "seed=0", "--grid", "seed=1"], "given twice"),
    (["--grid", "hidden=4,8", "--sizes", "2,4,1"], "--sizes"),
    (["--by", "momentum"], "not a grid axis"),
    (["--workers", "-1"], "--workers"),
])
def test_command_bad_input_is_one_line(capsys, tmp_path, argv, word):
    rc, out, err = run_cli(capsys, "sweep", *argv, "--out", tmp_path / "r.jsonl",
                           "--plot", tmp_path / "s.png")
    assert rc == 2 and err.startswith("fastbp: error: ") and len(err.splitlines()) == 1, err
    assert word in err
    assert list(tmp_path.iterdir()) == []


def test_command_parses_every_kind_of_value():
    from fastbp._sweep_cli import grid_axis
    assert grid_axis("hidden=4,8,4x4") == ("hidden", [[4], [8], [4, 4]])
    assert grid_axis("sizes=2-4-1") == ("sizes", [[2, 4, 1]])
    assert grid_axis("batch-size=1,full") == ("batch_size", [1, None])
    assert grid_axis("nesterov=true,no") == ("nesterov", [True, False])
    assert grid_axis("betas=0.9:0.99") == ("betas", [[0.9, 0.99]])
    assert grid_axis("optimizer=sgd,adam") == ("optimizer", ["sgd", "adam"])


# ------------------------------------------------------------------ Numba's cache, cold
COLD = """
import json, re, sys
import fastbp as fb
lines = []
recs = fb.sweep({"lr": [0.1, 0.5]}, data="xor", sizes=[2, 3, 1], batch_size=1, epochs=20,
                workers=2, start_method="spawn", log=lines.append)
warm = next(line for line in lines if line.startswith("kernels:"))
here, there = map(int, re.findall(r"\\((\\d+) (?:Numba )?compilations?\\)", warm))
print(json.dumps({"line": warm, "here": here, "workers": there,
                  "runs": [r["compiles"] for r in recs], "ok": [r["status"] for r in recs]}))
"""


def test_cold_cache_compiles_once_before_the_workers_start(tmp_path):
    """With empty caches, this process compiles; the spawned workers only load."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"),
               FASTBP_CACHE_DIR=str(tmp_path / "fastbp"))
    p = subprocess.run([sys.executable, "-c", COLD], capture_output=True, text=True, env=env,
                       timeout=900)
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout.splitlines()[-1])
    assert res["here"] > 0, res["line"]            # the cache was cold: compiled here, once
    assert res["workers"] == 0 and res["runs"] == [0, 0], res   # the workers loaded it
    assert res["ok"] == ["ok", "ok"]
    assert any((tmp_path / "fastbp").rglob("*.nbi"))     # fastbp's own folder takes the cache


def test_warm_key_separates_what_picks_a_kernel():
    """The warm-up trains one run per kernel the runs need: momentum and weight decay
    zero or not pick different kernels (plain SGD steps inside the products), their
    values do not."""
    from fastbp._sweep_run import warm_key

    base = dict(seed=0, lr=0.1, epochs=5, dropout=0.0, momentum=0.0, weight_decay=0.0,
                batch_size=16)

    def key(**kw):
        return warm_key(dict(base, **kw))

    assert key() == key(lr=0.5, seed=3, epochs=9)
    assert key(momentum=0.5) == key(momentum=0.9) != key()
    assert key(weight_decay=1e-3) == key(weight_decay=1e-2) != key()
    assert key(dropout=0.1) == key(dropout=0.3) != key()
