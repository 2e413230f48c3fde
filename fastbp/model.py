"""Sequential: the model. Validates once at the edge, owns every buffer, picks the backend.

The layer loop itself lives in the backends' ``network`` modules
(:mod:`fastbp.reference.network` is the readable one): this class compiles
its layers into a plan (:mod:`fastbp.plan`), keeps the flat parameter buffer
and everything a resumed ``fit`` needs (optimizer state, shuffle generator,
dropout counter), and hands whole runs of epochs to the backend through its
:class:`fastbp._engine.Engine`. ``fit``'s loop is :mod:`fastbp._training`.

Threads: a model is used by one thread at a time. Every method that reads
or writes its buffers holds the model's lock, so a second thread calling
``fit``, ``predict``, ``evaluate``, ``loss_and_grads``, ``forward``,
``save``, ``get_weights``/``set_weights`` or ``state_dict`` on the same
model waits until the first call returns (a ``save`` during a ``fit`` writes
the model as that ``fit`` leaves it). Separate models never wait for each
other and train in parallel.
"""
import functools
import threading

import numpy as np

from . import _memory, _training
from . import _validate as V
from . import io as _io
from . import plan as P
from ._config import DTYPES
from ._engine import Engine
from ._training import History, TrainingDivergedError  # noqa: F401  (public names)
from .backend import get_backend
from .layers import ACTIVATION_LAYERS, BatchNorm, Dense, Dropout, Layer, layer_from_config
from .losses import MSE, get_loss, loss_from_config

def _exclusive(method):
    """Run ``method`` holding the model's lock (one thread at a time per model)."""
    @functools.wraps(method)
    def locked(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)
    return locked


