"""Layers: small objects that describe a network; the model owns their numbers.

Once a layer is part of a :class:`fastbp.Sequential`, its parameters
(``W``, ``b``, ``gamma``, ``beta``) and BatchNorm's running statistics are
views into the model's flat buffers: writing ``layer.W[...] = ...`` changes the
model. Weight shape is (in, out): ``out = x @ W + b``.
"""
import math

import numpy as np

from . import plan as P
from ._config import ACTIVATIONS
from ._validate import check_float as _check_float, check_int as _check_int

INITS = ("glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "uniform")
_INIT_ALIASES = {"xavier_uniform": "glorot_uniform", "xavier_normal": "glorot_normal",
                 "kaiming_uniform": "he_uniform", "kaiming_normal": "he_normal"}


class Layer:
    """Base class: everything fastbp needs to know about a kind of layer.

    A layer knows its constructor arguments (``get_config``, ``describe``),
    the input width it fixes if it comes first (``input_width``), the width it
    outputs, its parameter shapes in :meth:`fastbp.Sequential.get_weights`
    order, how it compiles into plan rows (``add_to_plan``), how its arrays
    bind to the model's flat buffers (``bind``) and how they start
    (``reset_parameters``). The defaults describe a layer without parameters
    that keeps the width.
    """

    name = None         # an activation's name; None for other layers

    def get_config(self):
        return {}

    def describe(self):
        """``{"type": class name, **get_config()}``: what a saved file records."""
        return {"type": type(self).__name__, **self.get_config()}

    def input_width(self):
        """The network's input width if this layer comes first, or None if it cannot."""
        return None

    def output_width(self, width):
        """The width this layer outputs for an input of ``width`` features."""
        return width

    def param_shapes(self):
        """Shapes of its parameter arrays, in ``get_weights`` order."""
        return []

    def n_params(self):
        return sum(math.prod(shape) for shape in self.param_shapes())

    def add_to_plan(self, b, i):
        """Add this layer (``layers[i]``) to the :class:`fastbp.plan.Builder` ``b``;
        returns the index of the plan row it runs in."""
        raise TypeError(f"layers[{i}]: unsupported layer {type(self).__name__}")

    def bind(self, row, params, state):
        """Point this layer's arrays at the flat buffers (``row``: its plan row)."""

    def reset_parameters(self, rng, next_layer):
        """Give the bound arrays their starting values (``rng``: a numpy Generator)."""

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class Dense(Layer):
    """Fully connected: ``out = x @ W + b`` with W (in_features, out_features).

    init: "glorot_uniform" (alias "xavier_uniform"), "glorot_normal", "he_uniform"
    (alias "kaiming_uniform"), "he_normal", or "uniform" (W and b uniform in
    [0, 1), as the original sigmoid networks did). Default (None): He uniform
    when a ReLU follows, Glorot uniform otherwise. Biases start at zero except
    with "uniform".
    """

    def __init__(self, in_features, out_features, bias=True, init=None):
        self.in_features = _check_int(in_features, "in_features")
        self.out_features = _check_int(out_features, "out_features")
        if not isinstance(bias, (bool, np.bool_)):
            raise TypeError(f"bias must be True or False, got {bias!r}")
        self.bias = bool(bias)
        if init is not None:
            if not isinstance(init, str):
                raise TypeError(f"init must be a string, got {type(init).__name__}")
            init = _INIT_ALIASES.get(init, init)
            if init not in INITS:
                raise ValueError(f"unknown init {init!r}; expected one of {', '.join(INITS)}")
        self.init = init
        self.W = None
        self.b = None

    def get_config(self):
        return {"in_features": self.in_features, "out_features": self.out_features,
                "bias": self.bias, "init": self.init}

    def input_width(self):
        return self.in_features

    def output_width(self, width):
        return self.out_features

    def param_shapes(self):
        shapes = [(self.in_features, self.out_features)]
        return shapes + [(self.out_features,)] if self.bias else shapes

    def add_to_plan(self, b, i):
        if self.in_features != b.width:
            raise ValueError(f"layers[{i}] is Dense({self.in_features}, ...) but its "
                             f"input has {b.width} features")
        pa = b.alloc_params(self.in_features * self.out_features)
        pb = b.alloc_params(self.out_features) if self.bias else -1
        r = b.add_row(P.DENSE, self.out_features, actv=ACTIVATIONS["identity"], fusable=True)
        b.rows[r][P.P_A], b.rows[r][P.P_B] = pa, pb
        return r

    def bind(self, row, params, state):
        pa, pb, n_in, n_out = row[P.P_A], row[P.P_B], row[P.N_IN], row[P.N_OUT]
        self.W = params[pa:pa + n_in * n_out].reshape(n_in, n_out)
        self.b = params[pb:pb + n_out] if pb >= 0 else None

    def reset_parameters(self, rng, next_layer):
        """Draw W and b (in float64, whatever the model's dtype) from ``rng``."""
        W = np.empty(self.W.shape)
        b = np.empty(self.b.shape) if self.b is not None else None
        self.initialize(rng, W, b, getattr(next_layer, "name", None))
        self.W[...] = W
        if b is not None:
            self.b[...] = b

    def initialize(self, rng, W, b, next_activation):
        """Fill the views ``W (in, out)`` and ``b (out,)`` from the Generator ``rng``."""
        init = self.init or ("he_uniform" if next_activation == "relu" else "glorot_uniform")
        fan_in, fan_out = self.in_features, self.out_features
        if init == "uniform":
            W[...] = rng.random(W.shape)
            if b is not None:
                b[...] = rng.random(b.shape)
            return
        if init == "glorot_uniform":
            lim = math.sqrt(6.0 / (fan_in + fan_out))
            W[...] = rng.uniform(-lim, lim, W.shape)
        elif init == "glorot_normal":
            W[...] = rng.normal(0.0, math.sqrt(2.0 / (fan_in + fan_out)), W.shape)
        elif init == "he_uniform":
            lim = math.sqrt(6.0 / fan_in)
            W[...] = rng.uniform(-lim, lim, W.shape)
        else:  # he_normal
            W[...] = rng.normal(0.0, math.sqrt(2.0 / fan_in), W.shape)
        if b is not None:
            b[...] = 0.0


class Activation(Layer):
    """An elementwise activation; subclasses name which."""

    name = "identity"

    def add_to_plan(self, b, i):
        code = ACTIVATIONS[self.name]
        if b.fusable:       # the bias add and this activation run in the pass after the GEMM
            b.rows[-1][P.ACTV] = code
            b.fusable = self.name == "identity"
            return len(b.rows) - 1
        return b.add_row(P.ACT, b.width, actv=code)


class Sigmoid(Activation):
    """``1 / (1 + exp(-x))``, computed without overflow for any finite input."""

    name = "sigmoid"


class ReLU(Activation):
    """``max(x, 0)``."""

    name = "relu"


class Tanh(Activation):
    """``tanh(x)``."""

    name = "tanh"


class Identity(Activation):
    """``x`` (a no-op; after a Dense layer it costs nothing)."""

    name = "identity"


class BatchNorm(Layer):
    """Batch normalisation over features, with PyTorch's conventions.

    Training: normalise with the batch mean and biased variance, then update
    ``running = (1 - momentum) * running + momentum * batch`` (the running
    variance takes the unbiased batch variance). Eval: normalise with the
    running statistics. Output ``gamma * x_hat + beta``.
    """

    def __init__(self, num_features, momentum=0.1, eps=1e-5):
        self.num_features = _check_int(num_features, "num_features")
        self.momentum = _check_float(momentum, "momentum", 0.0, 1.0)
        self.eps = _check_float(eps, "eps", 0.0, None, low_open=True)
        self.gamma = self.beta = self.running_mean = self.running_var = None

    def get_config(self):
        return {"num_features": self.num_features, "momentum": self.momentum, "eps": self.eps}

    def input_width(self):
        return self.num_features

    def param_shapes(self):
        return [(self.num_features,), (self.num_features,)]

    def add_to_plan(self, b, i):
        n = self.num_features
        if n != b.width:
            raise ValueError(f"layers[{i}] is BatchNorm({n}) but its input has {b.width} features")
        pa, pb, s = b.alloc_params(n), b.alloc_params(n), b.alloc_state(2 * n)
        r = b.add_row(P.BATCHNORM, n, floats=(self.momentum, self.eps))
        b.rows[r][P.P_A], b.rows[r][P.P_B], b.rows[r][P.STATE] = pa, pb, s
        return r

    def bind(self, row, params, state):
        n, s = row[P.N_OUT], row[P.STATE]
        self.gamma = params[row[P.P_A]:row[P.P_A] + n]
        self.beta = params[row[P.P_B]:row[P.P_B] + n]
        self.running_mean = state[s:s + n]
        self.running_var = state[s + n:s + 2 * n]

    def reset_parameters(self, rng, next_layer):
        self.gamma[...] = 1.0
        self.beta[...] = 0.0
        self.running_mean[...] = 0.0
        self.running_var[...] = 1.0


class Dropout(Layer):
    """Inverted dropout: drop each unit with probability ``p`` while training and
    scale the kept ones by ``1 / (1 - p)``; the identity in eval mode. The mask
    comes from a counter-based hash of (model seed, layer, step), so both
    backends drop the same units."""

    def __init__(self, p=0.5):
        self.p = _check_float(p, "p", 0.0, 1.0, high_open=True)

    def get_config(self):
        return {"p": self.p}

    def add_to_plan(self, b, i):
        r = b.add_row(P.DROPOUT, b.width, floats=(self.p, 0.0))
        b.rows[r][P.KEY] = (b.seed * 0x9E3779B1 + 0x632BE5AB * (i + 1)) % (1 << 62)
        return r


LAYERS = {cls.__name__: cls for cls in (Dense, Sigmoid, ReLU, Tanh, Identity, BatchNorm, Dropout)}
ACTIVATION_LAYERS = {"sigmoid": Sigmoid, "relu": ReLU, "tanh": Tanh, "identity": Identity}


def layer_from_config(cfg):
    """Rebuild a layer from ``{"type": name, **get_config()}``."""
    try:
        cls = LAYERS[cfg["type"]]
    except (KeyError, TypeError):
        raise ValueError(f"unknown layer description {cfg!r}") from None
    args = {k: v for k, v in cfg.items() if k != "type"}
    return cls(**args)
