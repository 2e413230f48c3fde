"""Bad input, end to end: every public entry point, every kind of bad input.

Each case must raise a clear ValueError / TypeError (FileNotFoundError for a
missing file) whose message names the offending argument, leave the model it
was called on exactly as it was, and leave no file behind (every case runs in
an empty folder, with ``checkpoint=`` pointing into it where fit allows).
The command line gets the same treatment through ``fastbp.cli.main``.
"""
import os
from dataclasses import dataclass

import numpy as np
import pytest

import fastbp as fb
from fastbp import datasets

from conftest import SEED


_GOOD = object()      # "use the good default" in Ctx.fit


class Ctx:
    """Fresh models, data and files for one case; cwd is an empty folder."""

    def __init__(self, folder):
        rng = np.random.default_rng(SEED)
        self.dir = folder
        self.ck = str(folder / "ck.npz")
        self.mse = fb.MLP([3, 4, 2], seed=1)
        self.ce = fb.MLP([3, 4, 3], output_activation="identity", loss="cross_entropy", seed=1)
        self.bce = fb.MLP([3, 4, 1], loss="bce", seed=1)
        self.bn = fb.Sequential([fb.Dense(3, 4), fb.BatchNorm(4), fb.ReLU(), fb.Dense(4, 2)])
        self.X = rng.random((10, 3))
        self.y = rng.random((10, 2))
        self.labels = rng.integers(0, 3, 10)
        self.yb = rng.integers(0, 2, (10, 1)).astype(float)
        inputs = folder / "inputs"
        inputs.mkdir()
        self.inputs = inputs
        (inputs / "short.bin").write_bytes(b"\x01" * 3074)             # 1 byte too many
        (inputs / "tiny.bin").write_bytes(b"abc")
        (inputs / "empty.bin").write_bytes(b"")
        (inputs / "badlabel.bin").write_bytes(bytes([10]) + bytes(3072))
        (inputs / "nobins").mkdir()
        (inputs / "text.npz").write_text("not a model\n")
        np.savez(inputs / "random.npz", a=rng.random(3))
        self.mse.save(inputs / "good.npz")

    def fit(self, model, X=_GOOD, y=_GOOD, **kw):
        kw.setdefault("checkpoint", self.ck)
        if y is _GOOD:
            y = {"ce": self.labels, "bce": self.yb}.get(self.name_of(model), self.y)
        return model.fit(self.X if X is _GOOD else X, y, **kw)

    def name_of(self, model):
        return next(k for k in ("mse", "ce", "bce", "bn") if getattr(self, k) is model) \
            if any(getattr(self, k) is model for k in ("mse", "ce", "bce", "bn")) else None


@dataclass
class Case:
    id: str
    call: object          # Ctx -> anything; must raise
    exc: type
    words: tuple          # each must appear in the message
    model: str = None     # the Ctx model the call uses, checked unchanged afterwards


def c(id, call, exc, *words, model=None):
    return Case(id, call, exc, words, model)


