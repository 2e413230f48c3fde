"""fastbp's kernel caches: no planted code runs, no stale kernel answers, read-only installs work.

Most cases run child processes on a copy of the fastbp package (so that a
test can change a source file, or make the install read-only) with their
own HOME, TMPDIR and cache folders. Where the tests run as root, "another
local user" is real: files are handed to uid 65534 with ``os.chown``, and
a symbolic link stands in for it elsewhere. A read-only install is one
whose ``__pycache__`` folders cannot be created (a file holds each name: this
stops root as well as any user).
"""
import hashlib
import json
import os
import pickle
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap

import numpy as np
import pytest

import fastbp as fb

ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
OTHER = 65534                       # "nobody": the second local user
PKG = os.path.dirname(os.path.abspath(fb.__file__))


@pytest.fixture
def world():
    """A folder every user can read (pytest's tmp_path is root-only), removed afterwards."""
    path = tempfile.mkdtemp(prefix="fastbp-cache-test-")
    os.chmod(path, 0o755)
    shutil.copytree(PKG, os.path.join(path, "src", "fastbp"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _dir(*parts, mode=0o755, owner=None):
    path = os.path.join(*parts)
    os.makedirs(path, exist_ok=True)
    os.chmod(path, mode)
    if owner is not None:
        os.chown(path, owner, owner)
    return path


def _read_only(world):
    """Nothing can be cached inside the install: each ``__pycache__`` name is taken by a file."""
    for root, dirs, files in os.walk(os.path.join(world, "src")):
        if "__init__.py" in files:
            with open(os.path.join(root, "__pycache__"), "w") as f:
                f.write("not a folder\n")


def _env(world, **extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FASTBP_", "NUMBA_CACHE", "XDG_CACHE"))}
    env.update(PYTHONPATH=os.path.join(world, "src"), PYTHONDONTWRITEBYTECODE="1",
               HOME=_dir(world, "home"), TMPDIR=_dir(world, "tmp", mode=0o1777))
    env.update(extra)
    return env


def _run(code, env, cwd, args=()):
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], env=env,
                          cwd=cwd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    return proc


def _append(world, relpath, text):
    path = os.path.join(world, "src", "fastbp", relpath)
    os.chmod(path, 0o644)
    with open(path, "a") as f:
        f.write(text)


# ------------------------------------------------------------------ 1. planted code
FIT = """
    import json, sys, numpy as np, fastbp as fb
    X, y = fb.datasets.generate_xor_easy()
    m = fb.MLP([2, 3, 1], seed=0)
    m.fit(X, y, epochs=2, lr=0.1, batch_size=1, shuffle=False)
    print(json.dumps(m.params.tolist()))
"""


def _generated_name_and_text():
    """The file name fastbp 0.1 gave the per-sample kernel of FIT's network, and its text."""
    from fastbp import plan as P
    from fastbp.kernels import specialize, specialize_online

    plan = fb.MLP([2, 3, 1], seed=0)._workspace(1)["plan"]
    text = specialize_online.source(plan, P.MSE, P.SGD, "float64")
    digest = hashlib.sha256(f"{getattr(specialize, '_VERSION', 2)}\n{text}".encode())
    return f"fastbp_online_{digest.hexdigest()[:20]}", text


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('unpickled')",))


def _plant(folder, how, marker):
    """What a second user leaves in ``folder`` for the victim to run."""
    name, text = _generated_name_and_text()
    evil = f"open({marker!r}, 'w').write('executed')\n"
    with open(os.path.join(folder, name + ".py"), "w") as f:
        f.write(text if how == "pickle" else evil + text)
    cache = _dir(folder, "__pycache__", mode=0o777, owner=OTHER if ROOT else None)
    line = text.splitlines().index("def train_epochs_online(net, t, opt, data, bufs, run):")
    for fn, lineno in (("train_epochs_online", line), ("correct_one", 8)):
        index = f"{name}.{fn}-{lineno}.py{sys.version_info[0]}{sys.version_info[1]}.nbi"
        with open(os.path.join(cache, index), "wb") as f:
            pickle.dump(_Payload(marker), f)
    for root, dirs, files in os.walk(folder):
        for entry in dirs + files:
            os.chmod(os.path.join(root, entry), 0o777)
            if ROOT:
                os.chown(os.path.join(root, entry), OTHER, OTHER)


@pytest.mark.parametrize("how", ["source", "pickle"])
def test_nothing_another_user_planted_runs(world, how):
    """Item: planted code. The victim's HOME cannot hold a cache, so fastbp looks in TMPDIR,
    where another user prepared both the old shared folder and the victim's private one."""
    env = _env(world, HOME="/dev/null")            # ~/.cache cannot be created
    marker = os.path.join(world, "planted-code-ran")
    old = _dir(env["TMPDIR"], "fastbp-kernels", mode=0o777, owner=OTHER if ROOT else None)
    _plant(old, how, marker)
    uid = os.geteuid()
    private = os.path.join(env["TMPDIR"], f"fastbp-{uid}")
    if ROOT:                                       # the victim's folder, made by the other user
        _dir(private, mode=0o777, owner=OTHER)
        _plant(_dir(private, "planted", mode=0o777, owner=OTHER), how, marker)
    else:                                          # a link to the other user's folder
        os.symlink(old, private)
    proc = _run(FIT, env, world)
    assert not os.path.exists(marker), "code planted by another user ran"
    got = np.array(json.loads(proc.stdout))
    m = fb.MLP([2, 3, 1], seed=0)
    X, y = fb.datasets.generate_xor_easy()
    m.fit(X, y, epochs=2, lr=0.1, batch_size=1, shuffle=False)
    assert np.array_equal(got, m.params)
    notes = [ln for ln in proc.stderr.splitlines() if ln.startswith("fastbp:")]
    assert len(notes) == 1 and "without a disk cache" in notes[0], proc.stderr


def test_private_folder_rules(tmp_path):
    from fastbp import _cache

    mine = tmp_path / "mine"
    assert _cache.private_dir(str(mine)) is None
    assert stat.S_IMODE(mine.stat().st_mode) == 0o700
    opened = tmp_path / "opened"
    opened.mkdir(mode=0o777)
    os.chmod(opened, 0o777)
    assert _cache.private_dir(str(opened)) is None          # ours: closed to 0700, then used
    assert stat.S_IMODE(opened.stat().st_mode) == 0o700
    os.symlink(mine, tmp_path / "link")
    assert "not a folder" in _cache.private_dir(str(tmp_path / "link"))
    (tmp_path / "file").write_text("x")
    assert "not a folder" in _cache.private_dir(str(tmp_path / "file"))
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)                                  # writable by all, no sticky bit
    assert "rename" in _cache.private_dir(str(shared / "fastbp"))
    if ROOT:
        theirs = tmp_path / "theirs"
        theirs.mkdir(mode=0o700)
        os.chown(theirs, OTHER, OTHER)
        assert "another user" in _cache.private_dir(str(theirs))


def test_generated_source_on_disk_is_verified_never_executed(tmp_path, monkeypatch):
    from fastbp import _cache

    monkeypatch.setenv("FASTBP_CACHE_DIR", str(tmp_path / "c"))
    text = "VALUE = 41 + 1\n"
    mod = _cache.load_generated("fastbp_test_generated", text)
    assert mod.VALUE == 42
    (path,) = (tmp_path / "c").rglob("fastbp_test_generated.py")
    marker = tmp_path / "ran"
    path.write_text(f"open({str(marker)!r}, 'w').write('x')\nVALUE = 0\n")
    mod = _cache.load_generated("fastbp_test_generated", text)
    assert mod.VALUE == 42 and not marker.exists()
    assert path.read_text() == text                           # put back as generated
    sys.modules.pop("fastbp_test_generated", None)


# ------------------------------------------------------------------ 2-4. stale kernels
ACT = """
    import json, numpy as np
    from fastbp import kernels as K
    from fastbp._config import ACTIVATIONS
    x = np.linspace(-2.0, 2.0, 12).reshape(3, 4)
    out = np.empty_like(x)
    K.act_forward(x, ACTIVATIONS["relu"], out)
    print(json.dumps(out.tolist()))
"""
SWAP = "\nRELU, TANH = TANH, RELU   # the kernels' codes change; ACTIVATIONS keeps the old\n"


@pytest.mark.parametrize("where", ["NUMBA_CACHE_DIR", "read-only install"])
def test_a_changed_constant_elsewhere_is_never_stale(world, where):
    """Item: stale machine code. A kernel reads a constant of _config.py; after it changes,
    a process with a warm cache must run the new code, wherever the cache lives."""
    x = np.linspace(-2.0, 2.0, 12).reshape(3, 4)
    if where == "NUMBA_CACHE_DIR":
        env = _env(world, NUMBA_CACHE_DIR=_dir(world, "numba-cache"))
    else:                                          # Numba would pick ~/.cache/numba
        env = _env(world)
        _read_only(world)
    first = np.array(json.loads(_run(ACT, env, world).stdout))
    assert np.array_equal(first, np.maximum(x, 0))
    _append(world, "_config.py", SWAP)
    again = np.array(json.loads(_run(ACT, env, world).stdout))
    np.testing.assert_allclose(again, np.tanh(x), rtol=1e-12,
                               err_msg="a warm cache ran kernels compiled before the change")


DROPOUT_FIT = """
    import json, numpy as np, fastbp as fb
    X, y = fb.datasets.generate_xor_easy()
    out = {}
    for backend in ("numba", "numpy"):
        m = fb.Sequential([fb.Dense(2, 8), fb.Tanh(), fb.Dropout(0.3), fb.Dense(8, 1),
                           fb.Sigmoid()], backend=backend, seed=0)
        m.fit(X, y, epochs=2, lr=0.1, batch_size=1, shuffle=False)
        out[backend] = m.params.tolist()
    print(json.dumps(out))
"""


def test_generated_kernel_follows_a_change_in_rng(world):
    """Item: the generated per-sample kernel goes stale after a change in kernels/rng.py."""
    env = _env(world, FASTBP_CACHE_DIR=_dir(world, "fastbp-cache", mode=0o700))
    before = json.loads(_run(DROPOUT_FIT, env, world).stdout)
    np.testing.assert_allclose(before["numba"], before["numpy"], rtol=0, atol=1e-12)
    change = "\nGOLDEN_GAMMA = np.uint64(0x632BE59BD9B4E019)   # other dropout masks\n"
    _append(world, "kernels/rng.py", change)
    _append(world, "reference/rng.py", change)
    after = json.loads(_run(DROPOUT_FIT, env, world).stdout)
    assert not np.allclose(after["numpy"], before["numpy"]), "the change made no difference"
    np.testing.assert_allclose(after["numba"], after["numpy"], rtol=0, atol=1e-12,
                               err_msg="the per-sample kernel kept the old dropout masks")


MSE = """
    import numpy as np
    from fastbp import kernels as K
    rng = np.random.default_rng(1)
    p, t = rng.standard_normal((1000, 7)), rng.standard_normal((1000, 7))
    print(repr(K.mse_loss(p, t, False, False, np.empty_like(p))))
"""


def test_fastmath_is_part_of_the_cache_key(world):
    """Item: a default run on a cache filled with FASTBP_FASTMATH=1 ran the fastmath code."""
    env = _env(world)
    fast = _run(MSE, dict(env, FASTBP_FASTMATH="1"), world).stdout
    default = _run(MSE, env, world).stdout
    fresh = _run(MSE, dict(env, FASTBP_NUMBA_CACHE="0"), world).stdout
    assert fast != fresh, "fastmath gave the same bits here: this case shows nothing"
    assert default == fresh, "a default run used machine code compiled with fastmath"
