"""Sequential: the model. Validates once at the edge, owns every buffer, picks the backend.

The layer loop itself lives in the backends' ``network`` modules
(:mod:`fastbp.reference.network` is the readable one): this class turns its
layers into a plan (:mod:`fastbp.plan`), keeps the flat parameter buffer and
everything a resumed ``fit`` needs (optimizer state, shuffle generator,
dropout counter), and hands whole runs of epochs to the backend.
"""
import math
import signal
import threading
import time

import numpy as np

from . import _memory
from . import _threads
from . import plan as P
from ._config import ACTIVATIONS, DTYPES
from .backend import get_backend
from .io import check_path
from .layers import (ACTIVATION_LAYERS, Activation, BatchNorm, Dense, Dropout, Identity, Layer,
                     Sigmoid, _check_float, _check_int)
from .losses import MSE, BinaryCrossEntropy, SoftmaxCrossEntropy, get_loss
from .optim import SGD, Adam, get_schedule

_MAX_ORDER_ELEMENTS = 1 << 22      # shuffled orders precomputed per kernel call
_TARGET_CALL_SECONDS = 0.1         # how long one kernel call may run (Ctrl-C latency)
_THREAD_WORK = 1 << 21             # samples x params x epochs above which a call runs in a
                                   # worker thread, so Ctrl-C is seen mid-call (below: ~ms)


class TrainingDivergedError(FloatingPointError):
    """The loss became NaN or infinite; ``.history`` holds the epochs before it."""

    def __init__(self, message, history):
        super().__init__(message)
        self.history = history


class History:
    """What ``fit`` measured, one entry per completed epoch.

    loss / accuracy: read off the training batches as they were computed
    (before each step's update), as Keras reports them. val_loss /
    val_accuracy: an eval-mode pass over the validation data after each epoch.
    """

    def __init__(self):
        self.loss, self.accuracy, self.val_loss, self.val_accuracy, self.lr = [], [], [], [], []
        self.epochs_run = 0
        self.stopped_early = False
        self.stop_reason = None         # "accuracy", "early_stopping", "interrupted" or None
        self.interrupted = False
        self.best_epoch = None
        self.seconds = 0.0

    def __repr__(self):
        last = f", loss={self.loss[-1]:.6g}" if self.loss else ""
        return (f"History(epochs_run={self.epochs_run}{last}, stopped_early={self.stopped_early}, "
                f"stop_reason={self.stop_reason!r})")


def _as_float_array(a, name, dtype):
    """``a`` as a C-contiguous float array of ``dtype``; rejects non-numeric input."""
    if isinstance(a, (str, bytes)):
        raise TypeError(f"{name} must be a numeric array, got a string")
    try:
        arr = np.asarray(a)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{name} could not be read as an array: {exc}") from None
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers, got dtype {arr.dtype}")
    with np.errstate(over="ignore"):    # values beyond dtype's range: the caller says so
        return np.ascontiguousarray(arr, dtype=dtype)