CASES = [
    # ------------------------------------------------------------ constructors
    c("Sequential/empty-layers", lambda t: fb.Sequential([]), ValueError, "layers"),
    c("Sequential/not-a-layer", lambda t: fb.Sequential([fb.Dense(3, 2), "relu"]), TypeError,
      "layers[1]"),
    c("Sequential/layers-string", lambda t: fb.Sequential("dense"), ValueError, "layers"),
    c("Sequential/backend", lambda t: fb.Sequential([fb.Dense(3, 2)], backend="cuda"),
      ValueError, "backend", "cuda"),
    c("Sequential/dtype", lambda t: fb.Sequential([fb.Dense(3, 2)], dtype="float16"),
      ValueError, "dtype", "float16"),
    c("Sequential/dtype-int", lambda t: fb.Sequential([fb.Dense(3, 2)], dtype=np.int32),
      ValueError, "dtype"),
    c("Sequential/loss-name", lambda t: fb.Sequential([fb.Dense(3, 2)], loss="hinge"),
      ValueError, "loss", "hinge"),
    c("Sequential/loss-type", lambda t: fb.Sequential([fb.Dense(3, 2)], loss=3), TypeError,
      "loss"),
    c("Sequential/seed", lambda t: fb.Sequential([fb.Dense(3, 2)], seed=-1), ValueError, "seed"),
    c("Sequential/chain", lambda t: fb.Sequential([fb.Dense(3, 2), fb.Dense(3, 2)]), ValueError,
      "layers[1]", "features"),
    c("Dense/in-features", lambda t: fb.Dense(0, 2), ValueError, "in_features"),
    c("Dense/out-features-float", lambda t: fb.Dense(2, 2.5), TypeError, "out_features"),
    c("Dense/init", lambda t: fb.Dense(2, 2, init="zeros"), ValueError, "init", "zeros"),
    c("Dropout/p=1", lambda t: fb.Dropout(1.0), ValueError, "p must", "[0.0, 1.0)"),
    c("Dropout/p<0", lambda t: fb.Dropout(-0.1), ValueError, "p must"),
    c("Dropout/p-nan", lambda t: fb.Dropout(float("nan")), ValueError, "p must"),
    c("Dropout/p-string", lambda t: fb.Dropout("0.5"), TypeError, "p must"),
    c("BatchNorm/momentum", lambda t: fb.BatchNorm(3, momentum=2.0), ValueError, "momentum"),
    c("BatchNorm/eps", lambda t: fb.BatchNorm(3, eps=0.0), ValueError, "eps"),
    c("MLP/sizes-short", lambda t: fb.MLP([3]), ValueError, "sizes"),
    c("MLP/sizes-zero", lambda t: fb.MLP([3, 0, 2]), ValueError, "sizes[1]"),
    c("MLP/sizes-float", lambda t: fb.MLP([3, 2.5, 2]), TypeError, "sizes[1]"),
    c("MLP/sizes-string", lambda t: fb.MLP("3,4,2"), ValueError, "sizes"),
    c("MLP/dropout=1", lambda t: fb.MLP([3, 4, 2], dropout=1.0), ValueError, "dropout"),
    c("MLP/dropout<0", lambda t: fb.MLP([3, 4, 2], dropout=-0.2), ValueError, "dropout"),
    c("MLP/activation", lambda t: fb.MLP([3, 4, 2], activation="gelu"), ValueError,
      "activation", "gelu"),
    c("MLP/output-activation", lambda t: fb.MLP([3, 4, 2], output_activation="softmax"),
      ValueError, "activation", "softmax"),
    c("MLP/init", lambda t: fb.MLP([3, 4, 2], init="zeros"), ValueError, "init"),
    c("MLP/backend", lambda t: fb.MLP([3, 4, 2], backend="gpu"), ValueError, "backend"),
    c("MLP/dtype", lambda t: fb.MLP([3, 4, 2], dtype="half"), ValueError, "dtype"),
    c("MLP/loss", lambda t: fb.MLP([3, 4, 2], loss="l1"), ValueError, "loss"),
    c("MLP/bce-without-sigmoid", lambda t: fb.MLP([3, 4, 1], output_activation="identity",
                                                  loss="bce"), ValueError, "Sigmoid"),
    c("MLP/ce-one-output", lambda t: fb.MLP([3, 4, 1], output_activation="identity",
                                            loss="cross_entropy"), ValueError, "2 outputs"),
    # ------------------------------------------------------------ fit: X
    c("fit/X-features", lambda t: t.fit(t.mse, X=t.X[:, :2]), ValueError, "X", "features",
      model="mse"),
    c("fit/X-1d", lambda t: t.fit(t.mse, X=t.X[:, 0]), ValueError, "X", "2-D", model="mse"),
    c("fit/X-3d", lambda t: t.fit(t.mse, X=t.X[:, :, None]), ValueError, "X", "2-D",
      model="mse"),
    c("fit/X-empty", lambda t: t.fit(t.mse, X=np.zeros((0, 3)), y=np.zeros((0, 2))), ValueError,
      "X", "empty", model="mse"),
    c("fit/X-nan", lambda t: t.fit(t.mse, X=np.where(t.X > 0.9, np.nan, t.X)), ValueError, "X",
      "NaN", model="mse"),
    c("fit/X-inf", lambda t: t.fit(t.mse, X=np.where(t.X > 0.9, -np.inf, t.X)), ValueError, "X",
      "infinite", model="mse"),
    c("fit/X-beyond-float32", lambda t: t.fit(fb.MLP([3, 4, 2], dtype="float32"), X=t.X * 1e60),
      ValueError, "X", "float32"),
    c("fit/X-strings", lambda t: t.fit(t.mse, X=t.X.astype(str)), TypeError, "X", "numbers",
      model="mse"),
    c("fit/X-string", lambda t: t.fit(t.mse, X="data.csv"), TypeError, "X", model="mse"),
    c("fit/X-mixed-list", lambda t: t.fit(t.mse, X=[[1.0, "a", 3.0]] * 10), TypeError, "X",
      model="mse"),
    c("fit/X-object", lambda t: t.fit(t.mse, X=np.array([[1.0, None, 2.0]] * 10, dtype=object)),
      TypeError, "X", model="mse"),
    c("fit/X-ragged", lambda t: t.fit(t.mse, X=[[1.0, 2.0, 3.0], [1.0]] * 5), ValueError, "X",
      model="mse"),
    c("fit/X-complex", lambda t: t.fit(t.mse, X=t.X.astype(complex)), TypeError, "X",
      model="mse"),
    c("fit/X-structured", lambda t: t.fit(t.mse, X=np.zeros(10, dtype="f8,f8,f8")), TypeError,
      "X", model="mse"),
    c("fit/X-datetime", lambda t: t.fit(t.mse, X=np.zeros((10, 3), dtype="datetime64[s]")),
      TypeError, "X", model="mse"),
    c("fit/X-None", lambda t: t.fit(t.mse, X=None), TypeError, "X", model="mse"),
    # ------------------------------------------------------------ fit: y
    c("fit/y-length", lambda t: t.fit(t.mse, y=t.y[:7]), ValueError, "y", "7", model="mse"),
    c("fit/y-columns", lambda t: t.fit(t.mse, y=t.y[:, :1]), ValueError, "y", "shape",
      model="mse"),
    c("fit/y-3d", lambda t: t.fit(t.mse, y=t.y[:, :, None]), ValueError, "y", model="mse"),
    c("fit/y-scalar", lambda t: t.fit(t.mse, y=1.0), ValueError, "y", model="mse"),
    c("fit/y-nan", lambda t: t.fit(t.mse, y=np.where(t.y > 0.8, np.nan, t.y)), ValueError, "y",
      "NaN", model="mse"),
    c("fit/y-inf", lambda t: t.fit(t.mse, y=np.where(t.y > 0.8, np.inf, t.y)), ValueError, "y",
      model="mse"),
    c("fit/y-None", lambda t: t.fit(t.mse, y=None), TypeError, "y", model="mse"),
    c("fit/y-strings", lambda t: t.fit(t.ce, y=np.array(["cat", "dog"] * 5)), TypeError, "y",
      model="ce"),
    c("fit/y-string-list", lambda t: t.fit(t.ce, y=["cat"] * 10), TypeError, "y", model="ce"),
    c("fit/labels-too-big", lambda t: t.fit(t.ce, y=np.full(10, 3)), ValueError, "y", "[0, 3)",
      model="ce"),
    c("fit/labels-negative", lambda t: t.fit(t.ce, y=t.labels - 1), ValueError, "y", "[0, 3)",
      model="ce"),
    c("fit/labels-fractional", lambda t: t.fit(t.ce, y=t.labels + 0.5), ValueError, "y",
      "integer", model="ce"),
    c("fit/labels-nan", lambda t: t.fit(t.ce, y=np.where(t.labels > 1, np.nan, t.labels)),
      ValueError, "y", "NaN", model="ce"),
    c("fit/labels-not-one-hot", lambda t: t.fit(t.ce, y=np.full((10, 3), 0.5)), ValueError, "y",
      "one-hot", model="ce"),
    c("fit/labels-shape", lambda t: t.fit(t.ce, y=np.zeros((10, 2))), ValueError, "y",
      model="ce"),
    c("fit/bce-target-range", lambda t: t.fit(t.bce, y=t.yb * 2), ValueError, "y", "[0, 1]",
      model="bce"),
    # ------------------------------------------------------------ fit: settings
    c("fit/lr=0", lambda t: t.fit(t.mse, lr=0), ValueError, "lr", model="mse"),
    c("fit/lr<0", lambda t: t.fit(t.mse, lr=-0.1), ValueError, "lr", model="mse"),
    c("fit/lr-nan", lambda t: t.fit(t.mse, lr=float("nan")), ValueError, "lr", model="mse"),
    c("fit/lr-inf", lambda t: t.fit(t.mse, lr=float("inf")), ValueError, "lr", model="mse"),
    c("fit/lr-string", lambda t: t.fit(t.mse, lr="0.1"), TypeError, "lr", model="mse"),
    c("fit/epochs=0", lambda t: t.fit(t.mse, epochs=0), ValueError, "epochs", model="mse"),
    c("fit/epochs<0", lambda t: t.fit(t.mse, epochs=-5), ValueError, "epochs", model="mse"),
    c("fit/epochs-float", lambda t: t.fit(t.mse, epochs=2.5), TypeError, "epochs", model="mse"),
    c("fit/epochs-bool", lambda t: t.fit(t.mse, epochs=True), TypeError, "epochs", model="mse"),
    c("fit/batch=0", lambda t: t.fit(t.mse, batch_size=0), ValueError, "batch_size",
      model="mse"),
    c("fit/batch<0", lambda t: t.fit(t.mse, batch_size=-1), ValueError, "batch_size",
      model="mse"),
    c("fit/batch-None", lambda t: t.fit(t.mse, batch_size=None), TypeError, "batch_size",
      model="mse"),
    c("fit/batchnorm-batch-1", lambda t: t.fit(t.bn, batch_size=1), ValueError, "batch_size",
      "BatchNorm", model="bn"),
    c("fit/optimizer", lambda t: t.fit(t.mse, optimizer="rmsprop"), ValueError, "optimizer",
      model="mse"),
    c("fit/momentum", lambda t: t.fit(t.mse, momentum=1.0), ValueError, "momentum",
      model="mse"),
    c("fit/nesterov-without-momentum", lambda t: t.fit(t.mse, nesterov=True), ValueError,
      "nesterov", model="mse"),
    c("fit/weight-decay", lambda t: t.fit(t.mse, weight_decay=-1.0), ValueError,
      "weight_decay", model="mse"),
    c("fit/betas", lambda t: t.fit(t.mse, optimizer="adam", betas=(0.9, 1.0)), ValueError,
      "betas[1]", model="mse"),
    c("fit/lr-schedule", lambda t: t.fit(t.mse, lr_schedule="cosine"), ValueError,
      "lr_schedule", model="mse"),
    c("fit/validation-not-pair", lambda t: t.fit(t.mse, validation_data=t.X), ValueError,
      "validation_data", model="mse"),
    c("fit/validation-X", lambda t: t.fit(t.mse, validation_data=(t.X[:, :2], t.y)), ValueError,
      "validation_data X", model="mse"),
    c("fit/validation-y", lambda t: t.fit(t.mse, validation_data=(t.X, t.y[:3])), ValueError,
      "validation_data y", model="mse"),
    c("fit/patience-without-validation", lambda t: t.fit(t.mse, patience=3), ValueError,
      "patience", model="mse"),
    c("fit/stop-at-accuracy", lambda t: t.fit(t.mse, stop_at_accuracy=1.5), ValueError,
      "stop_at_accuracy", model="mse"),
    c("fit/print-every", lambda t: t.fit(t.mse, print_every=0), ValueError, "print_every",
      model="mse"),
    c("fit/checkpoint-every", lambda t: t.fit(t.mse, checkpoint_every=0), ValueError,
      "checkpoint_every", model="mse"),
    c("fit/checkpoint-missing-folder",
      lambda t: t.fit(t.mse, checkpoint=os.path.join(t.dir, "no", "ck.npz")), FileNotFoundError,
      "checkpoint", "does not exist", model="mse"),
    c("fit/checkpoint-folder", lambda t: t.fit(t.mse, checkpoint=t.dir), ValueError,
      "checkpoint", "folder", model="mse"),
    c("fit/checkpoint-type", lambda t: t.fit(t.mse, checkpoint=42), TypeError, "checkpoint",
      model="mse"),
    # ------------------------------------------------------------ predict / evaluate / grads
    c("predict/X-features", lambda t: t.mse.predict(t.X[:, :1]), ValueError, "X", "features",
      model="mse"),
    c("predict/X-nan", lambda t: t.mse.predict(np.full((2, 3), np.nan)), ValueError, "X",
      model="mse"),
    c("predict/X-empty", lambda t: t.mse.predict(np.zeros((0, 3))), ValueError, "X",
      model="mse"),
    c("predict/X-strings", lambda t: t.mse.predict([["a", "b", "c"]]), TypeError, "X",
      model="mse"),
    c("predict/batch", lambda t: t.mse.predict(t.X, batch_size=0), ValueError, "batch_size",
      model="mse"),
    c("predict_proba/X-3d", lambda t: t.ce.predict_proba(t.X[None]), ValueError, "X",
      model="ce"),
    c("evaluate/y-length", lambda t: t.mse.evaluate(t.X, t.y[1:]), ValueError, "y", model="mse"),
    c("evaluate/labels", lambda t: t.ce.evaluate(t.X, t.labels + 3), ValueError, "y",
      model="ce"),
    c("evaluate/X-inf", lambda t: t.mse.evaluate(t.X + np.inf, t.y), ValueError, "X",
      model="mse"),
    c("evaluate/batch", lambda t: t.mse.evaluate(t.X, t.y, batch_size=-2), ValueError,
      "batch_size", model="mse"),
    c("loss_and_grads/X-features", lambda t: t.mse.loss_and_grads(t.X[:, :2], t.y), ValueError,
      "X", model="mse"),
    c("loss_and_grads/y-nan", lambda t: t.mse.loss_and_grads(t.X, t.y * np.nan), ValueError,
      "y", model="mse"),
    c("loss_and_grads/string-labels", lambda t: t.ce.loss_and_grads(t.X, ["a"] * 10), TypeError,
      "y", model="ce"),
    c("loss_and_grads/batchnorm-one-row", lambda t: t.bn.loss_and_grads(t.X[:1], t.y[:1]),
      ValueError, "BatchNorm", model="bn"),
    # ------------------------------------------------------------ set_weights
    c("set_weights/count", lambda t: t.mse.set_weights(t.mse.get_weights()[:-1]), ValueError,
      "weights", model="mse"),
    c("set_weights/shape", lambda t: t.mse.set_weights([w.T for w in t.mse.get_weights()]),
      ValueError, "weights[0]", "shape", model="mse"),
    c("set_weights/nan", lambda t: t.mse.set_weights([w * np.nan for w in t.mse.get_weights()]),
      ValueError, "weights[0]", "NaN", model="mse"),
    c("set_weights/strings", lambda t: t.mse.set_weights(
        [w.astype(str) for w in t.mse.get_weights()]), TypeError, "weights[0]", model="mse"),
    c("set_weights/not-a-list", lambda t: t.mse.set_weights(None), TypeError, "weights",
      model="mse"),
    c("set_weights/last-bad", lambda t: t.mse.set_weights(
        t.mse.get_weights()[:-1] + [np.zeros(5)]), ValueError, "weights[3]", model="mse"),
    # ------------------------------------------------------------ save / load
    c("save/missing-folder", lambda t: t.mse.save(os.path.join(t.dir, "a", "b", "m.npz")),
      FileNotFoundError, "path", "does not exist", model="mse"),
    c("save/folder", lambda t: t.mse.save(t.dir), ValueError, "path", "folder", model="mse"),
    c("save/empty-name", lambda t: t.mse.save(""), ValueError, "path", model="mse"),
    c("save/None", lambda t: t.mse.save(None), TypeError, "path", model="mse"),
    c("save/int", lambda t: t.mse.save(3), TypeError, "path", model="mse"),
    c("load/missing", lambda t: fb.load(os.path.join(t.dir, "nope.npz")), FileNotFoundError,
      "nope.npz"),
    c("load/folder", lambda t: fb.load(t.inputs), ValueError, "folder"),
    c("load/text", lambda t: fb.load(t.inputs / "text.npz"), ValueError, "text.npz",
      "not a readable fastbp model"),
    c("load/foreign-npz", lambda t: fb.load(t.inputs / "random.npz"), ValueError, "random.npz",
      "not a readable fastbp model"),
    c("load/cifar-file", lambda t: fb.load(t.inputs / "short.bin"), ValueError, "short.bin"),
    c("load/None", lambda t: fb.load(None), TypeError, "path"),
    c("load/backend", lambda t: fb.load(t.inputs / "good.npz", backend="cuda"), ValueError,
      "backend"),
    # ------------------------------------------------------------ CIFAR-10
    c("cifar/missing", lambda t: datasets.load_cifar10(t.inputs / "nope.bin"), FileNotFoundError,
      "nope.bin"),
    c("cifar/wrong-length", lambda t: datasets.load_cifar10(t.inputs / "short.bin"), ValueError,
      "short.bin", "3073"),
    c("cifar/tiny", lambda t: datasets.load_cifar10(t.inputs / "tiny.bin"), ValueError,
      "tiny.bin"),
    c("cifar/empty", lambda t: datasets.load_cifar10(t.inputs / "empty.bin"), ValueError,
      "empty.bin", "empty"),
    c("cifar/label", lambda t: datasets.load_cifar10(t.inputs / "badlabel.bin"), ValueError,
      "badlabel.bin", "label"),
    c("cifar/no-bins", lambda t: datasets.load_cifar10(t.inputs / "nobins"), ValueError,
      "nobins", ".bin"),
    c("cifar/dtype", lambda t: datasets.load_cifar10(t.inputs / "short.bin", dtype="int8"),
      ValueError, "dtype"),
    c("cifar/max-records", lambda t: datasets.load_cifar10(t.inputs / "badlabel.bin",
                                                           max_records=0), ValueError,
      "max_records"),
    c("cifar/model-npz", lambda t: datasets.load_cifar10(t.inputs / "good.npz"), ValueError,
      "good.npz"),
    c("cifar/path-None", lambda t: datasets.load_cifar10(None), TypeError, "path"),
    c("cifar/path-int", lambda t: datasets.load_cifar10(3), TypeError, "path"),
]