class Sequential:
    """A stack of layers trained by backpropagation.

    Parameters
    ----------
    layers : list of layers (``Dense``, ``Sigmoid``, ``ReLU``, ``Tanh``,
        ``Identity``, ``BatchNorm``, ``Dropout``); the first holds parameters.
    loss : ``MSE()`` (default), ``SoftmaxCrossEntropy()``, ``BinaryCrossEntropy()``
        or a name ("mse", "cross_entropy", "bce").
    backend : "numba" (default, the fast kernels) or "numpy" (the reference).
    dtype : "float64" (default) or "float32".
    seed : int; weights, shuffling and dropout masks all derive from it.

    A model is used by one thread at a time: concurrent calls on the same
    model wait for each other (see :mod:`fastbp.model`).
    """

    def __init__(self, layers, loss=None, backend="numba", dtype="float64", seed=0):
        if not isinstance(layers, (list, tuple)) or not layers:
            raise ValueError("layers must be a non-empty list of fastbp layers")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"layers[{i}] must be a fastbp layer, got {type(layer).__name__}")
        if len({id(layer) for layer in layers}) != len(layers):
            raise ValueError("the same layer object appears twice in layers; create a new one")
        if isinstance(dtype, type) and dtype in (np.float32, np.float64):
            dtype = dtype.__name__
        if dtype not in DTYPES:
            raise ValueError(f"unknown dtype {dtype!r}; expected 'float64' or 'float32'")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self._lock = threading.RLock()
        self.layers = list(layers)
        self.loss = MSE() if loss is None else get_loss(loss)
        self.dtype = np.dtype(DTYPES[dtype])
        self.seed = int(seed)
        get_backend(backend)            # a bad name fails before the layers are checked
        self.training = False
        self._build()
        self.backend = backend
        rng = np.random.default_rng([self.seed, 0])
        for i, layer in enumerate(self.layers):
            layer.reset_parameters(rng, self.layers[i + 1] if i + 1 < len(self.layers) else None)
        self.reset_state()

    # ------------------------------------------------------------------ structure
    @property
    def backend(self):
        return self._backend_name

    @backend.setter
    def backend(self, name):
        with self._lock:
            self._engine = Engine(get_backend(name), self._net, self.dtype, name)
            self._backend_name = name

    @property
    def _ops(self):
        """The backend's ops module (replaceable, e.g. by a test)."""
        return self._engine.ops

    @_ops.setter
    def _ops(self, ops):
        self._engine.ops = ops

    def _build(self):
        """Compile the layers into the plan and bind them to new flat buffers."""
        net = self._net = P.compile_plan(self.layers, self.loss, self.seed)
        self._plan, self._pf, self._layer_rows = net.plan, net.pf, net.layer_rows
        self.n_inputs, self.n_outputs, self.n_params = net.n_inputs, net.n_outputs, net.n_params
        self.params = np.zeros(net.n_params, dtype=self.dtype)
        self.grads = np.zeros(net.n_params, dtype=self.dtype)
        self.state = np.zeros(net.n_state, dtype=self.dtype)
        for layer, r in zip(self.layers, net.layer_rows):
            layer.bind(net.plan[r] if r >= 0 else None, self.params, self.state)

    @_exclusive
    def reset_state(self):
        """Forget the training history: optimizer state, shuffle generator, counters."""
        self._opt_kind = None
        self._opt_a = np.zeros(0, dtype=self.dtype)
        self._opt_b = np.zeros(0, dtype=self.dtype)
        self._counters = np.zeros(2, dtype=np.int64)
        self._shuffle_rng = np.random.default_rng([self.seed, 1])
        self.epochs_trained = 0

    def _workspace(self, batch):
        return self._engine.workspace(batch)

    def _check_X(self, X, name="X"):
        return V.check_X(X, self.n_inputs, self.dtype, name)

    def _check_y(self, y, n, name="y"):
        """Targets as (Yf (n, k) float, Yi (n,) int64); the unused one is empty."""
        return V.check_y(y, n, self.n_outputs, self.loss.code, self.dtype, name)

    def _check_train_batch(self, training, n):
        if training and n == 1 and self._net.has(P.BATCHNORM):
            raise ValueError("BatchNorm needs at least 2 samples in training mode; pass more "
                             "rows or training=False")

    # ------------------------------------------------------------------ inference
    @_exclusive
    def predict(self, X, batch_size=1024):
        """The network's output (n, n_outputs) in eval mode.

        With BinaryCrossEntropy that is the sigmoid output; with
        SoftmaxCrossEntropy the logits (see :meth:`predict_proba`).
        """
        X = self._check_X(X)
        batch = min(V.check_int(batch_size, "batch_size"), X.shape[0])
        out = self._engine.predict(self.params, self.state, X, batch)
        if not V.all_finite(out):
            raise V.overflow("the network's output", X, self.dtype)
        return out

    def predict_proba(self, X, batch_size=1024):
        """Class probabilities: softmax of the logits, or the sigmoid output (n, 1)."""
        out = self.predict(X, batch_size)
        if self.loss.code == P.SOFTMAX_CE:
            out = out - out.max(axis=1, keepdims=True)
            np.exp(out, out=out)
            out /= out.sum(axis=1, keepdims=True)
        return out

    def predict_classes(self, X, batch_size=1024):
        """Class labels (n,): the argmax of several outputs, or output > 0.5 for one."""
        out = self.predict(X, batch_size)
        if out.shape[1] == 1:
            return (out[:, 0] > 0.5).astype(np.int64)
        return np.argmax(out, axis=1)

    @_exclusive
    def evaluate(self, X, y, batch_size=1024):
        """``{"loss": float, "accuracy": float}`` over (X, y) in eval mode.

        Accuracy: argmax against the label for several outputs; output > 0.5
        against target > 0.5 for one output.
        """
        X = self._check_X(X)
        Yf, Yi = self._check_y(y, X.shape[0])
        batch = min(V.check_int(batch_size, "batch_size"), X.shape[0])
        loss, correct = self._engine.evaluate(self.params, self.state, X, Yf, Yi, batch)
        if not np.isfinite(loss):
            raise V.overflow("the loss", X, self.dtype)
        return {"loss": loss, "accuracy": correct / X.shape[0]}

    @_exclusive
    def loss_and_grads(self, X, y, training=True):
        """Loss of the whole batch (X, y) and the gradient of every parameter.

        Training mode by default (BatchNorm on batch statistics, dropout with
        the model's current mask), without changing anything in the model: no
        update, running statistics and counters stay as they are. Gradients
        come as a list in the order of :meth:`get_weights`.
        """
        training = V.check_bool(training, "training")
        X = self._check_X(X)
        Yf, Yi = self._check_y(y, X.shape[0])
        self._check_train_batch(training, X.shape[0])
        loss, grads = self._engine.loss_and_grads(self.params, self.state, X, Yf, Yi, training,
                                                  int(self._counters[P.C_DROPOUT]))
        if not (np.isfinite(loss) and np.isfinite(grads).all()):
            raise V.overflow("the loss or its gradient", X, self.dtype)
        return loss, self._split(grads)

    # ------------------------------------------------------------------ weights
    def _shapes(self):
        return [shape for layer in self.layers for shape in layer.param_shapes()]

    def _split(self, flat):
        """Copies of the per-array pieces of a flat buffer, in get_weights order."""
        out, off = [], 0
        for shape in self._shapes():
            size = int(np.prod(shape))
            out.append(flat[off:off + size].reshape(shape).copy())
            off += size
        return out

    @_exclusive
    def get_weights(self):
        """Copies: per Dense W (in, out) then b (out,) if it has one; per BatchNorm gamma, beta."""
        return self._split(self.params)

    @_exclusive
    def set_weights(self, weights):
        """Set every parameter from a list in :meth:`get_weights` order (validated first)."""
        arrays = V.check_weights(weights, self._shapes(), self.dtype)
        if arrays:
            self.params[...] = np.concatenate([a.ravel() for a in arrays])

    def train(self):
        """Training mode for :meth:`forward` (batch statistics, dropout on)."""
        self.training = True
        return self

    def eval(self):
        """Eval mode for :meth:`forward` (running statistics, dropout off)."""
        self.training = False
        return self

    @_exclusive
    def forward(self, X, training=None):
        """The output of the last plan row for X, in the current mode (or ``training``).

        Pure: BatchNorm's running statistics and the dropout counter are not
        changed (``fit`` is what trains).
        """
        training = self.training if training is None else bool(training)
        X = self._check_X(X)
        self._check_train_batch(training, X.shape[0])
        out = self._engine.output(self.params, self.state, X, training,
                                  int(self._counters[P.C_DROPOUT]))
        if not V.all_finite(out):
            raise V.overflow("the network's output", X, self.dtype)
        return out

    __call__ = forward

    # ------------------------------------------------------------------ training
    def _prepare_optimizer_state(self, opt):
        """Keep the optimizer state across fit calls; start afresh if the kind changes."""
        kind = (type(opt).__name__, opt.n_buffers())
        if self._opt_kind != kind:
            nbuf = opt.n_buffers()
            self._opt_a = np.zeros(self.n_params if nbuf >= 1 else 0, dtype=self.dtype)
            self._opt_b = np.zeros(self.n_params if nbuf >= 2 else 0, dtype=self.dtype)
            if self._opt_kind is not None:
                self._counters[P.C_OPT] = 0
            self._opt_kind = kind

    @_exclusive
    def fit(self, X, y, epochs=1, lr=0.01, batch_size=32, shuffle=True, optimizer="sgd",
            momentum=0.0, nesterov=False, weight_decay=0.0, betas=(0.9, 0.999), eps=1e-8,
            lr_schedule=None, validation_data=None, patience=None, min_delta=0.0,
            restore_best_weights=True, stop_at_accuracy=None, verbose=False, print_every=None,
            checkpoint=None, checkpoint_every=1, sample_weight=None, l2=0.0):
        """Train; returns a :class:`History`. Continues where the last call stopped.

        epochs: how many epochs this call runs. lr: base learning rate, scaled
        per epoch by ``lr_schedule`` (None/"constant", ``StepLR``,
        ``ExponentialLR`` or a callable epoch -> factor; the epoch count runs
        on across calls). batch_size=1 is per-sample (online) SGD, a whole
        epoch per kernel call. optimizer: "sgd" (momentum, nesterov,
        weight_decay) or "adam" (betas, eps, weight_decay), or an ``SGD``/``Adam``.
        validation_data=(X_val, y_val) is evaluated after every epoch;
        patience=N stops once the validation loss has not improved by
        min_delta for N epochs, restoring the best weights if asked.
        stop_at_accuracy=a stops once an eval pass over the training data
        classifies a fraction >= a right (1.0: every point). verbose: a tqdm
        progress bar on a terminal; print_every=N prints a loss line every N
        epochs. checkpoint=path saves the model every ``checkpoint_every``
        epochs (atomically). Ctrl-C stops after the current step and returns
        the History with ``interrupted=True``.

        sample_weight (n,): non-negative row weights; each batch's loss is the
        weighted mean (the ``*_weighted`` losses). l2: an L2 penalty on the
        Dense weights only (not biases, not BatchNorm), scaled as scikit-learn's
        ``alpha``: each step adds ``l2 / w * W`` to the weight gradients, w being
        the batch's row count (or the sum of its sample weights), and
        ``l2 / (2 w) * sum(W**2)`` to the reported loss. With either (or an
        ``Adam(eps_hat=True)``), batch_size=1 runs the mini-batch kernel.

        If the loss or the weights become NaN or infinite, fit raises
        :class:`TrainingDivergedError` and the model keeps the last state that
        is finite and predicts finite values on X: the weights after the last
        step whose loss was finite, else those from before the kernel call
        that diverged, else those fit started from (the message says which;
        the History and ``epochs_trained`` match it).
        """
        X = _memory.check_fit(self, X, batch_size, epochs, validation_data)   # before any copy
        s = _training.settings(
            self, X, y, epochs, lr, batch_size, shuffle, optimizer, momentum, nesterov,
            weight_decay, betas, eps, lr_schedule, validation_data, patience, min_delta,
            restore_best_weights, stop_at_accuracy, verbose, print_every, checkpoint,
            checkpoint_every, sample_weight, l2)
        return _training.fit(self, s)

    def trace(self, X, y, lr=0.01):
        """Record one plain SGD step on (X, y) term by term, without changing the model.

        Returns a :class:`fastbp.trace.Trace` (its ``text()`` is the worked
        example, ``html(path)`` the interactive page); see :func:`fastbp.trace.trace`.
        """
        from .trace import trace
        return trace(self, X, y, lr=lr)

    # ------------------------------------------------------------------ persistence
    def save(self, path):
        """Write the model (architecture, weights, optimizer and RNG state) to one .npz,
        atomically; see :func:`fastbp.io.save` for what ``path`` may be."""
        _io.save(self, path)

    def to_onnx(self, path=None, opset=13, fold_batchnorm=False):
        """Export to ONNX (eval mode, this model's dtype, default opset 13); returns the
        ``onnx.ModelProto``. See :func:`fastbp.export.to_onnx`."""
        from .export import to_onnx
        return to_onnx(self, path, opset=opset, fold_batchnorm=fold_batchnorm)

    def to_torch(self):
        """The equivalent ``torch.nn.Sequential`` (eval mode); see :func:`fastbp.interop.to_torch`."""
        from ._convert import to_torch
        return to_torch(self)

    @_exclusive
    def state_dict(self):
        """The full state: ``{"description": JSON-able dict, "arrays": {name: array copy}}``.

        description: layers, loss, dtype, backend, seed, optimizer kind, the
        shuffle generator's state, epochs trained, train/eval mode. arrays:
        ``params``, ``state`` (BatchNorm running statistics), ``opt_a`` /
        ``opt_b`` (momentum or Adam moments), ``counters`` (dropout step,
        optimizer step). :meth:`from_state` rebuilds the model from it.
        """
        return _state_of(self)

    @classmethod
    def from_state(cls, state, backend=None):
        """The model :meth:`state_dict` described (``backend`` overrides the saved one).

        Raises ValueError when the description does not build or an array
        disagrees with it (shape, dtype, NaN/inf, negative counters).
        """
        d, arrays = state["description"], state["arrays"]
        model = _build_from(cls, d, arrays, backend)
        _restore(model, d, arrays)
        return model

    # ------------------------------------------------------------------ description
    def summary(self):
        """A table of layers, output shapes and parameter counts."""
        lines = [f"Sequential(backend={self.backend!r}, dtype={self.dtype.name!r}, seed={self.seed})",
                 f"{'layer':<36}{'output':>12}{'params':>10}"]
        width = self.n_inputs
        for layer in self.layers:
            width = layer.output_width(width)
            lines.append(f"{repr(layer):<36}{'(n, ' + str(width) + ')':>12}{layer.n_params():>10}")
        lines.append(f"loss: {self.loss!r}; {self.n_params} parameters")
        return "\n".join(lines)

    def __repr__(self):
        layers = ", ".join(repr(layer) for layer in self.layers)
        return (f"Sequential([{layers}], loss={self.loss!r}, backend={self.backend!r}, "
                f"dtype={self.dtype.name!r}, seed={self.seed})")


