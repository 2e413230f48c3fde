"""One run of a sweep: its settings, its data, and the function a worker calls.

Everything here is what a worker process needs (a local pool worker or a Dask
worker): :class:`DataSource` (picklable, loads its data once per process),
:func:`resolve` (a grid point plus the sweep's settings -> the full settings
of one run), :func:`run_task` (build the model through the public API, fit,
return the record) and :func:`warm` (compile or load every kernel a set of
runs needs, before the runs fan out).
"""
import hashlib
import json
import math
import os
import socket
import time
import uuid
from pathlib import Path

import numpy as np

# --------------------------------------------------------------------------- parameters
# name -> (kind, allowed, nullable). kind: float, int, bool, choice, ints (list of
# positive ints), pair (two floats). Ranges are checked here so that a bad value
# is refused before any run; the model checks everything again.
_ACTS = ("sigmoid", "relu", "tanh", "identity")
_INITS = ("glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "uniform")
PARAMS = {
    # the model
    "sizes": ("ints", None, True), "hidden": ("ints", None, False),
    "activation": ("choice", _ACTS, False), "output_activation": ("choice", _ACTS, True),
    "loss": ("choice", ("mse", "bce", "cross_entropy"), False),
    "reduction": ("choice", ("mean", "sum"), False), "init": ("choice", _INITS, True),
    "batchnorm": ("bool", None, False), "dropout": ("float", "[0,1)", False),
    "bias": ("bool", None, False), "dtype": ("choice", ("float64", "float32"), False),
    "backend": ("choice", ("numba", "numpy"), False), "seed": ("int", 0, False),
    # fit
    "lr": ("float", "(0,inf)", False), "epochs": ("int", 1, False),
    "batch_size": ("int", 1, True), "shuffle": ("bool", None, False),
    "optimizer": ("choice", ("sgd", "adam"), False), "momentum": ("float", "[0,1)", False),
    "nesterov": ("bool", None, False), "weight_decay": ("float", "[0,inf)", False),
    "betas": ("pair", None, False), "eps": ("float", "(0,inf)", False),
    "lr_decay": ("float", "(0,1]", True), "stop_at_accuracy": ("float", "(0,1]", True),
    "patience": ("int", 1, True), "min_delta": ("float", "[0,inf)", False),
}
MODEL_KEYS = ("sizes", "activation", "output_activation", "loss", "reduction", "init",
              "batchnorm", "dropout", "bias", "dtype", "backend", "seed")
FIT_KEYS = ("epochs", "lr", "batch_size", "shuffle", "optimizer", "momentum", "nesterov",
            "weight_decay", "betas", "eps", "stop_at_accuracy", "patience", "min_delta")
# Values that change no compiled code: runs differing only in these share a warm-up.
_VALUE_ONLY = ("seed", "lr", "epochs", "eps", "betas", "lr_decay", "init", "shuffle",
               "patience", "min_delta", "stop_at_accuracy")

# The seed experiments' defaults (the 2-4-1 sigmoid network of seed 000, full batch,
# 1,000 epochs, weights uniform in [0, 1)) for the 2-D sets and for arrays; the
# seed-003 classifier for digits and CIFAR-10. The default model seed is the
# demo's (fastbp.demo.DEFAULT_SEED).
_COMMON = dict(sizes=None, output_activation=None, reduction="mean", batchnorm=False,
               dropout=0.0, bias=True, dtype="float64", backend="numba", seed=39, lr=0.1,
               batch_size=None, shuffle=False, optimizer="sgd", momentum=0.0, nesterov=False,
               weight_decay=0.0, betas=[0.9, 0.999], eps=1e-8, lr_decay=None,
               stop_at_accuracy=None, patience=None, min_delta=0.0)
DEFAULTS = {
    "toy": dict(_COMMON, hidden=[4], activation="sigmoid", loss="mse", init="uniform",
                epochs=1000),
    "arrays": dict(_COMMON, hidden=[4], activation="sigmoid", loss="mse", init=None,
                   epochs=1000),
    "images": dict(_COMMON, hidden=[128, 64], activation="relu", loss="cross_entropy",
                   init=None, epochs=30),
}


def _range_ok(value, spec):
    lo, hi = spec[1:-1].split(",")
    ok = value >= float(lo) if spec[0] == "[" else value > float(lo)
    return ok and (value < float(hi) if spec[-1] == ")" else value <= float(hi))


def coerce(name, value):
    """``value`` of parameter ``name`` in its canonical (JSON-able) form, or ValueError."""
    if name not in PARAMS:
        raise ValueError(f"unknown sweep parameter {name!r}; expected one of "
                         f"{', '.join(PARAMS)}")
    kind, allowed, nullable = PARAMS[name]
    if value is None:
        if nullable:
            return None
        raise ValueError(f"{name} cannot be None")
    bad = f"{name}={value!r}: "
    if kind == "bool":
        if not isinstance(value, (bool, np.bool_)):
            raise ValueError(bad + "expected True or False")
        return bool(value)
    if kind == "choice":
        if value not in allowed:
            raise ValueError(bad + f"expected one of {', '.join(allowed)}")
        return str(value)
    if kind in ("ints", "pair"):
        if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
            raise ValueError(bad + ("expected a list of layer sizes" if kind == "ints"
                                    else "expected two numbers"))
        try:
            items = [coerce("batch_size" if kind == "ints" else "eps", v) for v in value]
        except ValueError:
            items = None
        if items is None or (kind == "pair" and len(items) != 2):
            raise ValueError(bad + ("expected positive integers" if kind == "ints"
                                    else "expected two positive numbers"))
        if name == "sizes" and len(items) < 2:
            raise ValueError(bad + "expected at least two layer sizes (input and output)")
        return items
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise ValueError(bad + f"expected {'an integer' if kind == 'int' else 'a number'}")
    if kind == "int":
        if int(value) != value or value < allowed:
            raise ValueError(bad + f"expected an integer >= {allowed}")
        return int(value)
    value = float(value)
    if not math.isfinite(value) or not _range_ok(value, allowed):
        raise ValueError(bad + f"expected a number in {allowed}")
    return value


# --------------------------------------------------------------------------- data
class _Data:
    """Loaded arrays: X, the training targets (labels or a target matrix), validation."""

    def __init__(self, X, y, X_val=None, y_val=None, kind="arrays", note=""):
        self.X, self.y, self.X_val, self.y_val = X, y, X_val, y_val
        self.kind, self.note = kind, note
        self.labels = y.ndim == 1 and y.dtype.kind in "iu"
        self.n_classes = int(y.max()) + 1 if self.labels else None

    @property
    def n(self):
        return self.X.shape[0]

    def n_outputs(self, loss):
        if not self.labels:
            return 1 if self.y.ndim == 1 else self.y.shape[1]
        return 1 if (self.n_classes == 2 and loss != "cross_entropy") else self.n_classes

    def targets(self, y, sizes, loss):
        """What fit wants for this model: labels, a 0/1 column or one-hot (as the CLI)."""
        if not self.labels:
            return y
        from ._cli_common import targets
        return targets(y, sizes, loss, self.X.dtype)

    def digest(self):
        h = hashlib.sha256()
        for a in (self.X, self.y, self.X_val, self.y_val):
            if a is not None:
                h.update(f"{a.dtype.str}{a.shape}".encode())
                h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()[:16]

    def head(self, rows):
        """The first ``rows`` rows of training and validation data (for warm-ups)."""
        val = (None, None) if self.X_val is None else (self.X_val[:rows], self.y_val[:rows])
        part = _Data(self.X[:rows], self.y[:rows], *val, kind=self.kind)
        part.n_classes = self.n_classes
        return part


def _array_data(parts, where):
    if not isinstance(parts, (tuple, list)) or len(parts) not in (2, 4):
        raise ValueError(f"{where} must give (X, y) or (X, y, X_val, y_val)")
    arrays = []
    for i, a in enumerate(parts):
        a = np.asarray(a)
        if a.dtype.kind not in "biuf":
            raise TypeError(f"{where}: array {i} must hold numbers, got dtype {a.dtype}")
        arrays.append(a)
    pairs = [(arrays[0], arrays[1], "X and y")]
    if len(arrays) == 4:
        pairs.append((arrays[2], arrays[3], "X_val and y_val"))
    for X, y, what in pairs:
        if X.ndim != 2 or X.shape[0] == 0 or y.ndim not in (1, 2) or y.shape[0] != X.shape[0]:
            raise ValueError(f"{where}: {what} must be a 2-D (n, features) array and n "
                             f"targets; got shapes {X.shape} and {y.shape}")
    return _Data(*arrays)


_NAMED = ("linear", "xor", "digits")
_loaded = {}        # per process: the data of each source, loaded once


class DataSource:
    """Where a sweep's data comes from, in a form a worker can load it from.

    data: "linear", "xor", "digits", a CIFAR-10 batch file or folder, a tuple
    (X, y) or (X, y, X_val, y_val), or a callable returning such a tuple (called
    in each worker process, once). options: for the named sets, ``n`` and
    ``data_seed`` (linear points, digits/CIFAR-10 split), ``max_records``
    (CIFAR-10); ``dtype`` of the arrays the named sets build.
    """

    def __init__(self, data, options=None, dtype="float64"):
        options = dict(options or {})
        unknown = set(options) - {"n", "data_seed", "max_records"}
        if unknown:
            raise ValueError(f"unknown data_options {sorted(unknown)}; expected n, data_seed, "
                             f"max_records")
        self.token = uuid.uuid4().hex
        self.fn = self.arrays = self.name = None
        self.options = {"n": 500, "data_seed": 0, "max_records": None, **options}
        self.dtype = coerce("dtype", dtype)
        self.expected = None        # a callable's data digest, as the submitting process saw it
        if callable(data):
            self.kind, self.fn = "callable", data
        elif isinstance(data, (str, os.PathLike)):
            text = os.fspath(data)
            if text.lower() in _NAMED:
                self.kind, self.name = "named", text.lower()
            elif Path(text).exists():
                self.kind, self.name = "named", "cifar10"
                self.options["cifar_path"] = str(Path(text).resolve())
            else:
                raise ValueError(f"data {text!r} is neither a data set name (linear, xor, "
                                 f"digits) nor an existing CIFAR-10 file or folder")
        else:
            self.kind = "arrays"
            self.arrays = _array_data(data, "data")

    @property
    def preset(self):
        if self.kind == "named":
            return "images" if self.name in ("digits", "cifar10") else "toy"
        return "arrays"

    def load(self):
        """The data (loaded once per process and source)."""
        if self.arrays is not None:
            return self.arrays
        data = _loaded.get(self.token)
        if data is None:
            data = self._fetch()
            if self.expected is not None and data.digest() != self.expected:
                raise ValueError("the data callable returned different data in this worker "
                                 "than in the process that started the sweep")
            _loaded[self.token] = data
        return data

    def remember(self, X, y, X_val=None, y_val=None):
        """Hand this process the data already loaded (so it is not loaded twice)."""
        _loaded[self.token] = _Data(X, y, X_val, y_val, kind=self.name or self.kind)

    def _fetch(self):
        if self.kind == "callable":
            return _array_data(self.fn(), f"data callable {getattr(self.fn, '__name__', '')}")
        from types import SimpleNamespace
        from ._cli_common import load_data
        o = self.options
        d = load_data(SimpleNamespace(data=self.name, cifar_path=o.get("cifar_path"),
                                      max_records=o["max_records"], n=o["n"],
                                      data_seed=o["data_seed"], dtype=self.dtype))
        return _Data(d.X, d.labels, d.X_test, d.labels_test, kind=self.name, note=d.note)

    def describe(self):
        """A JSON-able description (part of every run's identity)."""
        if self.kind == "named":
            keep = {"linear": ("n", "data_seed"), "xor": (), "digits": ("data_seed",),
                    "cifar10": ("cifar_path", "max_records", "data_seed")}[self.name]
            return {"name": self.name, "dtype": self.dtype,
                    **{k: self.options[k] for k in keep}}
        data = self.load()
        if self.kind == "callable":
            self.expected = data.digest()
            return {"callable": f"{self.fn.__module__}.{self.fn.__qualname__}",
                    "sha256": self.expected}
        return {"arrays": data.digest(), "shape": list(data.X.shape)}


# --------------------------------------------------------------------------- settings
def resolve(point, settings, source):
    """The full settings of one run: defaults < sweep settings < grid point."""
    data = source.load()
    c = dict(DEFAULTS[source.preset])
    c.update(settings)
    c.update(point)
    hidden = c.pop("hidden")
    if c["sizes"] is None:
        c["sizes"] = [data.X.shape[1]] + list(hidden) + [data.n_outputs(c["loss"])]
    if c["output_activation"] is None:
        c["output_activation"] = "identity" if c["loss"] == "cross_entropy" else "sigmoid"
    c["batch_size"] = min(c["batch_size"] or data.n, data.n)
    return {k: c[k] for k in MODEL_KEYS + FIT_KEYS + ("lr_decay",)}


def run_key(config, data_desc):
    text = json.dumps({"config": config, "data": data_desc}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _build(c, data):
    from .losses import MSE
    from .model import MLP
    from .optim import ExponentialLR
    loss = MSE(reduction=c["reduction"]) if c["loss"] == "mse" else c["loss"]
    model = MLP(c["sizes"], activation=c["activation"], output_activation=c["output_activation"],
                loss=loss, backend=c["backend"], dtype=c["dtype"], seed=c["seed"], init=c["init"],
                batchnorm=c["batchnorm"], dropout=c["dropout"], bias=c["bias"])
    kw = {k: c[k] for k in FIT_KEYS}
    kw["betas"] = tuple(kw["betas"])        # a list in the (JSON) settings
    if c["lr_decay"] not in (None, 1.0):
        kw["lr_schedule"] = ExponentialLR(c["lr_decay"])
    if data.X_val is not None:
        kw["validation_data"] = (data.X_val, data.targets(data.y_val, c["sizes"], c["loss"]))
    return model, data.targets(data.y, c["sizes"], c["loss"]), kw


def _finite(v):
    return float(v) if v is not None and math.isfinite(v) else None


def _fill(rec, hist, model):
    for name in ("loss", "accuracy", "val_loss", "val_accuracy"):
        values = getattr(hist, name)
        if name.startswith("val") and not values:
            continue
        rec[name] = [_finite(v) for v in values]
        rec["final_" + name] = _finite(values[-1]) if values else None
    rec["epochs_run"] = hist.epochs_run
    rec["stop_reason"] = hist.stop_reason
    if model is not None:
        h = hashlib.sha256()
        for w in model.get_weights():
            h.update(w.tobytes())
        rec["weights_sha256"] = h.hexdigest()[:16]


def _compile_recorder():
    """Counts Numba compilations (not cache loads) while it is open."""
    try:
        from numba.core import event
    except ImportError:       # pragma: no cover - numba is a dependency
        import contextlib
        return contextlib.nullcontext(None)
    return event.install_recorder("numba:compile")


def _compiles(recorder):
    return 0 if recorder is None else sum(1 for _, ev in recorder.buffer if ev.is_start)


def run_task(source, task):
    """Run one configuration; return its record (never raises for a failed run).

    A run that raises (a diverging loss, a bad setting) comes back with
    ``status="failed"`` and its error; a run stopped by Ctrl-C comes back as
    ``{"interrupted": True}`` and is never recorded as finished.
    """
    from . import _threads
    from .model import TrainingDivergedError
    rec = {"key": task["key"], "params": task["params"], "config": task["config"],
           "data": task["data"], "status": "ok", "error": None, "loss": [],
           "final_loss": None, "epochs_run": 0, "stop_reason": None,
           "attempts": task.get("attempt", 1),
           "worker": f"{socket.gethostname()}:{os.getpid()}"}
    t0 = time.perf_counter()
    with _threads.limit(1), _compile_recorder() as recorder:
        model = None
        try:
            data = source.load()
            model, y, kw = _build(task["config"], data)
            hist = model.fit(data.X, y, **kw)
            if hist.interrupted:
                return {"key": task["key"], "interrupted": True}
            _fill(rec, hist, model)
        except TrainingDivergedError as exc:
            rec.update(status="failed", error=f"diverged: {exc}")
            _fill(rec, exc.history, None)
        except Exception as exc:       # recorded with the run; the sweep goes on
            rec.update(status="failed", error=f"{type(exc).__name__}: {exc}")
        rec["compiles"] = _compiles(recorder)
    rec["seconds"] = time.perf_counter() - t0
    return rec


# --------------------------------------------------------------------------- warm-up
def warm_key(config):
    c = {k: v for k, v in config.items() if k not in _VALUE_ONLY}
    # zero or not picks the kernel (a Dropout row; plain SGD's steps folded into the
    # products); the value is data
    for k in ("dropout", "momentum", "weight_decay"):
        if k in c:
            c[k] = c[k] > 0
    return json.dumps(c, sort_keys=True)


def warm(source, configs):
    """Train every distinct network configuration for one epoch on a few rows.

    This compiles (or loads from Numba's disk cache) every kernel the runs
    will call, in this process, and writes it to the cache, so that workers
    started afterwards load it instead of all compiling the same kernels at
    once. Returns ``(configurations warmed, Numba compilations it took)``.
    """
    seen = {}
    for c in configs:
        seen.setdefault(warm_key(c), c)
    data = source.load()
    compiles = 0
    for c in seen.values():
        batch = 1 if c["batch_size"] == 1 else min(c["batch_size"], 16)
        rows = min(data.n, 2 * batch)
        w = dict(c, epochs=1, batch_size=min(batch, rows), patience=None)
        small = data.head(rows)
        task = {"key": "warm", "params": {}, "config": w, "data": None}
        rec = run_task(_Fixed(small), task)
        if rec.get("interrupted"):          # Ctrl-C during the warm-up's fit
            raise KeyboardInterrupt
        compiles += rec.get("compiles", 0)
    return len(seen), compiles


class _Fixed:
    """A source that already holds its data (warm-ups)."""

    def __init__(self, data):
        self.data = data

    def load(self):
        return self.data


def warm_worker(source, configs):
    """:func:`warm` on a Dask worker: ``(host:pid, compilations)``."""
    n, compiles = warm(source, configs)
    return f"{socket.gethostname()}:{os.getpid()}", compiles
