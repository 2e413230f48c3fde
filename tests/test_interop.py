"""Export and interop: ONNX (checked by ONNX Runtime) and PyTorch round trips.

Every layer kind and both dtypes, random networks with non-trivial BatchNorm
running statistics, compared with ``predict`` / ``predict_proba``. Agreement
is ``max|other - fastbp| / max|fastbp|`` per output (printed as AGREEMENT lines
under ``pytest -s``).
"""
import os
import subprocess
import sys

import numpy as np
import pytest

import fastbp as fb
from fastbp import cli

TOL = {"float64": 1e-12, "float32": 1e-5}
DTYPES = ("float64", "float32")
BATCHES = (1, 3, 64)       # the graph has no batch size of its own: several, all different


def _nets():
    """kind -> (layers factory, loss): each kind once, in small random networks."""
    D, B = fb.Dense, fb.BatchNorm
    return {
        "dense": (lambda: [D(5, 7), D(7, 3, bias=False)], "mse"),
        "relu": (lambda: [D(5, 7), fb.ReLU(), D(7, 3)], "mse"),
        "sigmoid": (lambda: [D(5, 7), fb.Sigmoid(), D(7, 3)], "mse"),
        "tanh": (lambda: [D(5, 7), fb.Tanh(), D(7, 3)], "mse"),
        "identity": (lambda: [D(5, 7), fb.Identity(), D(7, 3), fb.Identity()], "mse"),
        # BatchNorm first, after a Dense (foldable) and after an activation; eps 0.1 + 1e-9
        # is not a float32 number, so a float32 epsilon attribute would change the output
        "batchnorm": (lambda: [B(5, eps=0.1 + 1e-9), D(5, 7), B(7, momentum=0.3, eps=1e-3),
                               fb.ReLU(), D(7, 7), fb.Tanh(), B(7), D(7, 3)], "mse"),
        "dropout": (lambda: [D(5, 7), fb.ReLU(), fb.Dropout(0.5), D(7, 3), fb.Dropout(0.2)],
                    "mse"),
        "softmax_ce": (lambda: [D(5, 7), fb.Tanh(), D(7, 4)], "cross_entropy"),
        "bce": (lambda: [D(5, 7), fb.ReLU(), D(7, 1), fb.Sigmoid()], "bce"),
        "mse_sigmoid": (lambda: [D(5, 7), fb.Sigmoid(), D(7, 2), fb.Sigmoid()], "mse"),
    }


KINDS = tuple(_nets())


def random_model(kind, dtype, seed=0):
    """A ``kind`` network with random weights and BatchNorm statistics far from (0, 1)."""
    layers, loss = _nets()[kind]
    model = fb.Sequential(layers(), loss=loss, dtype=dtype, seed=seed)
    rng = np.random.default_rng([seed, 7])
    for layer in model.layers:
        if isinstance(layer, fb.Dense):
            layer.W[...] = rng.normal(0, 1.5 / np.sqrt(layer.in_features), layer.W.shape)
            if layer.bias:
                layer.b[...] = rng.normal(0, 0.5, layer.b.shape)
        elif isinstance(layer, fb.BatchNorm):
            n = layer.num_features
            layer.gamma[...] = rng.uniform(0.5, 2.0, n) * rng.choice([-1, 1], n)
            layer.beta[...] = rng.normal(0, 1, n)
            layer.running_mean[...] = rng.normal(0, 2, n)
            layer.running_var[...] = rng.uniform(0.05, 4.0, n)
    return model


def inputs(n, dtype, seed=1):
    return np.random.default_rng([seed, n]).normal(0, 2, (n, 5)).astype(dtype)


def rel(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float64) - b)) / np.max(np.abs(b)))


