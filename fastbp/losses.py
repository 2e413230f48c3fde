"""Losses: which loss the model computes, and its settings.

The numbers are computed by the backends' ``losses`` ops; these objects only
describe the choice (and travel into saved files via ``get_config``).
"""
from . import plan as _plan


class Loss:
    code = -1

    def get_config(self):
        return {}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def settings(self):
        """The float settings the kernels read (``lf``)."""
        return [0.0, 0.0]


class MSE(Loss):
    """Squared error: ``f * sum((pred - target)**2) / D``.

    reduction="mean" divides by the number of elements (PyTorch's MSELoss);
    "sum" does not. half=True multiplies by 1/2 (the ½(prediction - actual)²
    of hand-derived backpropagation).
    """

    code = _plan.MSE

    def __init__(self, reduction="mean", half=False):
        if reduction not in ("mean", "sum"):
            raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
        if not isinstance(half, bool):
            raise TypeError(f"half must be True or False, got {half!r}")
        self.reduction = reduction
        self.half = half

    def get_config(self):
        return {"reduction": self.reduction, "half": self.half}

    def settings(self):
        return [1.0 if self.half else 0.0, 1.0 if self.reduction == "sum" else 0.0]


class SoftmaxCrossEntropy(Loss):
    """Softmax then cross-entropy, over logits, mean over the batch.

    Targets: integer labels (n,) in [0, n_classes), or one-hot rows (n, n_classes).
    """

    code = _plan.SOFTMAX_CE


class BinaryCrossEntropy(Loss):
    """Binary cross-entropy on a sigmoid output, mean over all outputs.

    The network must end in a Sigmoid layer; the loss reads the value before
    that sigmoid and computes ``max(z,0) - z*t + log1p(exp(-|z|))``, which
    never takes log(0).
    """

    code = _plan.BCE


LOSSES = {"mse": MSE, "softmax_cross_entropy": SoftmaxCrossEntropy,
          "cross_entropy": SoftmaxCrossEntropy, "bce": BinaryCrossEntropy,
          "binary_cross_entropy": BinaryCrossEntropy}
_BY_CLASS = {cls.__name__: cls for cls in (MSE, SoftmaxCrossEntropy, BinaryCrossEntropy)}


def get_loss(loss):
    """A Loss from an instance or a name ("mse", "cross_entropy", "bce", ...)."""
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, str):
        if loss.lower() in LOSSES:
            return LOSSES[loss.lower()]()
        raise ValueError(f"unknown loss {loss!r}; expected one of {', '.join(LOSSES)}")
    raise TypeError(f"loss must be a fastbp loss or its name, got {type(loss).__name__}")


def loss_from_config(cfg):
    try:
        cls = _BY_CLASS[cfg["type"]]
    except (KeyError, TypeError):
        raise ValueError(f"unknown loss description {cfg!r}") from None
    return cls(**{k: v for k, v in cfg.items() if k != "type"})
