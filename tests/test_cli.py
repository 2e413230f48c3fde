"""The ``fastbp`` command: in-process through ``main(argv)``, and as real processes."""
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import fastbp as fb
from fastbp import cli

PNG = b"\x89PNG\r\n\x1a\n"


def run(capsys, *argv):
    """``main(argv)`` in this process: (exit status, stdout, stderr)."""
    rc = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def assert_one_line_error(rc, err):
    assert rc == 2, err
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1, err
    assert lines[0].startswith("fastbp: error: "), err
    assert "Traceback" not in err


def is_png(path):
    path = Path(path)
    return path.is_file() and path.read_bytes()[:8] == PNG and path.stat().st_size > 2000


def console_script():
    """The installed ``fastbp`` script beside this interpreter (or on PATH)."""
    here = Path(sys.executable).parent / ("fastbp.exe" if os.name == "nt" else "fastbp")
    if here.exists():
        return str(here)
    import shutil
    found = shutil.which("fastbp")
    if found is None:
        pytest.fail("the fastbp console script is not installed (pip install -e .)")
    return found


# ------------------------------------------------------------------ real processes
def test_python_m_fastbp_help():
    p = subprocess.run([sys.executable, "-m", "fastbp", "--help"], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    for command in ("train", "compare", "sweep", "demo"):
        assert command in p.stdout
    assert p.stderr == ""


def test_console_script_help_and_error(tmp_path):
    exe = console_script()
    p = subprocess.run([exe, "train", "--help"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "--stop-at-accuracy" in p.stdout and "--cifar-path" in p.stdout
    p = subprocess.run([exe, "train", "--data", "mnist", "--save", "m.npz"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert_one_line_error(p.returncode, p.stderr)
    assert "mnist" in p.stderr
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ help
@pytest.mark.parametrize("command", ["train", "compare", "sweep", "demo"])
def test_every_command_has_help(capsys, command):
    rc, out, err = run(capsys, command, "--help")
    assert rc == 0 and err == ""
    assert out.startswith(f"usage: fastbp {command}")
    assert len(out.splitlines()) > 10          # options with their explanations


def test_version(capsys):
    rc, out, _ = run(capsys, "--version")
    assert rc == 0 and out.strip() == f"fastbp {fb.__version__}"


def test_no_command_is_an_error(capsys):
    rc, out, err = run(capsys)
    assert_one_line_error(rc, err)


# ------------------------------------------------------------------ train
def test_train_xor_saves_a_model_that_predicts_and_plots(capsys, tmp_path):
    model_path, plot_path = tmp_path / "out" / "xor.npz", tmp_path / "out" / "loss.png"
    rc, out, err = run(capsys, "train", "--data", "xor", "--save", model_path,
                       "--plot", plot_path)
    assert rc == 0, err
    assert "stopped: training accuracy reached 1.0" in out
    epochs = int(re.search(r"epochs run:\s+([\d,]+)", out).group(1).replace(",", ""))
    assert 1_000 < epochs < 100_000          # seed 001: the order of 10,000 epochs
    assert re.search(r"train set: .* accuracy 1\.0000", out)
    assert re.search(r"time: .* s training", out)
    # the saved model predicts: every XOR point on the right side of 0.5
    X, y = fb.datasets.generate_xor_easy()
    m = fb.load(model_path)
    assert m.epochs_trained == epochs
    pred = m.predict(X)
    assert pred.shape == (21, 1) and ((pred >= 0) & (pred <= 1)).all()
    np.testing.assert_array_equal(m.predict_classes(X), y[:, 0])
    # loss curve, and ground truth vs prediction beside it
    assert is_png(plot_path)
    assert is_png(tmp_path / "out" / "loss_result.png")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "loss.png", "loss_result.png", "xor.npz"]


def test_train_numpy_backend_float32_with_options(capsys, tmp_path):
    rc, out, err = run(capsys, "train", "--data", "linear", "--n", "40", "--data-seed", "3",
                       "--backend", "numpy", "--dtype", "float32", "--epochs", "5",
                       "--batch-size", "8", "--shuffle", "--optimizer", "adam", "--lr", "0.01",
                       "--sizes", "2,8,1", "--activation", "tanh", "--loss", "bce",
                       "--stop-at-accuracy", "0", "--print-every", "1")
    assert rc == 0, err
    assert out.count("epoch      ") == 5            # one --print-every line per epoch
    assert "epochs run:  5" in out and "numpy backend, float32" in out


def test_train_digits_reports_test_accuracy(capsys):
    rc, out, err = run(capsys, "train", "--data", "digits", "--epochs", "2")
    assert rc == 0, err
    acc = float(re.search(r"test set: .* accuracy ([\d.]+) \(359 samples\)", out).group(1))
    assert acc > 0.8                       # two epochs of the seed-003 classifier


def test_train_cifar10_file(capsys, tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "data_batch_1.bin"
    fb.datasets.write_cifar10(path, rng.integers(0, 256, (40, 3072), dtype=np.uint8),
                              rng.integers(0, 10, 40))
    rc, out, err = run(capsys, "train", "--data", "cifar10", "--cifar-path", path,
                       "--epochs", "1", "--batch-size", "16", "--dtype", "float32")
    assert rc == 0, err
    assert "32 train / 8 test images" in out and "test set:" in out


def test_ctrl_c_saves_and_exits_130(capsys, tmp_path, monkeypatch):
    """Ctrl-C during a long fit: the model so far is saved, no plot, exit 130."""
    real_fit = fb.Sequential.fit

    def fit_then_ctrl_c(self, *args, **kwargs):
        if kwargs.get("epochs", 1) > 1000:     # the real run, not the warm-up
            threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(fb.Sequential, "fit", fit_then_ctrl_c)
    model_path, plot_path = tmp_path / "m.npz", tmp_path / "loss.png"
    rc, out, err = run(capsys, "train", "--data", "xor", "--epochs", "100000000",
                       "--stop-at-accuracy", "0", "--save", model_path, "--plot", plot_path)
    assert rc == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert "(interrupted)" in out
    epochs = int(re.search(r"epochs run:\s+([\d,]+)", out).group(1).replace(",", ""))
    assert 0 < epochs < 100_000_000
    assert fb.load(model_path).epochs_trained == epochs
    assert not plot_path.exists()


# ------------------------------------------------------------------ compare
def test_compare_backends_agree(capsys):
    rc, out, err = run(capsys, "compare", "--data", "xor", "--epochs", "30")
    assert rc == 0, err
    diff = float(re.search(r"max \|weight difference\|: (\S+)", out).group(1))
    assert diff < 1e-10
    assert "epochs run: numba 30, numpy 30 (the same)" in out
    assert re.search(r"speedup numba/numpy: [\d.]+x", out)


def test_compare_with_batchnorm_and_dropout(capsys):
    rc, out, err = run(capsys, "compare", "--data", "digits", "--epochs", "1")
    assert rc == 0, err
    assert float(re.search(r"max \|weight difference\|: (\S+)", out).group(1)) < 1e-10
    assert float(re.search(r"running-statistics difference\|: (\S+)", out).group(1)) < 1e-10


def test_compare_fails_when_the_tolerance_is_not_met(capsys):
    # float32 on the two backends rounds differently; a tolerance of 1e-300 cannot hold
    rc, out, err = run(capsys, "compare", "--data", "xor", "--epochs", "20",
                       "--dtype", "float32", "--tol", "1e-300")
    assert rc == 1
    assert err.startswith("fastbp: error: the backends disagree")


# ------------------------------------------------------------------ sweep
def test_sweep_writes_one_png(capsys, tmp_path):
    plot_path = tmp_path / "figs" / "sweep.png"
    rc, out, err = run(capsys, "sweep", "--data", "xor", "--lrs", "0.1,0.5,1.0",
                       "--epochs", "200", "--plot", plot_path)
    assert rc == 0, err
    assert is_png(plot_path)
    finals = [float(v) for v in re.findall(r"final loss (\S+) after 200 epochs", out)]
    assert len(finals) == 3
    firsts = set(re.findall(r"first-epoch loss (\S+),", out))
    assert len(firsts) == 1                   # every lr starts from the same weights
    assert list(tmp_path.rglob("*")) == [plot_path.parent, plot_path]


def test_sweep_keeps_going_past_a_diverging_lr(capsys, tmp_path):
    plot_path = tmp_path / "sweep.png"
    rc, out, err = run(capsys, "sweep", "--activation", "relu", "--output-activation",
                       "identity", "--lrs", "0.1,1e6", "--epochs", "30", "--plot", plot_path)
    assert rc == 0, err
    assert "diverged" in out
    assert is_png(plot_path)


# ------------------------------------------------------------------ bad input
BAD = {
    "unknown data set": ["train", "--data", "mnist"],
    "negative lr": ["train", "--lr", "-0.1"],
    "lr not a number": ["train", "--lr", "fast"],
    "epochs 0": ["train", "--epochs", "0"],
    "bad --sizes string": ["train", "--sizes", "2,four,1"],
    "one size only": ["train", "--sizes", "2"],
    "sizes vs features": ["train", "--sizes", "3,4,1"],
    "sizes vs classes": ["train", "--data", "digits", "--sizes", "64,32,3"],
    "missing cifar path": ["train", "--data", "cifar10"],
    "cifar path not there": ["train", "--data", "cifar10", "--cifar-path", "no/such/file.bin"],
    "wrong backend": ["train", "--backend", "cuda"],
    "wrong dtype": ["train", "--dtype", "float16"],
    "unknown option": ["train", "--learning-rate", "0.1"],
    "bce without sigmoid": ["train", "--loss", "bce", "--output-activation", "identity"],
    "batchnorm batch 1": ["train", "--data", "digits", "--batch-size", "1"],
    "compare negative epochs": ["compare", "--epochs", "-3"],
    "sweep bad lrs": ["sweep", "--lrs", "0.1,zero"],
    "sweep negative lr": ["sweep", "--lrs", "0.1,-1"],
}


@pytest.mark.parametrize("argv", list(BAD.values()), ids=list(BAD))
def test_bad_input_is_one_line_exit_2_and_writes_nothing(capsys, tmp_path, argv):
    argv = list(argv)
    if argv[0] == "train":
        argv += ["--save", tmp_path / "m.npz", "--plot", tmp_path / "p.png"]
    elif argv[0] == "sweep":
        argv += ["--plot", tmp_path / "sweep.png"]
    rc, out, err = run(capsys, *argv)
    assert_one_line_error(rc, err)
    assert list(tmp_path.iterdir()) == []


def test_save_into_a_folder_is_refused_before_training(capsys, tmp_path):
    rc, out, err = run(capsys, "train", "--save", tmp_path)
    assert_one_line_error(rc, err)
    assert "folder" in err and out == ""


def test_demo_out_must_be_a_folder(capsys, tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    rc, out, err = run(capsys, "demo", "--quick", "--out", f)
    assert_one_line_error(rc, err)
    assert list(tmp_path.iterdir()) == [f]


def test_bench_is_a_fastbp_command(capsys):
    from fastbp.cli import main
    with pytest.raises(SystemExit) as info:
        main(["bench", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "--workloads" in out and "--quick" in out