@pytest.fixture(scope="module")
def ort():
    pytest.importorskip("onnx")
    return pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def session(ort, path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


# ====================================================================== ONNX
def check_against_runtime(ort, model, path, label):
    """Run the exported file on several batch sizes; return the worst agreement."""
    sess = session(ort, path)
    names = [o.name for o in sess.get_outputs()]
    worst = 0.0
    for n in BATCHES:
        X = inputs(n, model.dtype)
        got = dict(zip(names, sess.run(None, {"input": X})))
        if isinstance(model.loss, fb.SoftmaxCrossEntropy):
            assert names == ["logits", "probabilities"]
            pairs = [(got["logits"], model.predict(X)),
                     (got["probabilities"], model.predict_proba(X))]
        else:
            assert names == ["output"]
            pairs = [(got["output"], model.predict(X))]
            if isinstance(model.loss, fb.BinaryCrossEntropy):
                pairs.append((got["output"], model.predict_proba(X)))
        for a, b in pairs:
            assert a.dtype == model.dtype and a.shape == b.shape
            worst = max(worst, rel(a, b))
    print(f"AGREEMENT onnx {label} {model.dtype.name}: {worst:.3g}")
    assert worst <= TOL[model.dtype.name], (label, worst)
    return worst


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
def test_onnx_runtime_matches_predict(ort, tmp_path, kind, dtype):
    import onnx
    model = random_model(kind, dtype)
    path = tmp_path / "m.onnx"
    proto = model.to_onnx(path)
    loaded = onnx.load(str(path))
    onnx.checker.check_model(loaded, full_check=True)
    assert loaded.SerializeToString() == proto.SerializeToString()
    assert [o.version for o in loaded.opset_import] == [13]
    elem = onnx.TensorProto.DOUBLE if dtype == "float64" else onnx.TensorProto.FLOAT
    (inp,) = loaded.graph.input
    assert inp.name == "input" and inp.type.tensor_type.elem_type == elem
    dims = inp.type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and dims[1].dim_value == 5
    ops = [n.op_type for n in loaded.graph.node]
    assert ops.count("Gemm") == sum(isinstance(x, fb.Dense) for x in model.layers)
    assert "Dropout" not in ops and "Identity" not in ops
    check_against_runtime(ort, model, path, kind)


@pytest.mark.parametrize("dtype", DTYPES)
def test_onnx_batchnorm_folded(ort, tmp_path, dtype):
    model = random_model("batchnorm", dtype)
    proto = model.to_onnx(tmp_path / "f.onnx", fold_batchnorm=True)
    ops = [n.op_type for n in proto.graph.node]
    # the BatchNorm after Dense(5, 7) is folded; the first one and the one after Tanh stay
    assert ops == ["BatchNormalization", "Gemm", "Relu", "Gemm", "Tanh", "BatchNormalization",
                   "Gemm"]
    check_against_runtime(ort, model, tmp_path / "f.onnx", "batchnorm-folded")
    plain = model.to_onnx(None)
    assert [n.op_type for n in plain.graph.node].count("BatchNormalization") == 3


@pytest.mark.parametrize("dtype", DTYPES)
def test_onnx_trained_model(ort, tmp_path, dtype):
    """Running statistics and weights from real training (BatchNorm, Dropout, softmax)."""
    rng = np.random.default_rng(3)
    X = rng.normal(1.5, 3.0, (96, 5)).astype(dtype)
    y = (X[:, 0] + X[:, 1] > 3).astype(int) + (X[:, 2] > 1.5)
    model = fb.MLP([5, 8, 8, 3], activation="relu", output_activation="identity",
                   loss="cross_entropy", batchnorm=True, dropout=0.2, dtype=dtype, seed=4)
    model.fit(X, y, epochs=3, batch_size=16, lr=0.05, optimizer="adam")
    bn = model.layers[1]
    assert np.abs(bn.running_mean).max() > 0.1 and np.abs(bn.running_var - 1).max() > 0.1
    for fold in (False, True):
        model.to_onnx(tmp_path / "t.onnx", fold_batchnorm=fold)
        check_against_runtime(ort, model, tmp_path / "t.onnx", f"trained-fold={fold}")


@pytest.mark.parametrize("opset", [13, 17, "newest"])
def test_onnx_opsets(ort, tmp_path, opset):
    import onnx
    opset = onnx.defs.onnx_opset_version() if opset == "newest" else opset
    model = random_model("batchnorm", "float64")
    proto = model.to_onnx(tmp_path / "o.onnx", opset=opset)
    assert proto.opset_import[0].version == opset
    assert proto.ir_version == onnx.helper.find_min_ir_version_for(list(proto.opset_import))
    check_against_runtime(ort, model, tmp_path / "o.onnx", f"opset{opset}")


def _assert_nothing_written(folder, before=()):
    assert sorted(os.listdir(folder)) == sorted(before)


@pytest.mark.parametrize("opset, err", [(12, ValueError), (10 ** 6, ValueError),
                                        ("13", TypeError), (True, TypeError), (13.0, TypeError)])
def test_onnx_unsupported_opset(ort, tmp_path, opset, err):
    with pytest.raises(err, match="opset"):
        random_model("relu", "float64").to_onnx(tmp_path / "x.onnx", opset=opset)
    _assert_nothing_written(tmp_path)


def test_onnx_missing_folder(ort, tmp_path):
    target = tmp_path / "no-such-folder" / "m.onnx"
    with pytest.raises(FileNotFoundError, match="no-such-folder"):
        random_model("relu", "float64").to_onnx(target)
    _assert_nothing_written(tmp_path)


def test_onnx_shape_mismatch_and_bad_values(ort, tmp_path):
    model = random_model("batchnorm", "float64")
    path = tmp_path / "m.onnx"
    path.write_bytes(b"previous")
    model.layers[1].W = np.zeros((4, 7))         # no longer the (5, 7) its Dense needs
    with pytest.raises(ValueError, match=r"layers\[1\].*W has shape \(4, 7\), expected \(5, 7\)"):
        model.to_onnx(path)
    model = random_model("batchnorm", "float64")
    model.layers[2].running_var[3] = np.nan
    with pytest.raises(ValueError, match=r"layers\[2\].*running_var.*NaN"):
        model.to_onnx(path)
    model = random_model("relu", "float64")
    model.layers.append(fb.Dense(4, 2))          # does not fit the 3 outputs before it
    with pytest.raises(ValueError, match=r"layers\[3\].*3 features"):
        model.to_onnx(path)
    with pytest.raises(TypeError, match="fold_batchnorm"):
        random_model("relu", "float64").to_onnx(path, fold_batchnorm="yes")
    assert path.read_bytes() == b"previous"      # untouched, and no temporary file left
    _assert_nothing_written(tmp_path, ["m.onnx"])


def test_onnx_replaces_existing_file_whole(ort, tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"x" * 100_000)
    model = random_model("tanh", "float32")
    model.to_onnx(path)
    check_against_runtime(ort, model, path, "overwrite")
    _assert_nothing_written(tmp_path, ["m.onnx"])


def test_onnx_input_contract(ort, tmp_path):
    """The graph's input is named and typed: a wrong width or dtype is refused, not guessed."""
    model = random_model("relu", "float64")
    model.to_onnx(tmp_path / "m.onnx")
    sess = session(ort, tmp_path / "m.onnx")
    with pytest.raises(Exception, match="(?i)dim|shape"):
        sess.run(None, {"input": np.zeros((3, 4))})
    with pytest.raises(Exception, match="(?i)type"):
        sess.run(None, {"input": np.zeros((3, 5), dtype=np.float32)})


def test_missing_packages_clear_errors(tmp_path, capsys, monkeypatch):
    model = random_model("relu", "float64")
    model.save(tmp_path / "m.npz")
    monkeypatch.setitem(sys.modules, "onnx", None)      # import onnx now raises ImportError
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r"fastbp\[onnx\]"):
        model.to_onnx(tmp_path / "m.onnx")
    rc = cli.main(["export", str(tmp_path / "m.npz"), str(tmp_path / "m.onnx")])
    assert rc == 2 and "fastbp[onnx]" in capsys.readouterr().err
    with pytest.raises(ImportError, match="needs the torch package"):
        model.to_torch()
    with pytest.raises(ImportError, match="needs the torch package"):
        fb.from_torch(object())
    _assert_nothing_written(tmp_path, ["m.npz"])