def _state(model):
    return (model.params.copy(), model.state.copy(), model._opt_a.copy(), model._opt_b.copy(),
            model._counters.copy(), model.epochs_trained, model._opt_kind,
            repr(model._shuffle_rng.bit_generator.state), model.training)


def _same_state(a, b):
    for x, y in zip(a, b):
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and np.array_equal(x, y)
        else:
            assert x == y


def _files(folder):
    return sorted(os.path.relpath(os.path.join(root, f), folder)
                  for root, dirs, files in os.walk(folder) for f in files + dirs)


def _check(tmp_path, monkeypatch, call, exc, words, model_name=None):
    monkeypatch.chdir(tmp_path)
    ctx = Ctx(tmp_path)
    before_files = _files(tmp_path)
    model = getattr(ctx, model_name) if model_name else None
    before = _state(model) if model is not None else None
    with pytest.raises(exc) as info:
        call(ctx)
    msg = str(info.value)
    assert type(info.value) is exc or isinstance(info.value, exc)
    for word in words:
        assert word in msg, f"message {msg!r} does not mention {word!r}"
    assert "\n" not in msg.strip(), "the message should be one line"
    assert _files(tmp_path) == before_files, "a file was left behind"
    if model is not None:
        _same_state(before, _state(model))


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_gives_a_clear_error(tmp_path, monkeypatch, case):
    _check(tmp_path, monkeypatch, case.call, case.exc, case.words, case.model)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root reads files whatever their permissions")