def _state_of(model):
    description = {
        "layers": [layer.describe() for layer in model.layers],
        "loss": {"type": type(model.loss).__name__, **model.loss.get_config()},
        "dtype": model.dtype.name,
        "backend": model.backend,
        "seed": model.seed,
        "optimizer": list(model._opt_kind) if model._opt_kind else None,
        "shuffle_rng": model._shuffle_rng.bit_generator.state,
        "epochs_trained": int(model.epochs_trained),
        "training": bool(model.training),
    }
    arrays = {"params": model.params, "state": model.state, "opt_a": model._opt_a,
              "opt_b": model._opt_b, "counters": model._counters}
    return {"description": description,
            "arrays": {k: np.array(v, order="C") for k, v in arrays.items()}}


def _restore(model, d, arrays):
    """Give a freshly built ``model`` the state (description ``d``, ``arrays``), checked first."""
    opt = d.get("optimizer")
    _check_arrays(model, arrays, int(opt[1]) if opt else 0)
    try:
        model._shuffle_rng.bit_generator.state = d["shuffle_rng"]
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"bad shuffle generator state ({exc})") from None
    model.epochs_trained = d["epochs_trained"]
    model.training = d["training"]
    model.params[...] = arrays["params"]
    model.state[...] = arrays["state"]
    model._opt_kind = (opt[0], int(opt[1])) if opt else None
    model._opt_a = np.array(arrays["opt_a"])
    model._opt_b = np.array(arrays["opt_b"])
    model._counters[...] = arrays["counters"]


