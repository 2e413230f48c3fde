"""save / load: no pickle, bit-exact resume, atomic writes, and clear errors for bad files."""
import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
import zipfile

import numpy as np
import pytest

import fastbp as fb
from fastbp import io as fio

from conftest import SEED


def _data(loss, n=40, d=3, k=3, seed=SEED):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    if loss == "cross_entropy":
        y = rng.integers(0, k, n)
    elif loss == "bce":
        y = rng.integers(0, 2, (n, 1)).astype(float)
    else:
        y = rng.random((n, k))
    return X, y


# name -> (layers builder, loss, fit arguments)
CONFIGS = {
    "online-sgd-nesterov-dropout": (
        lambda: [fb.Dense(3, 6), fb.Sigmoid(), fb.Dropout(0.3), fb.Dense(6, 3), fb.Sigmoid()],
        fb.MSE(), dict(batch_size=1, lr=0.2, momentum=0.9, nesterov=True)),
    "online-adam-dropout-bce": (
        lambda: [fb.Dense(3, 5), fb.Tanh(), fb.Dropout(0.2), fb.Dense(5, 1), fb.Sigmoid()],
        fb.BinaryCrossEntropy(), dict(batch_size=1, lr=0.01, optimizer="adam")),
    "batch-adam-batchnorm-dropout-ce": (
        lambda: [fb.Dense(3, 8), fb.BatchNorm(8), fb.ReLU(), fb.Dropout(0.25), fb.Dense(8, 3)],
        fb.SoftmaxCrossEntropy(),
        dict(batch_size=7, lr=0.01, optimizer="adam", weight_decay=1e-3,
             lr_schedule=fb.StepLR(2, 0.5))),
    "batch-sgd-momentum-wd-mse-sum": (
        lambda: [fb.BatchNorm(3), fb.Dense(3, 4), fb.Tanh(), fb.Dense(4, 4), fb.Identity(),
                 fb.Dropout(0.5), fb.Dense(4, 3)],
        fb.MSE(reduction="sum", half=True),
        dict(batch_size=8, lr=0.005, momentum=0.8, weight_decay=1e-2,
             lr_schedule=fb.ExponentialLR(0.9))),
}
_LOSS_NAME = {fb.MSE: "mse", fb.BinaryCrossEntropy: "bce", fb.SoftmaxCrossEntropy: "cross_entropy"}


def _build(name, backend, dtype="float64", seed=7):
    layers, loss, fit_args = CONFIGS[name]
    model = fb.Sequential(layers(), loss=type(loss)(**loss.get_config()), backend=backend,
                          dtype=dtype, seed=seed)
    return model, _data(_LOSS_NAME[type(loss)]), dict(fit_args)


def _same_model(a, b):
    assert np.array_equal(a.params, b.params)
    assert np.array_equal(a.state, b.state)
    assert np.array_equal(a._opt_a, b._opt_a) and np.array_equal(a._opt_b, b._opt_b)
    assert np.array_equal(a._counters, b._counters)
    assert a._opt_kind == b._opt_kind and a.epochs_trained == b.epochs_trained
    assert a._shuffle_rng.bit_generator.state == b._shuffle_rng.bit_generator.state


# --------------------------------------------------------------------------- round trip
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_round_trip_keeps_everything(tmp_path, backend, dtype):
    model, (X, y), fit_args = _build("batch-adam-batchnorm-dropout-ce", backend, dtype)
    model.fit(X, y, epochs=2, **fit_args)
    model.train()
    path = tmp_path / "m.npz"
    model.save(path)
    got = fb.load(path)
    _same_model(model, got)
    assert got.backend == backend and got.dtype == model.dtype and got.seed == model.seed
    assert got.training is True
    assert [repr(a) for a in got.layers] == [repr(a) for a in model.layers]
    assert repr(got.loss) == repr(model.loss)
    np.testing.assert_array_equal(got.predict(X), model.predict(X))
    other = "numpy" if backend == "numba" else "numba"
    assert fb.load(str(path), backend=other).backend == other


