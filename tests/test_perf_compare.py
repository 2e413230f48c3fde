"""scripts/perf-compare: its statistics, and the proof that it catches a slowdown.

The slow test makes a scratch repository of this checkout, commits a ~1.5x
slowdown of the per-sample kernel and, separately, of the mini-batch kernel,
and shows ``perf-compare --quick`` exits 1 naming the slowed benchmarks; and
that a commit changing only a comment passes, three times in a row.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from perflib import stats  # noqa: E402
from perflib.suite import discover  # noqa: E402


def _rounds(ratio, rounds=3, n=8, noise=0.05, seed=0, round_bias=None):
    """Synthetic paired samples: base ~ 10 ms with noise, head = ratio x base."""
    g = np.random.default_rng(seed)
    out = []
    for r in range(rounds):
        bias = 1.0 if round_bias is None else round_bias[r]
        load = 1 + np.abs(g.normal(0, 0.3, n))          # shared load, cancels in pairs
        base = 0.01 * load * (1 + g.normal(0, noise, n))
        head = 0.01 * load * ratio * bias * (1 + g.normal(0, noise, n))
        out.append(list(zip(base, head)))
    return out


def test_summarize_flags_a_real_slowdown_only():
    slow = stats.summarize(_rounds(1.5), factor=1.2)
    assert slow["verdict"] == "slower" and slow["significant"]
    assert 1.4 < slow["ratio"] < 1.6
    for seed in range(20):                               # A/A: never an alarm
        same = stats.summarize(_rounds(1.0, seed=seed), factor=1.2)
        assert same["verdict"] == "same", same
    fast = stats.summarize(_rounds(0.6), factor=1.2)
    assert fast["verdict"] == "faster"


def test_summarize_needs_every_round_to_agree():
    # one pair of processes 1.6x apart, the others equal: not a significant change
    r = stats.summarize(_rounds(1.0, round_bias=[1.6, 1.0, 0.9]), factor=1.2)
    assert not r["significant"] and r["verdict"] == "same"
    assert r["hi"] > 1.4 and r["lo"] < 1.0


def test_suite_gates():
    ids = {b.id: b.gate() for b in discover(ROOT / "asv_bench" / "benchmarks")}
    quick = sorted(i for i, g in ids.items() if g == "quick")
    assert any(i.startswith("bench_online.OnlineEpochs.time_epochs") for i in quick)
    assert any(i.startswith("bench_minibatch.MiniBatchEpoch.time_epoch") for i in quick)
    assert all("numpy" not in i for i, g in ids.items() if g)     # never the reference
    assert not any(g for i, g in ids.items() if ".track_" in i)   # only timings gate


# --------------------------------------------------------------------------- the proof
# Appended to fastbp/kernels/__init__.py: every call of the chosen kernel spins for
# half of its own duration afterwards, a 1.5x slowdown of that kernel whatever its code.
_SLOW = '''

def _slowed(kernel, factor=1.5):
    import time as _time

    def slowed(*args, **kwargs):
        t0 = _time.perf_counter()
        out = kernel(*args, **kwargs)
        end = _time.perf_counter() + (factor - 1.0) * (_time.perf_counter() - t0)
        while _time.perf_counter() < end:
            pass
        return out
    return slowed

'''
SLOWDOWNS = {
    # per-sample: the kernel select_online returns (batch_size=1)
    "per-sample": _SLOW + ("_select_online = select_online\n"
                           "def select_online(*args, **kwargs):\n"
                           "    return _slowed(_select_online(*args, **kwargs))\n"),
    # mini-batch: the whole-run kernel, generated for the network (select_batch) or not
    "mini-batch": _SLOW + ("import types as _types\n"
                           "_select_batch = select_batch\n"
                           "def select_batch(*args, **kwargs):\n"
                           "    m = _select_batch(*args, **kwargs)\n"
                           "    return m and _types.SimpleNamespace(\n"
                           "        **dict(vars(m), train_epochs=_slowed(m.train_epochs)))\n"
                           "train_epochs = _slowed(train_epochs)\n"),
}


def _git(repo, *args):
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                   env=dict(os.environ, GIT_AUTHOR_NAME="fastbp", GIT_AUTHOR_EMAIL="ci@fastbp",
                            GIT_COMMITTER_NAME="fastbp", GIT_COMMITTER_EMAIL="ci@fastbp"))


def _commit(repo, message):
    _git(repo, "commit", "-q", "-am", message)
    return subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()


def _scratch_repo(dest):
    """A git repository holding this checkout's files (tracked and new, not ignored)."""
    files = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others",
                            "--exclude-standard"], check=True, capture_output=True,
                           text=True).stdout.split("\0")
    for f in filter(None, files):
        src = ROOT / f
        if src.is_file():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / f)
    _git(dest, "init", "-q")
    _git(dest, "add", "-A")
    return _commit(dest, "base")


def _commit_change(repo, base, name, text):
    _git(repo, "checkout", "-q", "--detach", base)
    with open(repo / "fastbp" / "kernels" / "__init__.py", "a") as f:
        f.write(text)
    return _commit(repo, name)


def _perf_compare(repo, work, base, head, tag):
    out = work / f"{tag}.json"
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "perf-compare"), base, head,
                           "--quick", "--repo", str(repo), "--workdir", str(work / "exports"),
                           "--json", str(out), "--log", str(work / "workers.log")],
                          capture_output=True, text=True, timeout=1800)
    print(proc.stdout[-4000:], proc.stderr[-2000:])
    return proc, (json.loads(out.read_text()) if out.exists() else None)


@pytest.mark.slow
def test_perf_compare_catches_slowdowns_and_passes_comment_changes(tmp_path):
    if shutil.which("git") is None:
        pytest.fail("git is needed to make commits")
    repo = tmp_path / "repo"
    repo.mkdir()
    base = _scratch_repo(repo)
    for kind, expect in (("per-sample", "bench_online.OnlineEpochs.time_epochs"),
                         ("mini-batch", "bench_minibatch.MiniBatchEpoch.time_epoch")):
        head = _commit_change(repo, base, f"slow {kind}", SLOWDOWNS[kind])
        proc, res = _perf_compare(repo, tmp_path, base, head, kind)
        assert proc.returncode == 1, proc.stdout
        assert res["slower"], proc.stdout
        assert all(i.startswith(expect) for i in res["slower"]), res["slower"]
        assert expect in proc.stdout.split("SLOWER by more than")[1]
        assert "took" in proc.stdout

    comment = _commit_change(repo, base, "comment", "\n# a comment, nothing else\n")
    for attempt in range(3):
        proc, res = _perf_compare(repo, tmp_path, base, comment, f"same-{attempt}")
        assert proc.returncode == 0, proc.stdout
        assert res["slower"] == [] and res["broken"] == []
        assert len(res["results"]) >= 7
