"""Optimizers and learning-rate schedules (PyTorch's formulas).

The update itself is one fused loop over the flat parameter buffer (the
backends' ``optim`` ops); these objects hold the settings. The optimizer's
state (momentum buffer or Adam moments, step count) lives in the model, so a
second ``fit`` call continues where the first stopped.
"""
import math

import numpy as np

from . import plan as _plan
from ._validate import check_float as _check_float, check_int as _check_int


class SGD:
    """SGD with optional momentum, Nesterov momentum and L2 weight decay
    (``torch.optim.SGD`` with dampening 0)."""

    code = _plan.SGD

    def __init__(self, momentum=0.0, nesterov=False, weight_decay=0.0):
        self.momentum = _check_float(momentum, "momentum", 0.0, 1.0, high_open=True)
        self.nesterov = bool(nesterov)
        if self.nesterov and self.momentum == 0.0:
            raise ValueError("nesterov=True needs momentum > 0")
        self.weight_decay = _check_float(weight_decay, "weight_decay", 0.0)

    def settings(self):
        s = [0.0] * _plan.N_OPT_SETTINGS
        s[_plan.O_MOMENTUM] = self.momentum
        s[_plan.O_WD] = self.weight_decay
        s[_plan.O_NESTEROV] = 1.0 if self.nesterov else 0.0
        return s

    def n_buffers(self):
        return 1 if self.momentum > 0.0 else 0

    def get_config(self):
        return {"type": "SGD", "momentum": self.momentum, "nesterov": self.nesterov,
                "weight_decay": self.weight_decay}


class Adam:
    """Adam (``torch.optim.Adam``, amsgrad off; weight decay added to the gradient).

    eps_hat=True adds ``eps`` to ``sqrt(v)`` before the bias correction (the
    paper's epsilon-hat, as TensorFlow/Keras and scikit-learn do):
    ``params -= lr * sqrt(1 - beta2**t) / (1 - beta1**t) * m / (sqrt(v) + eps)``.
    It is PyTorch's step with ``eps / sqrt(1 - beta2**t)`` in place of ``eps``.
    """

    code = _plan.ADAM

    def __init__(self, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, eps_hat=False):
        if len(betas) != 2:
            raise ValueError(f"betas must be a pair, got {betas!r}")
        self.betas = (_check_float(betas[0], "betas[0]", 0.0, 1.0, high_open=True),
                      _check_float(betas[1], "betas[1]", 0.0, 1.0, high_open=True))
        self.eps = _check_float(eps, "eps", 0.0, None, low_open=True)
        self.weight_decay = _check_float(weight_decay, "weight_decay", 0.0)
        if not isinstance(eps_hat, (bool, np.bool_)):
            raise TypeError(f"eps_hat must be True or False, got {eps_hat!r}")
        self.eps_hat = bool(eps_hat)

    def settings(self):
        s = [0.0] * _plan.N_OPT_SETTINGS
        s[_plan.O_WD] = self.weight_decay
        s[_plan.O_BETA1], s[_plan.O_BETA2] = self.betas
        s[_plan.O_EPS] = self.eps
        s[_plan.O_EPS_HAT] = 1.0 if self.eps_hat else 0.0
        return s

    def n_buffers(self):
        return 2

    def get_config(self):
        cfg = {"type": "Adam", "betas": list(self.betas), "eps": self.eps,
               "weight_decay": self.weight_decay}
        if self.eps_hat:
            cfg["eps_hat"] = True
        return cfg


def get_optimizer(optimizer, momentum=0.0, nesterov=False, weight_decay=0.0,
                  betas=(0.9, 0.999), eps=1e-8):
    """An optimizer from an ``SGD``/``Adam`` instance or a name ("sgd", "adam") and settings."""
    if isinstance(optimizer, (SGD, Adam)):
        return optimizer
    if optimizer == "sgd":
        return SGD(momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)
    if optimizer == "adam":
        return Adam(betas=betas, eps=eps, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {optimizer!r}; expected 'sgd', 'adam', "
                     "fastbp.SGD(...) or fastbp.Adam(...)")


def optimizer_from_config(cfg):
    cfg = dict(cfg)
    kind = cfg.pop("type", None)
    if kind == "SGD":
        return SGD(**cfg)
    if kind == "Adam":
        return Adam(**cfg)
    raise ValueError(f"unknown optimizer description {kind!r}")


class Constant:
    """The same learning rate every epoch."""

    def factor(self, epoch):
        return 1.0

    def get_config(self):
        return {"type": "constant"}


class StepLR:
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs."""

    def __init__(self, step_size, gamma=0.1):
        self.step_size = _check_int(step_size, "step_size")
        self.gamma = _check_float(gamma, "gamma", 0.0, None, low_open=True)

    def factor(self, epoch):
        return self.gamma ** (epoch // self.step_size)

    def get_config(self):
        return {"type": "step", "step_size": self.step_size, "gamma": self.gamma}


class ExponentialLR:
    """Multiply the learning rate by ``gamma`` every epoch."""

    def __init__(self, gamma):
        self.gamma = _check_float(gamma, "gamma", 0.0, None, low_open=True)

    def factor(self, epoch):
        return self.gamma ** epoch

    def get_config(self):
        return {"type": "exponential", "gamma": self.gamma}


def get_schedule(schedule):
    """A schedule from None/"constant", a schedule object, or a callable epoch -> factor."""
    if schedule is None or schedule == "constant":
        return Constant()
    if isinstance(schedule, (Constant, StepLR, ExponentialLR)):
        return schedule
    if isinstance(schedule, str):
        raise ValueError(f"unknown lr_schedule {schedule!r}; use 'constant', "
                         "fastbp.StepLR(step_size, gamma) or fastbp.ExponentialLR(gamma)")
    if callable(schedule):
        return _Callable(schedule)
    raise TypeError(f"lr_schedule must be None, 'constant', a schedule or a callable, "
                    f"got {type(schedule).__name__}")


class _Callable:
    def __init__(self, fn):
        self.fn = fn

    def factor(self, epoch):
        f = float(self.fn(epoch))
        if not (math.isfinite(f) and f > 0):
            raise ValueError(f"lr_schedule({epoch}) returned {f}; expected a positive factor")
        return f

    def get_config(self):
        return {"type": "callable"}