def test_file_holds_no_pickle_and_load_never_unpickles(tmp_path, monkeypatch):
    model, (X, y), fit_args = _build("online-adam-dropout-bce", "numpy")
    model.fit(X, y, epochs=1, **fit_args)
    path = tmp_path / "m.npz"
    model.save(path)
    with np.load(path, allow_pickle=False) as z:       # readable without pickle
        assert set(z.files) == {"meta", "params", "state", "opt_a", "opt_b", "counters", "digest"}
        assert all(not z[k].dtype.hasobject for k in z.files)
        meta = json.loads(str(z["meta"]))
    assert meta["format"] == "fastbp-model" and meta["version"] == fio.VERSION
    for key in ("layers", "loss", "dtype", "seed", "optimizer", "shuffle_rng", "epochs_trained"):
        assert key in meta

    def no_pickle(*a, **k):
        raise AssertionError("pickle used")
    monkeypatch.setattr(pickle, "load", no_pickle)
    monkeypatch.setattr(pickle, "loads", no_pickle)
    monkeypatch.setattr(pickle, "Unpickler", no_pickle)
    _same_model(fb.load(path), model)


class _Evil:
    """Unpickling this would create a file."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_pickled_member_is_refused_not_unpickled(tmp_path):
    model = fb.MLP([2, 3, 1], backend="numpy")
    path = tmp_path / "m.npz"
    model.save(path)
    with np.load(path) as z:
        members = {k: z[k] for k in z.files}
    target = tmp_path / "pwned"
    members["params"] = np.array([_Evil(str(target))], dtype=object)
    np.savez(tmp_path / "evil.npz", **members)
    with pytest.raises(ValueError, match="params"):
        fb.load(tmp_path / "evil.npz")
    assert not target.exists()


# --------------------------------------------------------------------------- resume
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_resume_from_file_is_bit_exact(tmp_path, backend, name):
    """2N epochs in one go == N epochs, save, load (a fresh object), N more epochs."""
    N = 3
    straight, (X, y), fit_args = _build(name, backend)
    h_straight = straight.fit(X, y, epochs=2 * N, shuffle=True, **fit_args)

    first, _, _ = _build(name, backend)
    first.fit(X, y, epochs=N, shuffle=True, **fit_args)
    first.save(tmp_path / "half.npz")
    del first
    resumed = fb.load(tmp_path / "half.npz")
    h_resumed = resumed.fit(X, y, epochs=N, shuffle=True, **fit_args)

    _same_model(straight, resumed)
    assert h_resumed.loss == h_straight.loss[N:]          # bit-equal floats
    assert np.isfinite(straight.params).all()


def test_resume_float32_and_second_save(tmp_path, backend):
    name = "batch-sgd-momentum-wd-mse-sum"
    straight, (X, y), fit_args = _build(name, backend, "float32")
    straight.fit(X, y, epochs=6, **fit_args)
    m, _, _ = _build(name, backend, "float32")
    for _ in range(3):                                     # save/load after every 2 epochs
        m.fit(X, y, epochs=2, **fit_args)
        m.save(tmp_path / "m.npz")
        m = fb.load(tmp_path / "m.npz")
    _same_model(straight, m)


# --------------------------------------------------------------------------- checkpoint
def test_fit_checkpoint_writes_atomically_and_resumes(tmp_path, backend, monkeypatch):
    name = "batch-adam-batchnorm-dropout-ce"
    straight, (X, y), fit_args = _build(name, backend)
    straight.fit(X, y, epochs=7, **fit_args)

    writes = []
    real = fio.atomic_write
    monkeypatch.setattr(fio, "atomic_write",
                        lambda path, write: (writes.append(os.fspath(path)), real(path, write)))
    ck = tmp_path / "ck.npz"
    model, _, _ = _build(name, backend)
    model.fit(X, y, epochs=7, checkpoint=ck, checkpoint_every=3, **fit_args)
    assert writes == [str(ck), str(ck)]                    # after epochs 3 and 6
    assert os.listdir(tmp_path) == ["ck.npz"]              # no temporary left behind
    _same_model(straight, model)

    saved = fb.load(ck)
    assert saved.epochs_trained == 6
    saved.fit(X, y, epochs=1, **fit_args)
    _same_model(straight, saved)


def test_checkpoint_path_checked_before_training(tmp_path):
    X, y = fb.datasets.generate_xor_easy()
    model = fb.MLP([2, 3, 1], backend="numpy")
    before = model.params.copy()
    with pytest.raises(FileNotFoundError, match="checkpoint"):
        model.fit(X, y, epochs=2, checkpoint=tmp_path / "no" / "ck.npz")
    with pytest.raises(ValueError, match="checkpoint"):
        model.fit(X, y, epochs=2, checkpoint=tmp_path)
    with pytest.raises(TypeError, match="checkpoint"):
        model.fit(X, y, epochs=2, checkpoint=3)
    assert np.array_equal(model.params, before) and model.epochs_trained == 0
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------------- atomicity
def test_failed_write_leaves_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    old = fb.MLP([2, 3, 1], backend="numpy", seed=1)
    old.save(path)
    before = path.read_bytes()

    def half_then_fail(f, **arrays):
        f.write(b"PK\x03\x04 partial")
        raise OSError("disk full")
    monkeypatch.setattr(np, "savez", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        fb.MLP([2, 3, 1], backend="numpy", seed=2).save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.npz"]


def test_new_file_gets_ordinary_permissions(tmp_path):
    fb.MLP([2, 3, 1], backend="numpy").save(tmp_path / "m.npz")
    (tmp_path / "plain").write_bytes(b"")
    assert (os.stat(tmp_path / "m.npz").st_mode & 0o777) == (os.stat(tmp_path / "plain").st_mode
                                                             & 0o777)


SAVER = textwrap.dedent("""
    import sys, numpy as np, fastbp as fb
    path, mode = sys.argv[1], sys.argv[2]
    models = [fb.MLP([256, 1024, 1024, 4], backend="numpy", seed=s) for s in (1, 2)]
    models[0].save(path)
    print("READY", flush=True)
    i = 0
    while True:
        m = models[i % 2]
        if mode == "atomic":
            m.save(path)
        else:                                   # the naive way, for the control run
            with open(path, "wb") as f:
                np.savez(f, params=m.params)
        i += 1
