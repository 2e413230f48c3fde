"""Layers: small objects that describe a network; the model owns their numbers.

Once a layer is part of a :class:`fastbp.Sequential`, its parameters
(``W``, ``b``, ``gamma``, ``beta``) and BatchNorm's running statistics are
views into the model's flat buffers: writing ``layer.W[...] = ...`` changes the
model. Weight shape is (in, out): ``out = x @ W + b``.
"""
import math
import numbers

import numpy as np

INITS = ("glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "uniform")
_INIT_ALIASES = {"xavier_uniform": "glorot_uniform", "xavier_normal": "glorot_normal",
                 "kaiming_uniform": "he_uniform", "kaiming_normal": "he_normal"}


def _check_int(value, name, minimum=1):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _check_float(value, name, low=None, high=None, low_open=False, high_open=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    bad = not math.isfinite(value)
    if low is not None:
        bad |= value <= low if low_open else value < low
    if high is not None:
        bad |= value >= high if high_open else value > high
    if bad:
        lo = "" if low is None else ("(" if low_open else "[") + f"{low}"
        hi = "" if high is None else f"{high}" + (")" if high_open else "]")
        raise ValueError(f"{name} must be a finite number in {lo or '(-inf'}, {hi or 'inf)'}, got {value}")
    return value


class Layer:
    """Base class: every layer knows its name and its constructor arguments."""

    def get_config(self):
        return {}

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

    def n_params(self):
        return self.in_features * self.out_features + (self.out_features if self.bias else 0)

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


class Dropout(Layer):
    """Inverted dropout: drop each unit with probability ``p`` while training and
    scale the kept ones by ``1 / (1 - p)``; the identity in eval mode. The mask
    comes from a counter-based hash of (model seed, layer, step), so both
    backends drop the same units."""

    def __init__(self, p=0.5):
        self.p = _check_float(p, "p", 0.0, 1.0, high_open=True)

    def get_config(self):
        return {"p": self.p}


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