def _all_finite(X, block=1 << 18):
    """``np.isfinite(X).all()`` for a 2-D X, a block of rows at a time (no n x d temporary)."""
    rows = max(1, block // max(1, X.shape[1]))
    return all(np.isfinite(X[i:i + rows]).all() for i in range(0, X.shape[0], rows))


def _non_finite(raw, name, dtype):
    """Why ``raw`` is not finite as ``dtype``: NaN/inf given, or values beyond its range."""
    try:
        a = np.asarray(raw)
        if a.dtype.kind in "biu" or (a.dtype.kind == "f" and np.isfinite(a).all()):
            big = float(max(abs(a.max()), abs(a.min())))
            return (f"{name} holds values up to {big:.3g} in magnitude, beyond the range of "
                    f"{dtype.name} (about {float(np.finfo(dtype).max):.3g}); scale the data or "
                    f"use dtype='float64'")
    except (TypeError, ValueError, OverflowError):
        pass
    return f"{name} contains NaN or infinite values"


def _overflow(what, X, dtype):
    """The error for a computation that overflowed although X was finite."""
    big = float(max(abs(X.max()), abs(X.min())))
    return FloatingPointError(
        f"{what} overflowed to inf/NaN in {dtype.name} for this X (largest |value| {big:.3g}); "
        f"scale the inputs (e.g. standardise them) or use dtype='float64'")


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
        self.layers = list(layers)
        self.loss = MSE() if loss is None else get_loss(loss)
        self.dtype = np.dtype(DTYPES[dtype])
        self.seed = int(seed)
        self.backend = backend          # validated by the property setter
        self.training = False
        self._build()
        self._init_params()
        self.reset_state()

    # ------------------------------------------------------------------ structure
    @property
    def backend(self):
        return self._backend_name

    @backend.setter
    def backend(self, name):
        self._ops = get_backend(name)
        self._backend_name = name
        self._buffers = {}

    def _build(self):
        """Check the layer chain and lay out the flat buffers and the plan."""
        layers = self.layers
        if not isinstance(layers[0], (Dense, BatchNorm)):
            raise ValueError("the first layer must be Dense or BatchNorm (it fixes the input width)")
        folded = None
        if isinstance(self.loss, BinaryCrossEntropy):
            if not isinstance(layers[-1], Sigmoid):
                raise ValueError("BinaryCrossEntropy needs a Sigmoid as the last layer "
                                 "(it is computed stably from the value before that sigmoid)")
            folded = len(layers) - 1
        width = layers[0].in_features if isinstance(layers[0], Dense) else layers[0].num_features
        self.n_inputs = width
        rows, pfs = [], []
        layer_rows = []       # the plan row each layer runs in (-1: folded into the loss)
        n_params = n_state = 0
        fusable = False
        for i, layer in enumerate(layers):
            row = np.zeros(P.N_COLS, dtype=np.int64)
            f = [0.0, 0.0]
            row[P.N_IN] = width
            if isinstance(layer, Dense):
                if layer.in_features != width:
                    raise ValueError(f"layers[{i}] is Dense({layer.in_features}, ...) but its "
                                     f"input has {width} features")
                width = layer.out_features
                row[P.KIND], row[P.N_OUT], row[P.ACTV] = P.DENSE, width, ACTIVATIONS["identity"]
                row[P.P_A] = n_params
                n_params += layer.in_features * width
                row[P.P_B] = n_params if layer.bias else -1
                n_params += width if layer.bias else 0
                rows.append(row)
                pfs.append(f)
                layer_rows.append(len(rows) - 1)
                fusable = True
                continue
            if i == folded:
                layer_rows.append(-1)
                break
            if isinstance(layer, Activation):
                if fusable:     # the bias add and this activation run in the pass after the GEMM
                    rows[-1][P.ACTV] = ACTIVATIONS[layer.name]
                    fusable = isinstance(layer, Identity)
                    layer_rows.append(len(rows) - 1)
                    continue
                row[P.KIND], row[P.N_OUT], row[P.ACTV] = P.ACT, width, ACTIVATIONS[layer.name]
            elif isinstance(layer, BatchNorm):
                if layer.num_features != width:
                    raise ValueError(f"layers[{i}] is BatchNorm({layer.num_features}) but its "
                                     f"input has {width} features")
                row[P.KIND], row[P.N_OUT] = P.BATCHNORM, width
                row[P.P_A], row[P.P_B] = n_params, n_params + width
                n_params += 2 * width
                row[P.STATE] = n_state
                n_state += 2 * width
                f = [layer.momentum, layer.eps]
            elif isinstance(layer, Dropout):
                row[P.KIND], row[P.N_OUT] = P.DROPOUT, width
                row[P.KEY] = (self.seed * 0x9E3779B1 + 0x632BE5AB * (i + 1)) % (1 << 62)
                f = [layer.p, 0.0]
            else:
                raise TypeError(f"layers[{i}]: unsupported layer {type(layer).__name__}")
            fusable = False
            rows.append(row)
            pfs.append(f)
            layer_rows.append(len(rows) - 1)
        if not any(r[P.KIND] == P.DENSE for r in rows):
            raise ValueError("the network needs at least one Dense layer")
        self.n_outputs = width
        if isinstance(self.loss, SoftmaxCrossEntropy) and width < 2:
            raise ValueError("SoftmaxCrossEntropy needs at least 2 outputs; for one output use "
                             "a Sigmoid with BinaryCrossEntropy")
        self._layer_rows = layer_rows
        self._plan = np.array(rows, dtype=np.int64)
        self._pf = np.array(pfs, dtype=np.float64)
        self._lf = np.array(self.loss.settings(), dtype=np.float64)
        self._out_sigmoid = folded is not None
        # accuracy threshold on the last row's output: logits (BCE) or a [0, 1] output
        self._threshold = 0.0 if self._out_sigmoid else 0.5
        self.n_params = n_params
        self.params = np.zeros(n_params, dtype=self.dtype)
        self.grads = np.zeros(n_params, dtype=self.dtype)
        self.state = np.zeros(n_state, dtype=self.dtype)
        self._bind_views()

    def _bind_views(self):
        """Point every layer's parameters at the flat buffers."""
        for layer, r in zip(self.layers, self._layer_rows):
            if r < 0:
                continue
            row = self._plan[r]
            if isinstance(layer, Dense):
                pa, pb, n_in, n_out = row[P.P_A], row[P.P_B], row[P.N_IN], row[P.N_OUT]
                layer.W = self.params[pa:pa + n_in * n_out].reshape(n_in, n_out)
                layer.b = self.params[pb:pb + n_out] if pb >= 0 else None
            elif isinstance(layer, BatchNorm):
                n, s = row[P.N_OUT], row[P.STATE]
                layer.gamma = self.params[row[P.P_A]:row[P.P_A] + n]
                layer.beta = self.params[row[P.P_B]:row[P.P_B] + n]
                layer.running_mean = self.state[s:s + n]
                layer.running_var = self.state[s + n:s + 2 * n]

    def _init_params(self):
        rng = np.random.default_rng([self.seed, 0])
        for i, layer in enumerate(self.layers):
            if isinstance(layer, Dense):
                nxt = self.layers[i + 1] if i + 1 < len(self.layers) else None
                nxt_name = nxt.name if isinstance(nxt, Activation) else None
                W = np.empty(layer.W.shape)
                b = np.empty(layer.b.shape) if layer.b is not None else None
                layer.initialize(rng, W, b, nxt_name)
                layer.W[...] = W
                if b is not None:
                    layer.b[...] = b
            elif isinstance(layer, BatchNorm):
                layer.gamma[...] = 1.0
                layer.beta[...] = 0.0
                layer.running_mean[...] = 0.0
                layer.running_var[...] = 1.0

    def reset_state(self):
        """Forget the training history: optimizer state, shuffle generator, counters."""
        self._opt_kind = None
        self._opt_a = np.zeros(0, dtype=self.dtype)
        self._opt_b = np.zeros(0, dtype=self.dtype)
        self._counters = np.zeros(2, dtype=np.int64)
        self._shuffle_rng = np.random.default_rng([self.seed, 1])
        self.epochs_trained = 0

    # ------------------------------------------------------------------ buffers
    def _workspace(self, batch):
        """Buffers for ``batch`` rows, allocated once per batch size and reused."""
        buf = self._buffers.get(batch)
        if buf is None:
            plan = self._plan.copy()
            size = P.layout(plan, batch)
            width = P.max_width(plan)
            k = self.n_outputs
            dt = self.dtype
            yf_cols = k if not isinstance(self.loss, SoftmaxCrossEntropy) else 0
            buf = dict(
                plan=plan,
                ws=np.zeros(size, dtype=dt),
                ga=np.zeros(max(batch, 2) * width, dtype=dt),   # the online kernel uses 2 halves
                gb=np.zeros(batch * width, dtype=dt),
                xb=np.zeros((batch, self.n_inputs), dtype=dt),
                yfb=np.zeros((batch if yf_cols else 0, yf_cols), dtype=dt),
                yib=np.zeros(batch if not yf_cols else 0, dtype=np.int64),
                probs=np.zeros(batch * k, dtype=dt),
            )
            if len(self._buffers) > 4:      # keep a handful of batch sizes
                self._buffers.pop(next(iter(self._buffers)))
            self._buffers[batch] = buf
        return buf

    # ------------------------------------------------------------------ validation
    def _check_X(self, X, name="X"):
        raw = X
        X = _as_float_array(X, name, self.dtype)
        if X.ndim != 2:
            raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {X.shape}")
        if X.shape[0] == 0:
            raise ValueError(f"{name} is empty (0 samples)")
        if X.shape[1] != self.n_inputs:
            raise ValueError(f"{name} has {X.shape[1]} features but the model expects "
                             f"{self.n_inputs}")
        if not _all_finite(X):
            raise ValueError(_non_finite(raw, name, self.dtype))
        return X

    def _check_y(self, y, n, name="y"):
        """Targets as (Yf (n, k) float, Yi (n,) int64); the unused one is empty."""
        k = self.n_outputs
        if isinstance(y, (str, bytes)):
            raise TypeError(f"{name} must be a numeric array, got a string")
        arr = np.asarray(y)
        if arr.dtype == object or arr.dtype.kind not in "biuf":
            raise TypeError(f"{name} must hold numbers, got dtype {arr.dtype}")
        if arr.shape[:1] != (n,):
            raise ValueError(f"{name} has {arr.shape[0] if arr.ndim else 0} rows but X has {n}")
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise ValueError(f"{name} contains NaN or infinite values")
        empty_f = np.zeros((0, 0), dtype=self.dtype)
        empty_i = np.zeros(0, dtype=np.int64)
        if isinstance(self.loss, SoftmaxCrossEntropy):
            if arr.ndim == 2 and arr.shape[1] == k and k > 1:
                ok = np.all((arr == 0) | (arr == 1), axis=1) & (arr.sum(axis=1) == 1)
                if not ok.all():
                    raise ValueError(f"{name} has {k} columns but row {int(np.argmin(ok))} is "
                                     "not one-hot; give integer labels (n,) or one-hot rows")
                labels = np.argmax(arr, axis=1)
            elif arr.ndim == 1 or (arr.ndim == 2 and arr.shape[1] == 1):
                labels = arr.reshape(n)
                if labels.dtype.kind == "f" and not np.all(labels == np.round(labels)):
                    raise ValueError(f"{name} holds non-integer class labels")
            else:
                raise ValueError(f"{name} must be integer labels (n,) or one-hot (n, {k}), "
                                 f"got shape {arr.shape}")
            if labels.min() < 0 or labels.max() >= k:
                raise ValueError(f"{name} has labels outside [0, {k}): found "
                                 f"{labels.min()}..{labels.max()}")
            return empty_f, np.ascontiguousarray(labels, dtype=np.int64)
        if arr.ndim == 1 and k == 1:
            arr = arr.reshape(n, 1)
        if arr.ndim != 2 or arr.shape[1] != k:
            raise ValueError(f"{name} must have shape ({n}, {k}) to match the model's {k} "
                             f"output(s), got {arr.shape}")
        if isinstance(self.loss, BinaryCrossEntropy) and (arr.min() < 0 or arr.max() > 1):
            raise ValueError(f"{name} must lie in [0, 1] for BinaryCrossEntropy")
        with np.errstate(over="ignore"):
            Yf = np.ascontiguousarray(arr, dtype=self.dtype)
        if not np.isfinite(Yf).all():
            raise ValueError(_non_finite(arr, name, self.dtype))
        return Yf, empty_i

    # ------------------------------------------------------------------ inference
    def predict(self, X, batch_size=1024):
        """The network's output (n, n_outputs) in eval mode.

        With BinaryCrossEntropy that is the sigmoid output; with
        SoftmaxCrossEntropy the logits (see :meth:`predict_proba`).
        """
        X = self._check_X(X)
        batch = min(_check_int(batch_size, "batch_size"), X.shape[0])
        buf = self._workspace(batch)
        out = np.empty((X.shape[0], self.n_outputs), dtype=self.dtype)
        with _threads.limit(_threads.threads_for(buf["plan"], batch)):
            self._ops.predict(buf["plan"], self._pf, self.params, self.state, X,
                              self._out_sigmoid, buf["ws"], batch, out)
        if not _all_finite(out):
            raise _overflow("the network's output", X, self.dtype)
        return out

    def predict_proba(self, X, batch_size=1024):
        """Class probabilities: softmax of the logits, or the sigmoid output (n, 1)."""
        out = self.predict(X, batch_size)
        if isinstance(self.loss, SoftmaxCrossEntropy):
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

    def evaluate(self, X, y, batch_size=1024):
        """``{"loss": float, "accuracy": float}`` over (X, y) in eval mode.

        Accuracy: argmax against the label for several outputs; output > 0.5
        against target > 0.5 for one output.
        """
        X = self._check_X(X)
        Yf, Yi = self._check_y(y, X.shape[0])
        batch = min(_check_int(batch_size, "batch_size"), X.shape[0])
        buf = self._workspace(batch)
        with _threads.limit(_threads.threads_for(buf["plan"], batch)):
            loss, correct = self._ops.evaluate(buf["plan"], self._pf, self.loss.code, self._lf,
                                               self.params, self.state, X, Yf, Yi,
                                               self._threshold, batch, buf["ws"], buf["ga"],
                                               buf["probs"])
        if not math.isfinite(loss):
            raise _overflow("the loss", X, self.dtype)
        return {"loss": float(loss), "accuracy": correct / X.shape[0]}

    def loss_and_grads(self, X, y, training=True):
        """Loss of the whole batch (X, y) and the gradient of every parameter.

        Training mode by default (BatchNorm on batch statistics, dropout with
        the model's current mask), without changing anything in the model: no
        update, running statistics and counters stay as they are. Gradients
        come as a list in the order of :meth:`get_weights`.
        """
        if not isinstance(training, (bool, np.bool_)):
            raise TypeError(f"training must be True or False, got {training!r}")
        X = self._check_X(X)
        Yf, Yi = self._check_y(y, X.shape[0])
        n = X.shape[0]
        if training and n == 1 and self._has(P.BATCHNORM):
            raise ValueError("BatchNorm needs at least 2 samples in training mode; pass more "
                             "rows or training=False")
        buf = self._workspace(n)
        ops = self._ops
        state = self.state.copy()
        ops.forward(buf["plan"], self._pf, self.params, state, X, buf["ws"], bool(training),
                    int(self._counters[P.C_DROPOUT]))
        out = ops.layer_output(buf["plan"], buf["ws"], n)
        k = self.n_outputs
        loss = ops.loss_and_grad(self.loss.code, self._lf, out, Yf, Yi, buf["probs"][:n * k]
                                 .reshape(n, k), buf["ga"][:n * k].reshape(n, k))
        grads = np.zeros_like(self.params)
        ops.backward(buf["plan"], self._pf, self.params, X, buf["ws"], buf["ga"], buf["gb"], grads)
        if not (math.isfinite(loss) and np.isfinite(grads).all()):
            raise _overflow("the loss or its gradient", X, self.dtype)
        return float(loss), self._split(grads)

    def _has(self, kind):
        return bool(np.any(self._plan[:, P.KIND] == kind))

    # ------------------------------------------------------------------ weights
    def _shapes(self):
        shapes = []
        for layer in self.layers:
            if isinstance(layer, Dense):
                shapes.append(layer.W.shape)
                if layer.b is not None:
                    shapes.append(layer.b.shape)
            elif isinstance(layer, BatchNorm):
                shapes += [layer.gamma.shape, layer.beta.shape]
        return shapes

    def _split(self, flat):
        """Copies of the per-array pieces of a flat buffer, in get_weights order."""
        out, off = [], 0
        for shape in self._shapes():
            size = int(np.prod(shape))
            out.append(flat[off:off + size].reshape(shape).copy())
            off += size
        return out

    def get_weights(self):
        """Copies: per Dense W (in, out) then b (out,) if it has one; per BatchNorm gamma, beta."""
        return self._split(self.params)

    def set_weights(self, weights):
        """Set every parameter from a list in :meth:`get_weights` order (validated first)."""
        shapes = self._shapes()
        if not isinstance(weights, (list, tuple)):
            raise TypeError("weights must be a list of arrays in get_weights() order")
        if len(weights) != len(shapes):
            raise ValueError(f"weights: expected {len(shapes)} arrays (in get_weights() "
                             f"order), got {len(weights)}")
        arrays = []
        for i, (w, shape) in enumerate(zip(weights, shapes)):
            a = _as_float_array(w, f"weights[{i}]", self.dtype)
            if a.shape != shape:
                raise ValueError(f"weights[{i}] has shape {a.shape}, expected {shape}")
            if not np.isfinite(a).all():
                raise ValueError(f"weights[{i}] contains NaN or infinite values")
            arrays.append(a)
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

    def forward(self, X, training=None):
        """The output of the last plan row for X, in the current mode (or ``training``).

        Pure: BatchNorm's running statistics and the dropout counter are not
        changed (``fit`` is what trains).
        """
        training = self.training if training is None else bool(training)
        X = self._check_X(X)
        n = X.shape[0]
        if training and n == 1 and self._has(P.BATCHNORM):
            raise ValueError("BatchNorm needs at least 2 samples in training mode")
        buf = self._workspace(n)
        self._ops.forward(buf["plan"], self._pf, self.params, self.state.copy(), X, buf["ws"],
                          training, int(self._counters[P.C_DROPOUT]))
        out = self._ops.layer_output(buf["plan"], buf["ws"], n).copy()
        if self._out_sigmoid:
            self._ops.act_forward(out.copy(), ACTIVATIONS["sigmoid"], out)
        if not _all_finite(out):
            raise _overflow("the network's output", X, self.dtype)
        return out

    __call__ = forward

    # ------------------------------------------------------------------ training
    def _optimizer(self, optimizer, momentum, nesterov, weight_decay, betas, eps):
        if isinstance(optimizer, (SGD, Adam)):
            return optimizer
        if optimizer == "sgd":
            return SGD(momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)
        if optimizer == "adam":
            return Adam(betas=betas, eps=eps, weight_decay=weight_decay)
        raise ValueError(f"unknown optimizer {optimizer!r}; expected 'sgd', 'adam', "
                         "fastbp.SGD(...) or fastbp.Adam(...)")

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

    def _check_sample_weight(self, sample_weight, n):
        """Row weights as a contiguous (n,) array of the model's dtype; (0,) for None."""
        if sample_weight is None:
            return np.zeros(0, dtype=self.dtype)
        sw = _as_float_array(sample_weight, "sample_weight", self.dtype)
        if sw.shape != (n,):
            raise ValueError(f"sample_weight must have shape ({n},) to match X, got {sw.shape}")
        if not np.isfinite(sw).all() or (sw < 0).any():
            raise ValueError("sample_weight must hold finite, non-negative numbers")
        if not sw.any():
            raise ValueError("sample_weight is all zeros; nothing would be learned")
        return sw

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
        """
        X = _memory.check_fit(self, X, batch_size, epochs, validation_data)   # before any copy
        X = self._check_X(X)
        Yf, Yi = self._check_y(y, X.shape[0])
        n = X.shape[0]
        for flag, value in (("shuffle", shuffle), ("nesterov", nesterov),
                            ("restore_best_weights", restore_best_weights)):
            if not isinstance(value, (bool, np.bool_)):
                raise TypeError(f"{flag} must be True or False, got {value!r}")
        epochs = _check_int(epochs, "epochs")
        lr = _check_float(lr, "lr", 0.0, None, low_open=True)
        batch = _check_int(batch_size, "batch_size")
        batch = min(batch, n)
        opt = self._optimizer(optimizer, momentum, nesterov, weight_decay, betas, eps)
        schedule = get_schedule(lr_schedule)
        l2 = _check_float(l2, "l2", 0.0)
        sw = self._check_sample_weight(sample_weight, n)
        swb = np.zeros(batch if sw.shape[0] else 0, dtype=self.dtype)   # one batch's weights
        if self._has(P.BATCHNORM) and (batch == 1 or n % batch == 1):
            raise ValueError(
                f"BatchNorm needs at least 2 samples per training batch, but batch_size={batch} "
                f"with {n} samples leaves a batch of 1; choose a batch_size >= 2 that does not "
                f"leave one sample over (n % batch_size != 1)")
        if stop_at_accuracy is not None:
            stop_at_accuracy = _check_float(stop_at_accuracy, "stop_at_accuracy", 0.0, 1.0,
                                            low_open=True)
        val = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError("validation_data must be a pair (X_val, y_val)")
            Xv = self._check_X(validation_data[0], "validation_data X")
            val = (Xv, validation_data[1])
            self._check_y(val[1], Xv.shape[0], "validation_data y")
        if patience is not None:
            patience = _check_int(patience, "patience")
            if val is None:
                raise ValueError("patience (early stopping) needs validation_data")
        if print_every is not None:
            print_every = _check_int(print_every, "print_every")
        if checkpoint is not None:
            checkpoint_every = _check_int(checkpoint_every, "checkpoint_every")
            checkpoint = check_path(checkpoint, "checkpoint")
        self._prepare_optimizer_state(opt)
        of = np.array(opt.settings(), dtype=np.float64)
        buf = self._workspace(batch)
        blas = _threads.threads_for(buf["plan"], batch)
        stop_correct = 0 if stop_at_accuracy is None else max(1, math.ceil(stop_at_accuracy * n - 1e-9))

        hist = History()
        per_epoch = val is not None            # validation and early stopping: every epoch
        events = [e for e in (print_every, checkpoint_every if checkpoint is not None else None) if e]
        best = (math.inf, None, None)
        bar = _progress(epochs, verbose)
        stop_flag = np.zeros(1, dtype=np.int64)
        chunk, done, t_start = 1, 0, time.perf_counter()
        with _CtrlC(stop_flag):
            while done < epochs:
                todo = 1 if per_epoch else min(chunk, epochs - done)
                for every in events:       # end the call at the next print / checkpoint epoch
                    todo = min(todo, every - done % every)
                if shuffle:
                    todo = max(1, min(todo, _MAX_ORDER_ELEMENTS // n))
                    order = np.stack([self._shuffle_rng.permutation(n) for _ in range(todo)])
                else:
                    order = np.arange(n, dtype=np.int64)[None, :]
                lrs = np.array([lr * schedule.factor(self.epochs_trained + e)
                                for e in range(todo)], dtype=np.float64)
                losses = np.zeros(todo, dtype=np.float64)
                corrects = np.zeros(todo, dtype=np.int64)
                snapshot = (self.params.copy(), self.state.copy(), self._opt_a.copy(),
                            self._opt_b.copy(), self._counters.copy())
                t0 = time.perf_counter()
                plain = sw.shape[0] == 0 and l2 == 0.0 and not getattr(opt, "eps_hat", False)
                train = (self._ops.select_online(buf["plan"], self.loss.code, opt.code,
                                                 self.dtype.name) if batch == 1 and plain
                         else self._ops.train_epochs)
                extra = () if batch == 1 and plain else (sw, swb, l2)
                with _threads.limit(blas):
                    ran, status = _interruptible(
                        train, stop_flag, (self._backend_name == "numpy"
                                           or n * self.n_params * todo >= _THREAD_WORK),
                        buf["plan"], self._pf, self.loss.code, self._lf, opt.code, of, self.params,
                        self.grads, self.state, self._opt_a, self._opt_b, self._counters, X, Yf, Yi,
                        order.astype(np.int64, copy=False), lrs, self._threshold, stop_correct,
                        buf["ws"], buf["ga"], buf["gb"], buf["xb"], buf["yfb"], buf["yib"],
                        buf["probs"], stop_flag, losses, corrects, *extra)
                elapsed = time.perf_counter() - t0
                ran, status = int(ran), int(status)
                if status != 2 and not (np.isfinite(self.params).all()
                                        and np.isfinite(self.state).all()):
                    # the loss was finite but an update (or BatchNorm's running
                    # statistics) overflowed: never hand back inf/NaN weights
                    (self.params[...], self.state[...], self._opt_a[...], self._opt_b[...],
                     self._counters[...]) = snapshot
                    bar.close()
                    hist.seconds = time.perf_counter() - t_start
                    big = float(max(abs(X.max()), abs(X.min())))
                    raise TrainingDivergedError(
                        f"the weights overflowed to inf/NaN in epoch {self.epochs_trained + 1} "
                        f"or shortly after; stopped, and the model keeps the weights from "
                        f"before epoch {self.epochs_trained + 1}. Try a smaller lr (now {lr}) "
                        f"or scale the inputs (largest |X| {big:.3g}).", hist)
                for e in range(ran):
                    hist.loss.append(float(losses[e]))
                    hist.accuracy.append(corrects[e] / n)
                    hist.lr.append(float(lrs[e]))
                self.epochs_trained += ran
                done += ran
                hist.epochs_run = done
                if status == 2:   # non-finite loss
                    bad_epoch = self.epochs_trained + 1
                    if not (np.isfinite(self.params).all() and np.isfinite(self.state).all()):
                        (self.params[...], self.state[...], self._opt_a[...], self._opt_b[...],
                         self._counters[...]) = snapshot
                        if ran:     # those epochs are undone: the History forgets them too
                            for record in (hist.loss, hist.accuracy, hist.lr):
                                del record[-ran:]
                        self.epochs_trained -= ran
                        done -= ran
                        hist.epochs_run = done
                        kept = f"the weights from before epoch {self.epochs_trained + 1}"
                    else:
                        kept = "the weights of the last step whose loss was finite"
                    bar.close()
                    hist.seconds = time.perf_counter() - t_start
                    raise TrainingDivergedError(
                        f"the training loss became {losses[ran]} in epoch {bad_epoch}; "
                        f"stopped, and the model keeps {kept}. "
                        f"Try a smaller lr (now {lr}).", hist)
                if status == 3:
                    hist.interrupted, hist.stopped_early, hist.stop_reason = True, True, "interrupted"
                    break
                if val is not None:
                    ev = self.evaluate(*val)
                    hist.val_loss.append(ev["loss"])
                    hist.val_accuracy.append(ev["accuracy"])
                _report(bar, hist, ran, print_every, done)
                if checkpoint is not None and done % checkpoint_every == 0:
                    self.save(checkpoint)
                if status == 1:
                    hist.stopped_early, hist.stop_reason = True, "accuracy"
                    break
                if patience is not None:
                    vl = hist.val_loss[-1]
                    if vl < best[0] - min_delta:
                        best = (vl, self.params.copy(), self.state.copy())
                        hist.best_epoch = done
                    elif done - hist.best_epoch >= patience:
                        hist.stopped_early, hist.stop_reason = True, "early_stopping"
                        if restore_best_weights:
                            self.params[...], self.state[...] = best[1], best[2]
                        break
                if stop_flag[0]:
                    hist.interrupted, hist.stopped_early, hist.stop_reason = True, True, "interrupted"
                    break
                if ran:   # size the next call to run about _TARGET_CALL_SECONDS
                    chunk = int(max(1, min(chunk * 4, _TARGET_CALL_SECONDS * ran / max(elapsed, 1e-9))))
        bar.close()
        hist.seconds = time.perf_counter() - t_start
        return hist

    # ------------------------------------------------------------------ one step, shown
    def trace(self, X, y, lr=0.01):
        """Record one plain SGD step on (X, y) term by term, without changing the model.

        Returns a :class:`fastbp.trace.Trace` (its ``text()`` is the worked
        example, ``html(path)`` the interactive page); see :func:`fastbp.trace.trace`.
        """
        from .trace import trace
        return trace(self, X, y, lr=lr)

    # ------------------------------------------------------------------ persistence
    def save(self, path):
        """Write the model (architecture, weights, optimizer and RNG state) to one .npz."""
        from .io import save
        save(self, path)

    def to_onnx(self, path=None, opset=13, fold_batchnorm=False):
        """Export to ONNX (eval mode, this model's dtype, default opset 13); returns the
        ``onnx.ModelProto``. See :func:`fastbp.export.to_onnx`."""
        from .export import to_onnx
        return to_onnx(self, path, opset=opset, fold_batchnorm=fold_batchnorm)

    def to_torch(self):
        """The equivalent ``torch.nn.Sequential`` (eval mode); see :func:`fastbp.interop.to_torch`."""
        from .interop import to_torch
        return to_torch(self)

    # ------------------------------------------------------------------ description
    def summary(self):
        """A table of layers, output shapes and parameter counts."""
        lines = [f"Sequential(backend={self.backend!r}, dtype={self.dtype.name!r}, seed={self.seed})",
                 f"{'layer':<36}{'output':>12}{'params':>10}"]
        width = self.n_inputs
        for layer in self.layers:
            count = 0
            if isinstance(layer, Dense):
                width, count = layer.out_features, layer.n_params()
            elif isinstance(layer, BatchNorm):
                count = 2 * layer.num_features
            lines.append(f"{repr(layer):<36}{'(n, ' + str(width) + ')':>12}{count:>10}")
        lines.append(f"loss: {self.loss!r}; {self.n_params} parameters")
        return "\n".join(lines)

    def __repr__(self):
        layers = ", ".join(repr(layer) for layer in self.layers)
        return (f"Sequential([{layers}], loss={self.loss!r}, backend={self.backend!r}, "
                f"dtype={self.dtype.name!r}, seed={self.seed})")


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
        _check_int(size, f"sizes[{i}]")
    dropout = _check_float(dropout, "dropout", 0.0, 1.0, high_open=True)
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


class _CtrlC:
    """During fit, Ctrl-C sets a flag the training loops check after every step."""

    def __init__(self, flag):
        self.flag = flag
        self.old = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.old = signal.signal(signal.SIGINT, self._handler)
        return self

    def _handler(self, signum, frame):
        if self.flag[0]:            # a second Ctrl-C: give up at once
            raise KeyboardInterrupt
        self.flag[0] = 1

    def __exit__(self, *exc):
        if self.old is not None:
            signal.signal(signal.SIGINT, self.old)
        return False


def _interruptible(fn, flag, threaded, *args):
    """``fn(*args)``, in a worker thread if ``threaded`` and called from the main thread.

    Python runs signal handlers in the main thread between bytecodes only, so
    a Numba kernel running a whole epoch would hold Ctrl-C off until it
    returns. Here the kernel (compiled with nogil) runs in a worker while the
    main thread waits; the handler sets ``flag``, which the kernel reads after
    every step. A second Ctrl-C (KeyboardInterrupt) is raised only once the
    worker has finished its current step, so no update is ever half-applied
    (the NumPy reference, whose steps are Python code, always runs this way).
    Calls of a few milliseconds skip the thread (~0.2 ms to start one).
    """
    if not threaded or threading.current_thread() is not threading.main_thread():
        return fn(*args)
    result = []

    def work():
        try:
            result.append((True, fn(*args)))
        except BaseException as exc:   # handed to the caller below
            result.append((False, exc))

    worker = threading.Thread(target=work, name="fastbp-train", daemon=True)
    worker.start()
    pending = None
    while worker.is_alive():
        try:
            worker.join(0.05)
        except KeyboardInterrupt as exc:
            flag[0] = 1
            pending = exc
    ok, value = result[0]
    if not ok:
        raise value
    if pending is not None:
        raise pending
    return value


class _NoBar:
    def update(self, n):
        pass

    def set_postfix(self, **kw):
        pass

    def close(self):
        pass


def _progress(total, verbose):
    import sys
    if not verbose or not sys.stderr.isatty():
        return _NoBar()
    from tqdm.auto import tqdm
    return tqdm(total=total, unit="epoch", leave=True)


def _report(bar, hist, ran, print_every, done):
    if ran:
        bar.update(ran)
        bar.set_postfix(loss=f"{hist.loss[-1]:.4g}", acc=f"{hist.accuracy[-1]:.3f}")
    if print_every and done % print_every == 0 and hist.loss:
        print(f"epoch {done:6d}  loss {hist.loss[-1]:.6f}  accuracy {hist.accuracy[-1]:.4f}",
              flush=True)