def test_cli_export(ort, tmp_path, capsys):
    model = random_model("softmax_ce", "float64")
    model.save(tmp_path / "m.npz")
    rc = cli.main(["export", str(tmp_path / "m.npz"), str(tmp_path / "m.onnx"), "--opset", "15"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "opset 15" in out and "'logits', 'probabilities'" in out
    check_against_runtime(ort, model, tmp_path / "m.onnx", "cli")
    rc = cli.main(["export", str(tmp_path / "m.npz"), str(tmp_path / "b.onnx"), "--opset", "9"])
    _, err = capsys.readouterr()
    assert rc == 2 and "unsupported opset 9" in err and "Traceback" not in err
    _assert_nothing_written(tmp_path, ["m.npz", "m.onnx"])


def test_cli_export_process_errors(ort, tmp_path):
    """As a real process: a missing output folder and a missing model, one-line errors."""
    random_model("bce", "float32").save(tmp_path / "m.npz")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.dirname(os.path.dirname(fb.__file__)), os.environ.get("PYTHONPATH", "")]))
    for argv, needle in ([str(tmp_path / "m.npz"), str(tmp_path / "nope" / "m.onnx")], "nope"), \
                        ([str(tmp_path / "none.npz"), str(tmp_path / "m.onnx")], "none.npz"):
        p = subprocess.run([sys.executable, "-m", "fastbp", "export", *argv], env=env,
                           capture_output=True, text=True, timeout=300)
        assert p.returncode == 2, p.stderr
        assert p.stderr.startswith("fastbp: error: ") and needle in p.stderr
        assert "Traceback" not in p.stderr
    _assert_nothing_written(tmp_path, ["m.npz"])


