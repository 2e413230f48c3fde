"""``fastbp train`` under Ctrl-C and SIGTERM: stop promptly, save what was trained, 130 / 143."""
import os
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import fastbp as fb
from fastbp import cli


def run(capsys, *argv):
    rc = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FASTBP_", "NUMBA_CACHE"))}
    root = os.path.dirname(os.path.dirname(os.path.abspath(fb.__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def _signal_after_start(args, env, cwd, signum, delay):
    """Start ``fastbp args``; ``delay`` s after it prints its training line, send ``signum``.

    Returns (returncode, stdout, stderr, seconds from the signal to the exit).
    """
    proc = subprocess.Popen([sys.executable, "-m", "fastbp", *map(str, args)], env=env,
                            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("training:"):
                break
        time.sleep(delay)
        sent = time.perf_counter()
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
        took = time.perf_counter() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, "".join(lines) + out, err, took


@pytest.mark.parametrize("signum,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)],
                         ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_the_warm_up_compile_stops_at_once(tmp_path, signum, code):
    """Item: Ctrl-C 3 s into a 20 s compile was ignored and every epoch ran (exit 0)."""
    env = _env(FASTBP_CACHE_DIR=str(tmp_path / "empty-cache"))       # a cold compile
    out_file = tmp_path / "m.npz"
    rc, out, err, took = _signal_after_start(
        ["train", "--data", "digits", "--epochs", "1000", "--save", out_file],
        env, tmp_path, signum, delay=0.5)
    assert rc == code, (out, err)
    assert took < 10, f"{took:.1f} s from the signal to the exit"
    assert "before training; nothing saved" in err and "Traceback" not in err, err
    assert "epochs run" not in out
    assert not out_file.exists()


@pytest.fixture(scope="module")
def warm_cache(tmp_path_factory):
    """A cache folder holding the kernels of the xor runs below."""
    path = tmp_path_factory.mktemp("signals-cache")
    subprocess.run([sys.executable, "-m", "fastbp", "train", "--data", "xor", "--epochs", "1"],
                   env=_env(FASTBP_CACHE_DIR=str(path)), check=True, capture_output=True,
                   timeout=900)
    return path


def test_sigterm_saves_the_model_and_exits_143(tmp_path, warm_cache):
    """Item: SIGTERM killed `fastbp train` and the run was lost."""
    out_file = tmp_path / "m.npz"
    rc, out, err, took = _signal_after_start(
        ["train", "--data", "xor", "--epochs", "100000000", "--stop-at-accuracy", "0",
         "--save", out_file], _env(FASTBP_CACHE_DIR=str(warm_cache)), tmp_path,
        signal.SIGTERM, delay=2.0)
    assert rc == 143, err
    assert "terminated" in err and str(out_file) in err and "Traceback" not in err
    epochs = int(re.search(r"epochs run:\s+([\d,]+)", out).group(1).replace(",", ""))
    model = fb.load(out_file)
    assert 0 < model.epochs_trained == epochs < 100_000_000
    assert np.isfinite(model.params).all()
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]


@pytest.fixture
def senders():
    """Threads that send signals; the test waits for them (see :func:`run_settled`)."""
    threads = []
    yield threads
    for t in threads:
        t.join()


def run_settled(capsys, threads, *argv):
    """``run``, then wait until every signal sent has been handled.

    A signal the command did not handle would surface as KeyboardInterrupt
    here: inside the command it is a failure, after it a late stray.
    """
    rc = None
    try:
        rc = cli.main([str(a) for a in argv])
        for t in threads:
            t.join()
        time.sleep(0.2)                 # let a pending handler run here, not in the asserts
    except KeyboardInterrupt:
        if rc is None:
            raise AssertionError("Ctrl-C escaped the command") from None
    out, err = capsys.readouterr()
    return rc, out, err


def _interrupt_the_long_fit(monkeypatch, threads, times=1, gap=0.0):
    """Send Ctrl-C ``times`` times (``gap`` s apart) 0.3 s into the long fit of the run."""
    real_fit = fb.Sequential.fit

    def ctrl_c():
        for k in range(times):
            time.sleep(0.3 if k == 0 else gap)
            os.kill(os.getpid(), signal.SIGINT)

    def fit(self, *args, **kwargs):
        if kwargs.get("epochs", 1) > 1000:     # the real run, not the warm-up
            threads.append(threading.Thread(target=ctrl_c))
            threads[-1].start()
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(fb.Sequential, "fit", fit)


XOR_LONG = ("train", "--data", "xor", "--epochs", "100000000", "--stop-at-accuracy", "0")


def test_a_second_ctrl_c_during_the_save_waits_for_it(capsys, tmp_path, monkeypatch, senders):
    """Item: a quick double Ctrl-C ended with no model."""
    _interrupt_the_long_fit(monkeypatch, senders)
    real_save = fb.Sequential.save

    def slow_save(self, path):                 # the second Ctrl-C lands inside the save
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.5)
        real_save(self, path)

    monkeypatch.setattr(fb.Sequential, "save", slow_save)
    out_file = tmp_path / "m.npz"
    rc, out, err = run_settled(capsys, senders, *XOR_LONG, "--save", out_file)
    assert rc == 130, err
    assert "Traceback" not in err
    epochs = int(re.search(r"epochs run:\s+([\d,]+)", out).group(1).replace(",", ""))
    assert fb.load(out_file).epochs_trained == epochs > 0


def test_a_quick_double_ctrl_c_during_fit_still_saves(capsys, tmp_path, monkeypatch, senders):
    _interrupt_the_long_fit(monkeypatch, senders, times=2, gap=0.002)
    out_file = tmp_path / "m.npz"
    rc, out, err = run_settled(capsys, senders, *XOR_LONG, "--save", out_file)
    assert rc == 130, err
    model = fb.load(out_file)
    assert model.epochs_trained > 0 and np.isfinite(model.params).all()


def test_ctrl_c_while_plotting_still_writes_the_model(capsys, tmp_path, monkeypatch):
    """Item: Ctrl-C after training, while --plot renders, exited 130 without the --save file."""
    from fastbp import plot

    def slow_plot(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(2.0)                        # interrupted here
        raise AssertionError("the Ctrl-C did not stop the plot")

    monkeypatch.setattr(plot, "plot_loss", slow_plot)
    out_file, plot_file = tmp_path / "m.npz", tmp_path / "loss.png"
    rc, out, err = run_settled(capsys, [], "train", "--data", "xor", "--epochs", "20",
                               "--stop-at-accuracy", "0", "--save", out_file, "--plot", plot_file)
    assert rc == 130, err
    assert "while plotting" in err and "Traceback" not in err
    assert fb.load(out_file).epochs_trained == 20
    assert not plot_file.exists()


def test_handlers_are_restored_after_train(capsys):
    before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    rc, out, err = run(capsys, "train", "--data", "xor", "--epochs", "2", "--stop-at-accuracy",
                       "0")
    assert rc == 0, err
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