""")


def _kill_while_saving(tmp_path, mode, kills, rng):
    """Start a saver, SIGKILL it after a random delay, check the file; ``kills`` times.

    Returns (results: list of 'old'/'new'/'corrupt', temporaries left behind).
    """
    path = tmp_path / f"target-{mode}.npz"
    ref = [fb.MLP([256, 1024, 1024, 4], backend="numpy", seed=s).params for s in (1, 2)]
    results = []
    for _ in range(kills):
        proc = subprocess.Popen([sys.executable, "-c", SAVER, str(path), mode],
                                stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline().strip() == "READY"
            time.sleep(float(rng.uniform(0.0, 0.25)))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        try:
            if mode == "atomic":
                params = fb.load(path).params
            else:
                with np.load(path, allow_pickle=False) as z:
                    params = z["params"]
            results.append("old" if np.array_equal(params, ref[0]) else
                           "new" if np.array_equal(params, ref[1]) else "corrupt")
        except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError):
            results.append("corrupt")
    stray = [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
    return results, stray


def test_sigkill_during_save_never_leaves_a_corrupt_file(tmp_path):
    rng = np.random.default_rng(SEED)
    kills = int(os.environ.get("FASTBP_KILL_ROUNDS", "20"))
    results, stray = _kill_while_saving(tmp_path, "atomic", kills, rng)
    print(f"\natomic save: {kills} SIGKILLs, outcomes {sorted(set(results))} "
          f"({results.count('old')} old, {results.count('new')} new), "
          f"{len(stray)} killed mid-write (temporary left behind)")
    assert "corrupt" not in results
    assert len(stray) > 0, "no kill landed inside a save; the test proved nothing"


def test_kill_harness_detects_a_non_atomic_writer(tmp_path):
    """Control: the same harness catches corruption when the file is written in place."""
    rng = np.random.default_rng(SEED + 1)
    results, _ = _kill_while_saving(tmp_path, "naive", 8, rng)
    assert "corrupt" in results, results


# --------------------------------------------------------------------------- bad files
@pytest.fixture
def saved(tmp_path):
    model = fb.Sequential([fb.Dense(3, 5), fb.BatchNorm(5), fb.Tanh(), fb.Dropout(0.2),
                           fb.Dense(5, 2)], loss="cross_entropy", backend="numpy", seed=5)
    X, y = _data("cross_entropy", k=2)
    model.fit(X, y, epochs=2, batch_size=8, optimizer="adam")
    path = tmp_path / "good.npz"
    model.save(path)
    return model, path


def _members(path):
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _write(path, members, meta=None, redigest=True):
    """Write members (with ``meta`` replacing the description), recomputing the digest."""
    members = dict(members)
    if meta is not None:
        members["meta"] = np.array(json.dumps(meta))
    if redigest and "digest" in members:
        members["digest"] = np.array(fio._digest(str(members["meta"]), members))
    np.savez(path, **members)
    return path


def _same_or_error(path, model):
    """Loading ``path`` either raises ValueError or gives exactly ``model``."""
    try:
        got = fb.load(path)
    except ValueError as exc:
        assert "fastbp model file" in str(exc) and str(path) in str(exc)
        return "error"
    _same_model(got, model)
    return "same"


def test_truncated_files_raise_value_error(saved, tmp_path):
    model, path = saved
    raw = path.read_bytes()
    bad = tmp_path / "trunc.npz"
    for cut in list(range(0, len(raw), max(1, len(raw) // 150))) + [len(raw) - 1]:
        bad.write_bytes(raw[:cut])
        with pytest.raises(ValueError, match="not a readable fastbp model file"):
            fb.load(bad)


def test_flipped_bytes_raise_or_load_the_same_model(saved, tmp_path):
    model, path = saved
    raw = path.read_bytes()
    rng = np.random.default_rng(SEED)
    positions = np.unique(np.concatenate([np.arange(0, 160), rng.integers(0, len(raw), 600),
                                          np.arange(len(raw) - 200, len(raw))]))
    bad = tmp_path / "flip.npz"
    outcomes = []
    for pos in positions:
        for mask in (0x01, 0xFF):
            b = bytearray(raw)
            b[pos] ^= mask
            bad.write_bytes(bytes(b))
            outcomes.append(_same_or_error(bad, model))
    # Most flips hit data that matters; the rest (zip timestamps, padding) are harmless.
    assert outcomes.count("error") > len(outcomes) // 2


def test_flip_inside_the_params_is_caught(saved, tmp_path):
    model, path = saved
    raw = bytearray(path.read_bytes())
    needle = model.params[3:5].tobytes()
    pos = raw.find(needle)
    assert pos > 0
    raw[pos] ^= 0x01                       # lowest bit of one weight's mantissa
    (tmp_path / "b.npz").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="not a readable fastbp model file"):
        fb.load(tmp_path / "b.npz")


def test_a_changed_value_with_a_consistent_zip_fails_the_checksum(saved, tmp_path):
    model, path = saved
    m = _members(path)
    m["params"] = m["params"].copy()
    m["params"][0] += 1e-3
    _write(tmp_path / "b.npz", m, redigest=False)          # valid zip, valid CRCs
    with pytest.raises(ValueError, match="checksum"):
        fb.load(tmp_path / "b.npz")


def test_foreign_files(tmp_path):
    rng = np.random.default_rng(SEED)
    cases = {}
    np.savez(tmp_path / "random.npz", a=rng.random(10), b=rng.integers(0, 5, 3))
    cases["random.npz"] = "meta"
    (tmp_path / "text.npz").write_text("just some text\n" * 10)
    cases["text.npz"] = "zip"
    with zipfile.ZipFile(tmp_path / "plain.zip", "w") as zf:
        zf.writestr("readme.txt", "hello")
    cases["plain.zip"] = "meta"
    (tmp_path / "empty.npz").write_bytes(b"")
    cases["empty.npz"] = "zip"
    np.save(tmp_path / "array.npy", rng.random(4))
    cases["array.npy"] = "zip"
    np.savez(tmp_path / "meta-not-json.npz", meta=np.array("{nope"), params=np.zeros(3),
             state=np.zeros(0), opt_a=np.zeros(0), opt_b=np.zeros(0),
             counters=np.zeros(2, dtype=np.int64))
    cases["meta-not-json.npz"] = "JSON"
    np.savez(tmp_path / "other-json.npz", meta=np.array(json.dumps({"format": "keras"})),
             params=np.zeros(3), state=np.zeros(0), opt_a=np.zeros(0), opt_b=np.zeros(0),
             counters=np.zeros(2, dtype=np.int64))
    cases["other-json.npz"] = "description"
    np.savez_compressed(tmp_path / "compressed.npz", meta=np.array("{}"), params=np.zeros(3))
    cases["compressed.npz"] = "compressed"
    for name, what in cases.items():
        with pytest.raises(ValueError, match="not a readable fastbp model file") as info:
            fb.load(tmp_path / name)
        assert what in str(info.value), (name, str(info.value))
        assert name in str(info.value)


def test_newer_format_version(saved, tmp_path):
    model, path = saved
    m = _members(path)
    meta = json.loads(str(m["meta"]))
    meta["version"] = fio.VERSION + 1
    with pytest.raises(ValueError, match=r"newer than this fastbp reads .*upgrade"):
        fb.load(_write(tmp_path / "new.npz", m, meta))


def test_version_1_file_without_digest_still_loads(saved, tmp_path):
    model, path = saved
    m = _members(path)
    meta = json.loads(str(m["meta"]))
    meta["version"] = 1
    del m["digest"]
    _same_model(fb.load(_write(tmp_path / "v1.npz", m, meta)), model)
    meta["version"] = 2                                     # version 2 must carry the digest
    with pytest.raises(ValueError, match="checksum"):
        fb.load(_write(tmp_path / "v2.npz", m, meta))


def _meta_edit(**changes):
    def edit(meta, m):
        meta.update(changes)
    return edit


# How a file can disagree with itself; each must give a ValueError naming the problem.
DISAGREE = {
    "params-too-short": (lambda meta, m: m.update(params=m["params"][:-1]), "parameters"),
    "params-dtype": (lambda meta, m: m.update(params=m["params"].astype(np.float32)), "params"),
    "params-nan": (lambda meta, m: m["params"].__setitem__(0, np.nan), "NaN"),
    "state-length": (lambda meta, m: m.update(state=m["state"][:3]), "state"),
    "opt-a-missing": (lambda meta, m: m.update(opt_a=m["opt_a"][:0]), "opt_a"),
    "opt-kind": (_meta_edit(optimizer=["SGD", 0]), "opt_a"),
    "opt-unknown": (_meta_edit(optimizer=["RMSprop", 2]), "optimizer"),
    "counters-dtype": (lambda meta, m: m.update(counters=m["counters"].astype(np.float64)),
                       "counters"),
    "counters-negative": (lambda meta, m: m.update(counters=-m["counters"] - 1), "counters"),
    "layer-width": (lambda meta, m: meta["layers"][0].update(out_features=6), "parameters"),
    "layer-unknown": (lambda meta, m: meta["layers"][1].update(type="Conv2d"), "layer"),
    "layer-bad-arg": (lambda meta, m: meta["layers"][3].update(p=1.5), "architecture"),
    "chain-broken": (lambda meta, m: meta["layers"].insert(0, meta["layers"].pop(3)),
                     "architecture"),
    "loss-unknown": (_meta_edit(loss={"type": "Hinge"}), "loss"),
    "dtype": (_meta_edit(dtype="float16"), "dtype"),
    "backend": (_meta_edit(backend="cuda"), "backend"),
    "seed": (_meta_edit(seed="zero"), "seed"),
    "rng-state": (_meta_edit(shuffle_rng={"bit_generator": "MT19937", "state": {}}), "generator"),
    "epochs": (_meta_edit(epochs_trained=-1), "epochs_trained"),
    "no-layers": (_meta_edit(layers=[]), "layer"),
    "version-type": (_meta_edit(version="2"), "version"),
}


@pytest.mark.parametrize("case", sorted(DISAGREE))
def test_arrays_that_disagree_with_the_architecture(saved, tmp_path, case):
    model, path = saved
    m = _members(path)
    meta = json.loads(str(m["meta"]))
    edit, word = DISAGREE[case]
    edit(meta, m)
    bad = _write(tmp_path / f"{case}.npz", m, meta)
    with pytest.raises(ValueError, match="not a readable fastbp model file") as info:
        fb.load(bad)
    assert word in str(info.value), str(info.value)


def test_load_path_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        fb.load(tmp_path / "missing.npz")
    with pytest.raises(ValueError, match="folder"):
        fb.load(tmp_path)
    with pytest.raises(TypeError, match="path"):
        fb.load(None)
    with pytest.raises(TypeError, match="path"):
        fb.load(3)
    model = fb.MLP([2, 3, 1], backend="numpy")
    model.save(tmp_path / "m.npz")
    with pytest.raises(ValueError, match="backend"):
        fb.load(tmp_path / "m.npz", backend="cuda")


def test_save_path_errors_leave_nothing_behind(tmp_path):
    model = fb.MLP([2, 3, 1], backend="numpy")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        model.save(tmp_path / "no" / "such" / "m.npz")
    with pytest.raises(ValueError, match="folder"):
        model.save(tmp_path)
    with pytest.raises(TypeError, match="path"):
        model.save(None)
    with pytest.raises(TypeError, match="path"):
        model.save(b"bytes.npz")
    with pytest.raises(TypeError, match="model"):
        fio.save("not a model", tmp_path / "m.npz")
    assert os.listdir(tmp_path) == []