# ====================================================================== PyTorch
def torch_out(torch, module, X):
    with torch.no_grad():
        return module(torch.from_numpy(X)).numpy()


def assert_same_model(a, b):
    """Same layers (and settings), dtype, loss, parameters and running statistics, exactly."""
    assert repr(a.layers) == repr(b.layers) and a.dtype == b.dtype and repr(a.loss) == repr(b.loss)
    for x, y in zip(a.get_weights(), b.get_weights()):
        assert x.dtype == y.dtype and np.array_equal(x, y)
    for la, lb in zip(a.layers, b.layers):
        if isinstance(la, fb.BatchNorm):
            assert np.array_equal(la.running_mean, lb.running_mean)
            assert np.array_equal(la.running_var, lb.running_var)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
def test_torch_round_trip_and_output(torch, kind, dtype):
    model = random_model(kind, dtype)
    module = model.to_torch()
    assert not module.training and len(module) == len(model.layers)
    assert all(p.dtype == getattr(torch, dtype) for p in module.parameters())
    worst = 0.0
    for n in BATCHES:
        X = inputs(n, dtype)
        worst = max(worst, rel(torch_out(torch, module, X), model.predict(X)))
    print(f"AGREEMENT torch {kind} {dtype}: {worst:.3g}")
    assert worst <= TOL[dtype]
    back = fb.from_torch(module, loss=model.loss)
    assert_same_model(model, back)