def _build_from(cls, d, arrays, backend):
    """A fresh model of the architecture in description ``d``, checked against ``params``."""
    try:
        layers = [layer_from_config(c) for c in d["layers"]]
        loss = loss_from_config(d["loss"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"its architecture does not build ({exc})") from None
    # the parameter count first, so a damaged description never allocates more than it holds
    n_params = sum(layer.n_params() for layer in layers)
    if n_params != arrays["params"].size:
        raise ValueError(f"its layers have {n_params} parameters but array 'params' holds "
                         f"{arrays['params'].size}")
    try:
        return cls(layers, loss=loss, backend=backend or d["backend"], dtype=d["dtype"],
                   seed=d["seed"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"its architecture does not build ({exc})") from None


def _check_arrays(model, arrays, nbuf):
    """Every array of a state has the shape and dtype ``model`` needs, and is finite."""
    expect = {"params": ((model.n_params,), model.dtype),
              "state": (model.state.shape, model.dtype),
              "opt_a": ((model.n_params if nbuf >= 1 else 0,), model.dtype),
              "opt_b": ((model.n_params if nbuf >= 2 else 0,), model.dtype),
              "counters": ((2,), np.dtype(np.int64))}
    for key, (shape, dtype) in expect.items():
        a = arrays[key]
        if a.shape != shape or a.dtype != dtype:
            raise ValueError(f"array {key!r} is {a.dtype}{a.shape}, the architecture needs "
                             f"{np.dtype(dtype)}{shape}")
    for key in ("params", "state", "opt_a", "opt_b"):
        if not np.isfinite(arrays[key]).all():
            raise ValueError(f"array {key!r} holds NaN or infinite values")
    if (arrays["counters"] < 0).any():
        raise ValueError("negative step counters")


_io.register_model("Sequential", Sequential.from_state)


def MLP(sizes, activation="sigmoid", output_activation="sigmoid", loss="mse", backend="numba",
        dtype="float64", seed=0, init=None, batchnorm=False, dropout=0.0, bias=True):
    """Shortcut for a Sequential of Dense layers.

    sizes: [n_in, hidden..., n_out]. activation: after every hidden Dense
    ("sigmoid", "relu", "tanh", "identity"). output_activation: after the last
    Dense; default "sigmoid" (the original sigmoid networks); use "identity"
    for logits with loss="cross_entropy". batchnorm / dropout: add
    BatchNorm / Dropout(dropout) after each hidden Dense (before its activation
    / after it, as Dense -> BatchNorm -> act -> Dropout).
    """
    if not isinstance(sizes, (list, tuple)) or len(sizes) < 2:
        raise ValueError("sizes must be a list [n_in, ..., n_out] of at least 2 integers")
    for i, size in enumerate(sizes):
        V.check_int(size, f"sizes[{i}]")
    dropout = V.check_float(dropout, "dropout", 0.0, 1.0, high_open=True)
    for name in (activation, output_activation):
        if name not in ACTIVATION_LAYERS:
            raise ValueError(f"unknown activation {name!r}; expected one of "
                             f"{', '.join(ACTIVATION_LAYERS)}")
    layers = []
    for i in range(len(sizes) - 1):
        last = i == len(sizes) - 2
        layers.append(Dense(sizes[i], sizes[i + 1], bias=bias, init=init))
        if not last and batchnorm:
            layers.append(BatchNorm(sizes[i + 1]))
        layers.append(ACTIVATION_LAYERS[output_activation if last else activation]())
        if not last and dropout:
            layers.append(Dropout(dropout))
    return Sequential(layers, loss=loss, backend=backend, dtype=dtype, seed=seed)
