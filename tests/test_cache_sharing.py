"""A cache folder shared by processes that start at once; read-only installs; the compile notice."""
import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

import fastbp as fb
from test_cache import OTHER, ROOT, _dir, _env, _read_only, _run, world  # noqa: F401

# Both dtypes, in an order that differs between processes: the processes
# compile different signatures of the same kernels and save them into the
# same index files at the same moment.
WORK = """
    import hashlib, json, sys, numpy as np, fastbp as fb
    from fastbp import kernels as K
    from numba.core import event
    compiled = []
    class Count(event.Listener):
        def on_start(self, ev): pass
        def on_end(self, ev): compiled.append(1)
    event.register("numba:compile", Count())
    X, y = fb.datasets.generate_xor_easy()
    out = {}
    order = ("float64", "float32") if int(sys.argv[1]) % 2 == 0 else ("float32", "float64")
    for dtype in order:
        m = fb.MLP([2, 3, 1], seed=0, dtype=dtype)
        m.fit(X, y, epochs=3, lr=0.1, batch_size=1, shuffle=False)
        p = np.random.default_rng(1).standard_normal((50, 3)).astype(dtype)
        loss = K.mse_loss(p, p[::-1].copy(), False, True, np.empty_like(p))
        out[dtype] = hashlib.sha256(m.params.tobytes()).hexdigest() + " " + repr(float(loss))
    print(json.dumps({"out": out, "compiled": len(compiled)}))
"""


def test_four_processes_start_cold_on_one_cache_three_times(world):
    expected = None
    for round_ in range(3):
        env = _env(world, NUMBA_CACHE_DIR=_dir(world, f"shared-{round_}"))
        procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(WORK), str(i)],
                                  env=env, cwd=world, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for i in range(4)]
        results = []
        for p in procs:
            out, err = p.communicate(timeout=900)
            assert p.returncode == 0 and "Traceback" not in err, err
            assert "compiling" not in err            # the notice never goes into a pipe
            results.append(json.loads(out))
        warm = json.loads(_run(WORK, env, world, args=("1",)).stdout)
        assert warm["compiled"] == 0, "the second start compiled again"
        outs = [r["out"] for r in results + [warm]]
        expected = expected or outs[0]
        assert all(o == expected for o in outs), outs


FIT_PREDICT = """
    import numpy as np, fastbp as fb
    X, y = fb.datasets.generate_xor_easy()
    m = fb.MLP([2, 3, 1], seed=0)
    m.fit(X, y, epochs=2, lr=0.1, batch_size=1, shuffle=False)
    print(repr(float(m.params.sum())))
"""


def test_read_only_install_with_unwritable_home_works(world):
    """Item: 'cannot cache function ...: no locator available' at the first model."""
    _read_only(world)
    env = _env(world, HOME="/dev/null")            # no ~/.cache either
    proc = _run(FIT_PREDICT, env, world)
    cached = os.path.join(env["TMPDIR"], f"fastbp-{os.geteuid()}")
    assert os.path.isdir(cached) and os.listdir(cached), "nothing cached in TMPDIR"
    m = fb.MLP([2, 3, 1], seed=0)
    X, y = fb.datasets.generate_xor_easy()
    m.fit(X, y, epochs=2, lr=0.1, batch_size=1, shuffle=False)
    assert float(proc.stdout) == m.params.sum()


def test_read_only_install_without_any_private_folder_trains_from_the_cli(world):
    """No cache anywhere: `fastbp train` compiles without one, says so in one line, exit 0."""
    _read_only(world)
    env = _env(world, HOME="/dev/null")
    taken = os.path.join(env["TMPDIR"], f"fastbp-{os.geteuid()}")
    if ROOT:
        _dir(taken, mode=0o700, owner=OTHER)        # another user's folder under that name
    else:
        os.symlink(world, taken)
    proc = subprocess.run([sys.executable, "-m", "fastbp", "train", "--data", "xor",
                           "--epochs", "3", "--stop-at-accuracy", "0"], env=env, cwd=world,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "without a disk cache" in lines[0], proc.stderr
    assert "epochs run:  3" in proc.stdout


def _on_a_terminal(args, env, cwd):
    """Run ``python args`` with stderr on a pseudo-terminal; (returncode, stderr text)."""
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, *args], env=env, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=slave, text=True)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:                               # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    proc.communicate(timeout=900)
    os.close(master)
    return proc.returncode, b"".join(chunks).decode(errors="replace").replace("\r", "")


NOTICE_CHILD = """
    import sys, fastbp._notice as notice
    notice.DELAY = 0.05                 # any real first compile takes longer than this
    from fastbp.cli import main
    sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("quiet", [False, True], ids=["terminal", "quiet"])
def test_one_compile_notice_on_a_terminal_none_with_quiet(world, quiet):
    env = _env(world, FASTBP_CACHE_DIR=_dir(world, f"cache-{quiet}", mode=0o700))
    args = ["train", "--data", "xor", "--epochs", "2", "--stop-at-accuracy", "0"]
    rc, err = _on_a_terminal(["-c", textwrap.dedent(NOTICE_CHILD), *args,
                              *(["--quiet"] if quiet else [])], env, world)
    assert rc == 0, err
    notices = [ln for ln in err.splitlines() if "compiling" in ln]
    if quiet:
        assert not notices, err
    else:
        assert len(notices) == 1, err
        assert notices[0].startswith("fastbp: compiling ") and "cached in" in notices[0]
    # a second run loads everything: nothing compiles, nothing is said
    t0 = time.perf_counter()
    rc, err = _on_a_terminal(["-c", textwrap.dedent(NOTICE_CHILD), *args], env, world)
    assert rc == 0 and "compiling" not in err, err
    assert time.perf_counter() - t0 < 120