def test_unreadable_files(tmp_path, monkeypatch):
    ctx = Ctx(tmp_path)
    for name in ("good.npz", "short.bin"):
        os.chmod(ctx.inputs / name, 0)
    _check(tmp_path, monkeypatch, lambda t: fb.load(t.inputs / "good.npz"), ValueError,
           ("good.npz",))


def test_bad_input_count():
    """The table covers every entry point the contract names."""
    prefixes = {case.id.split("/")[0] for case in CASES}
    assert {"Sequential", "MLP", "fit", "predict", "evaluate", "loss_and_grads", "set_weights",
            "save", "load", "cifar", "Dropout", "Dense"} <= prefixes
    print(f"\n{len(CASES)} bad Python inputs, {len(CLI_CASES)} bad command lines")


# ------------------------------------------------------------------ the command line
CLI_CASES = [
    (["train", "--lr", "0"], "--lr"),
    (["train", "--lr", "nan"], "--lr"),
    (["train", "--epochs", "0"], "--epochs"),
    (["train", "--epochs", "1.5"], "--epochs"),
    (["train", "--batch-size", "0"], "--batch-size"),
    (["train", "--dropout", "1"], "--dropout"),
    (["train", "--dropout", "-0.5"], "--dropout"),
    (["train", "--backend", "cuda"], "--backend"),
    (["train", "--dtype", "float16"], "--dtype"),
    (["train", "--activation", "gelu"], "--activation"),
    (["train", "--init", "zeros"], "--init"),
    (["train", "--loss", "hinge"], "--loss"),
    (["train", "--sizes", "2,0,1"], "--sizes"),
    (["train", "--data", "xor", "--sizes", "3,4,1"], "--sizes"),
    (["train", "--data", "cifar10", "--cifar-path", "missing.bin"], "missing.bin"),
    (["train", "--data", "cifar10", "--cifar-path", "inputs/short.bin"], "short.bin"),
    (["train", "--data", "cifar10", "--cifar-path", "inputs/nobins"], "nobins"),
    (["train", "--data", "xor", "--save", "."], "--save"),
    (["train", "--lr", "-1", "--save", "out/m.npz", "--plot", "out/p.png"], "--lr"),
    (["compare", "--epochs", "0"], "--epochs"),
    (["sweep", "--lrs", "0.1,-1"], "--lrs"),
    (["frobnicate"], "frobnicate"),
]


@pytest.mark.parametrize("argv,word", CLI_CASES, ids=[" ".join(a) for a, _ in CLI_CASES])
def test_cli_bad_input(tmp_path, monkeypatch, capsys, argv, word):
    cli = pytest.importorskip("fastbp.cli")
    monkeypatch.chdir(tmp_path)
    Ctx(tmp_path)
    before = _files(tmp_path)
    rc = cli.main(argv)
    out, err = capsys.readouterr()
    assert rc == 2, (rc, out, err)
    line = err.strip().splitlines()[-1]
    assert line.startswith("fastbp: error:") and word in line, err
    assert _files(tmp_path) == before