def test_torch_copies_and_leaves_global_rng(torch):
    model = random_model("batchnorm", "float64")
    state = torch.random.get_rng_state()
    module = model.to_torch()
    assert torch.equal(torch.random.get_rng_state(), state)
    with torch.no_grad():
        module[1].weight.zero_()
        module[0].running_mean.zero_()
    assert np.abs(model.layers[1].W).max() > 0 and np.abs(model.layers[0].running_mean).max() > 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_from_torch_trained_module(torch, dtype):
    """A network trained in PyTorch predicts in fastbp what it predicts in PyTorch."""
    nn = torch.nn
    tdtype = getattr(torch, dtype)
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8, momentum=0.2, eps=1e-3), nn.ReLU(),
                           nn.Dropout(0.25), nn.Linear(8, 8, bias=False), nn.Tanh(),
                           nn.BatchNorm1d(8), nn.Linear(8, 3), nn.Identity()).to(tdtype)
    X = torch.from_numpy(inputs(128, dtype) + 1.0)
    y = (X[:, 0] > 1).long() + (X[:, 1] > 1).long()
    opt = torch.optim.Adam(module.parameters(), lr=0.02)
    module.train()
    for _ in range(40):
        opt.zero_grad()
        nn.functional.cross_entropy(module(X), y).backward()
        opt.step()
    module.eval()
    model = fb.from_torch(module, loss="cross_entropy")
    assert model.dtype == np.dtype(dtype)
    assert (model.layers[1].momentum, model.layers[1].eps) == (0.2, 1e-3)
    Xt = inputs(33, dtype)
    with torch.no_grad():
        logits = module(torch.from_numpy(Xt))
        probs = torch.softmax(logits, dim=1).numpy()
    agree = max(rel(logits.numpy(), model.predict(Xt)), rel(probs, model.predict_proba(Xt)))
    print(f"AGREEMENT from_torch trained {dtype}: {agree:.3g}")
    assert agree <= TOL[dtype]
    # and back: the same state as the PyTorch module had (num_batches_tracked aside)
    again = model.to_torch().state_dict()
    for name, value in module.state_dict().items():
        if not name.endswith("num_batches_tracked"):
            assert torch.equal(again[name], value), name


def test_from_torch_affine_false(torch):
    nn = torch.nn
    module = nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4, affine=False)).double().eval()
    with torch.no_grad():
        module[1].running_mean.uniform_(-1, 1)
    model = fb.from_torch(module)
    X = inputs(9, "float64")
    assert rel(torch_out(torch, module, X), model.predict(X)) <= 1e-12


def test_from_torch_errors(torch):
    nn = torch.nn

    class MyReLU(nn.ReLU):
        pass

    with pytest.raises(TypeError, match=r"module\[2\].*GELU.*Linear, ReLU"):
        fb.from_torch(nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.GELU(), nn.Conv1d(1, 1, 1)))
    with pytest.raises(TypeError, match=r"module\[1\].*MyReLU"):
        fb.from_torch(nn.Sequential(nn.Linear(5, 4), MyReLU()))
    with pytest.raises(TypeError, match="nn.Sequential, got Linear"):
        fb.from_torch(nn.Linear(5, 4))
    with pytest.raises(ValueError, match="empty"):
        fb.from_torch(nn.Sequential())
    with pytest.raises(ValueError, match=r"module\[1\].*track_running_stats"):
        fb.from_torch(nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4, track_running_stats=False)))
    with pytest.raises(ValueError, match=r"module\[1\].*momentum=None"):
        fb.from_torch(nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4, momentum=None)))
    with pytest.raises(ValueError, match=r"layers\[2\] is Dense\(6.*4 features"):
        fb.from_torch(nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(6, 2)))
    with pytest.raises(ValueError, match="first layer must be Dense or BatchNorm"):
        fb.from_torch(nn.Sequential(nn.ReLU(), nn.Linear(5, 2)))
    with pytest.raises(ValueError, match="one dtype"):
        fb.from_torch(nn.Sequential(nn.Linear(5, 4), nn.Linear(4, 2).double()))
    with pytest.raises(ValueError, match="one dtype"):
        fb.from_torch(nn.Sequential(nn.Linear(5, 4).half()))


def test_import_fastbp_stays_light():
    code = ("import sys, fastbp; f = fastbp.from_torch; "
            "m = fastbp.MLP([2, 3, 1]); m.to_onnx; m.to_torch; "
            "heavy = [k for k in ('torch', 'onnx', 'onnxruntime') if k in sys.modules]; "
            "print(heavy); assert not heavy")
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(fb.__file__)))
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
