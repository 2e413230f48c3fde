"""Moving networks between fastbp and PyTorch.

``model.to_torch()`` returns the equivalent ``torch.nn.Sequential`` and
``fastbp.from_torch(module)`` builds a fastbp model from one; PyTorch is
imported only when one of them is called. The layers map one to one:

- ``Dense(i, o, bias)`` <-> ``Linear(i, o, bias)`` with ``weight = W.T``;
- ``ReLU``, ``Sigmoid``, ``Tanh``, ``Identity`` <-> the modules of the same names;
- ``BatchNorm(n, momentum, eps)`` <-> ``BatchNorm1d(n, eps, momentum)``: gamma and
  beta are its ``weight`` and ``bias``, the running statistics are copied;
- ``Dropout(p)`` <-> ``Dropout(p)``.

Both libraries use the same BatchNorm conventions (``running = (1 - m) *
running + m * batch``, unbiased running variance) and inverted dropout, so the
two networks compute the same function in eval mode (in training they differ only
in the dropout masks, which each library draws from its own generator).

:func:`read_layers` (in :mod:`fastbp._convert`, with :func:`to_torch`) is the one
place that reads a model's structure (through its public layer objects) for the
exporters here and in :mod:`fastbp.export`.
"""
from ._convert import _import_torch, read_layers, to_torch
from .layers import BatchNorm, Dense, Dropout
from .model import Sequential

__all__ = ["from_torch", "to_torch", "read_layers"]

_TORCH_NAMES = "Linear, ReLU, Sigmoid, Tanh, Identity, BatchNorm1d, Dropout"


def _torch_dtype(module, torch, dtype):
    """The fastbp dtype name for ``module``: ``dtype`` if given, else its tensors' one."""
    if dtype is not None:
        return dtype
    found = {t.dtype for t in list(module.parameters()) + list(module.buffers())
             if t.is_floating_point()}
    names = {torch.float32: "float32", torch.float64: "float64"}
    if not found:
        return "float64"
    if len(found) > 1 or next(iter(found)) not in names:
        raise ValueError(f"the module's tensors are {sorted(map(str, found))}; fastbp needs "
                         f"one dtype, float32 or float64 (convert with .double() or .float(), "
                         f"or pass dtype=)")
    return names[next(iter(found))]


def _fastbp_layer(i, m, nn):
    """The fastbp layer for module ``m`` (position ``i`` of the Sequential)."""
    kind = type(m)
    if kind is nn.Linear:
        return Dense(m.in_features, m.out_features, bias=m.bias is not None)
    simple = {nn.ReLU: "ReLU", nn.Sigmoid: "Sigmoid", nn.Tanh: "Tanh", nn.Identity: "Identity"}
    if kind in simple:
        from . import layers
        return getattr(layers, simple[kind])()
    if kind is nn.BatchNorm1d:
        if not m.track_running_stats or m.running_mean is None:
            raise ValueError(f"module[{i}] ({m!r}) keeps no running statistics "
                             f"(track_running_stats=False); fastbp's BatchNorm always does")
        if m.momentum is None:
            raise ValueError(f"module[{i}] ({m!r}) uses a cumulative average (momentum=None); "
                             f"fastbp's BatchNorm needs a momentum in [0, 1]")
        return BatchNorm(m.num_features, momentum=m.momentum, eps=m.eps)
    if kind is nn.Dropout:
        return Dropout(m.p)
    raise TypeError(f"cannot convert module[{i}] ({m!r}): unsupported module "
                    f"{kind.__name__}; fastbp converts {_TORCH_NAMES}")


def from_torch(module, loss=None, backend="numba", dtype=None, seed=0):
    """A fastbp model computing what the PyTorch ``module`` computes.

    Parameters
    ----------
    module : torch.nn.Sequential
        Of ``Linear``, ``ReLU``, ``Sigmoid``, ``Tanh``, ``Identity``,
        ``BatchNorm1d`` (with running statistics and a momentum; ``affine=False``
        becomes gamma 1, beta 0) and ``Dropout``; the first must be ``Linear`` or
        ``BatchNorm1d``. Only the exact classes are accepted (a subclass may
        compute something else).
    loss : fastbp loss or its name, default None (``MSE()``)
        As for :class:`fastbp.Sequential`; it is not part of a PyTorch module.
    backend : "numba" (default) or "numpy"
    dtype : "float32", "float64" or None (default: the dtype of the module's
        tensors, which must all share float32 or float64)
    seed : int, default 0
        The new model's seed (its dropout masks and shuffling when trained).

    Returns
    -------
    fastbp.Sequential
        With the module's weights, biases and BatchNorm running statistics,
        momentum and eps; ``predict`` equals the module's eval-mode output.

    Raises
    ------
    TypeError
        ``module`` is not an ``nn.Sequential``, or holds a module fastbp cannot
        convert (the message names the first one and its position).
    ValueError
        A module's settings have no fastbp equivalent, or the layers do not fit
        together (messages name the position: fastbp's ``layers[i]`` is
        ``module[i]``).
    """
    torch = _import_torch()
    nn = torch.nn
    if type(module) is not nn.Sequential:
        raise TypeError(f"from_torch expects a torch.nn.Sequential, got {type(module).__name__}")
    if len(module) == 0:
        raise ValueError("the Sequential is empty")
    mods = list(module)
    layers = [_fastbp_layer(i, m, nn) for i, m in enumerate(mods)]
    try:
        model = Sequential(layers, loss=loss, backend=backend,
                           dtype=_torch_dtype(module, torch, dtype), seed=seed)
    except ValueError as exc:
        raise ValueError(f"cannot convert the module (fastbp's layers[i] is module[i]): "
                         f"{exc}") from exc

    def numpy(t):
        return t.detach().to("cpu", torch.float64).numpy()

    for layer, m in zip(layers, mods):
        if isinstance(layer, Dense):
            layer.W[...] = numpy(m.weight).T
            if layer.bias:
                layer.b[...] = numpy(m.bias)
        elif isinstance(layer, BatchNorm):
            layer.gamma[...] = numpy(m.weight) if m.affine else 1.0
            layer.beta[...] = numpy(m.bias) if m.affine else 0.0
            layer.running_mean[...] = numpy(m.running_mean)
            layer.running_var[...] = numpy(m.running_var)
    return model
