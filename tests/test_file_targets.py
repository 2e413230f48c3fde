"""What load reads and what save replaces (FIFOs, devices, symlinks, read-only files).

Contract: load opens regular files only and reads at most what the file
holds before the digest is checked; a description nested too deeply is a
ValueError. save never replaces anything but a regular file; it follows a
symbolic link to the file it names (the link stays) and refuses a dangling
one; a write-protected file is refused unless the user may write it anyway
(root), as ``cp`` does.
"""
import json
import os
import socket
import stat
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastbp as fb
from fastbp import io as fio

_RUN = textwrap.dedent("""
    import resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (1 << 31, 1 << 31))   # a runaway read fails fast
    import fastbp as fb
    try:
        fb.load(sys.argv[1])
    except ValueError as exc:
        print("ValueError:", exc)
    except BaseException as exc:
        print(type(exc).__name__, exc)
""")


def _load_in_child(path, timeout=120):
    """``fb.load(path)`` in a child with 2 GiB of address space and a timeout."""
    try:
        proc = subprocess.run([sys.executable, "-c", _RUN, str(path)], capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout"
    return proc.stdout.strip() or proc.stderr.strip()[-500:]


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_load_refuses_a_device():
    out = _load_in_child("/dev/zero")                  # main: reads until memory runs out
    assert out.startswith("ValueError:") and "not a regular file" in out, out


def test_load_refuses_a_fifo(tmp_path):
    fifo = tmp_path / "model.npz"
    os.mkfifo(fifo)
    out = _load_in_child(fifo, timeout=60)             # main: hangs
    assert out.startswith("ValueError:") and "not a regular file" in out, out


def _good(tmp_path):
    model = fb.MLP([2, 3, 1], backend="numpy")
    path = tmp_path / "good.npz"
    model.save(path)
    with np.load(path, allow_pickle=False) as z:
        return model, path, {k: z[k] for k in z.files}


def _write(path, members, meta_text):
    members = dict(members, meta=np.array(meta_text))
    members["digest"] = np.array(fio._digest(meta_text, members))
    np.savez(path, **members)
    return path


@pytest.mark.parametrize("depth", [100, 100_000])
def test_deeply_nested_description_is_a_value_error(tmp_path, depth):
    _, _, members = _good(tmp_path)
    meta = json.loads(str(members["meta"]))
    text = json.dumps(meta)[:-1] + ', "extra": ' + "[" * depth + "]" * depth + "}"
    path = _write(tmp_path / "deep.npz", members, text)
    with pytest.raises(ValueError, match="not a readable fastbp model file.*nests deeper"):
        fb.load(path)                                  # main: RecursionError (100000)


@pytest.mark.parametrize("kind", ["fifo", "socket"])
def test_save_refuses_special_files(tmp_path, kind):
    target = tmp_path / "target"
    if kind == "fifo":
        os.mkfifo(target)
    else:
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(target))
    model = fb.MLP([2, 3, 1], backend="numpy")
    with pytest.raises(ValueError, match="not a regular file"):
        model.save(target)                             # main: replaced by a regular file
    mode = os.lstat(target).st_mode
    assert stat.S_ISFIFO(mode) if kind == "fifo" else stat.S_ISSOCK(mode)
    assert sorted(os.listdir(tmp_path)) == ["target"]
    X, y = fb.datasets.generate_xor_easy()
    with pytest.raises(ValueError, match="checkpoint"):
        model.fit(X, y, epochs=1, checkpoint=target)
    assert model.epochs_trained == 0


def test_save_refuses_a_device_node_without_touching_it(tmp_path):
    """A device node (made here, so nothing real is at risk) is never replaced."""
    if os.geteuid() != 0:
        pytest.skip("making a device node needs root")
    dev = tmp_path / "null"
    os.mknod(dev, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    with pytest.raises(ValueError, match="not a regular file"):
        fb.MLP([2, 3, 1], backend="numpy").save(dev)
    assert stat.S_ISCHR(os.lstat(dev).st_mode)


def test_save_through_a_symlink_replaces_its_target(tmp_path):
    model, path, _ = _good(tmp_path)
    real = tmp_path / "real.npz"
    real.write_bytes(b"old")
    link = tmp_path / "link.npz"
    link.symlink_to(real)
    model.save(link)
    assert os.path.islink(link) and os.readlink(link) == str(real)   # main: link replaced
    assert np.array_equal(fb.load(real).params, model.params)
    dangling = tmp_path / "dangling.npz"
    dangling.symlink_to(tmp_path / "nowhere.npz")
    with pytest.raises(FileNotFoundError, match="symbolic link"):
        model.save(dangling)
    assert os.path.islink(dangling) and not os.path.exists(tmp_path / "nowhere.npz")


def test_save_refuses_a_write_protected_file(tmp_path, monkeypatch):
    """A 0444 file the user may not write is refused and kept. Root may write any file
    (as with ``cp``), so under root the check is made as an ordinary user would see it."""
    path = tmp_path / "locked.npz"
    path.write_text("keep me")
    os.chmod(path, 0o444)
    if os.geteuid() == 0:
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if os.fspath(p) ==
                            str(path) and mode & os.W_OK else real(p, mode, **kw))
    model = fb.MLP([2, 3, 1], backend="numpy")
    with pytest.raises(PermissionError, match="write-protected"):
        model.save(path)                               # main: replaced
    assert path.read_text() == "keep me"
    assert sorted(os.listdir(tmp_path)) == ["locked.npz"]


@pytest.mark.skipif(os.geteuid() != 0, reason="root only")
def test_root_replaces_a_write_protected_file_as_cp_does(tmp_path):
    path = tmp_path / "locked.npz"
    path.write_text("old")
    os.chmod(path, 0o444)
    model = fb.MLP([2, 3, 1], backend="numpy")
    model.save(path)
    assert np.array_equal(fb.load(path).params, model.params)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o444
