"""A fastbp model read for the converters, and its PyTorch equivalent.

:func:`read_layers` is the one place that reads a model's structure (through
its public layer objects), for :func:`to_torch` and :mod:`fastbp.export`;
:func:`to_torch` is ``model.to_torch()``. The public face of both is
:mod:`fastbp.interop`, which also builds a fastbp model from a PyTorch one.
This module imports no model, so the model's methods can call it.
"""
import numpy as np

from .layers import Activation, BatchNorm, Dense, Dropout


# --------------------------------------------------------------------------- reading a model
def _array(layer, i, attr, shape, dtype):
    """``layer.<attr>`` as an array of ``shape`` and ``dtype``, all finite, else a ValueError."""
    value = getattr(layer, attr, None)
    where = f"layers[{i}] ({layer!r})"
    if value is None:
        raise ValueError(f"{where} has no {attr}; is it part of a fastbp Sequential?")
    arr = np.asarray(value)
    if arr.shape != shape:
        raise ValueError(f"{where}: {attr} has shape {arr.shape}, expected {shape}")
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{where}: {attr} must hold numbers, got dtype {arr.dtype}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{where}: {attr} contains NaN or infinite values")
    return arr.astype(dtype, copy=True)


def read_layers(model):
    """The model's layers as plain descriptions, checked against each other.

    Parameters
    ----------
    model : fastbp.Sequential

    Returns
    -------
    list of dict
        One per layer, in order, each with ``"kind"`` and ``"index"``:
        ``"dense"`` (``W`` (in, out), ``b`` (out,) or None), ``"activation"``
        (``name``: "relu", "sigmoid", "tanh" or "identity"), ``"batchnorm"``
        (``gamma``, ``beta``, ``running_mean``, ``running_var`` (n,), ``eps``,
        ``momentum``) or ``"dropout"`` (``p``). Arrays are copies in the model's
        dtype.

    Raises
    ------
    TypeError
        ``model`` is not a fastbp model.
    ValueError
        A parameter has the wrong shape or is not finite, or a layer's width
        does not match its input.
    """
    layers = getattr(model, "layers", None)
    dtype = getattr(model, "dtype", None)
    if not isinstance(layers, list) or not layers or dtype is None:
        raise TypeError(f"expected a fastbp Sequential, got {type(model).__name__}")
    dtype = np.dtype(dtype)
    width = getattr(model, "n_inputs", None)
    out = []
    for i, layer in enumerate(layers):
        if isinstance(layer, Dense):
            if layer.in_features != width:
                raise ValueError(f"layers[{i}] is {layer!r} but its input has {width} features")
            W = _array(layer, i, "W", (layer.in_features, layer.out_features), dtype)
            b = _array(layer, i, "b", (layer.out_features,), dtype) if layer.bias else None
            out.append({"kind": "dense", "index": i, "W": W, "b": b})
            width = layer.out_features
        elif isinstance(layer, Activation):
            out.append({"kind": "activation", "index": i, "name": layer.name})
        elif isinstance(layer, BatchNorm):
            n = layer.num_features
            if n != width:
                raise ValueError(f"layers[{i}] is {layer!r} but its input has {width} features")
            spec = {"kind": "batchnorm", "index": i, "eps": layer.eps, "momentum": layer.momentum}
            for attr in ("gamma", "beta", "running_mean", "running_var"):
                spec[attr] = _array(layer, i, attr, (n,), dtype)
            out.append(spec)
        elif isinstance(layer, Dropout):
            out.append({"kind": "dropout", "index": i, "p": layer.p})
        else:
            raise TypeError(f"layers[{i}]: cannot export layer type {type(layer).__name__}")
    return out


# --------------------------------------------------------------------------- PyTorch
def _import_torch():
    try:
        import torch
    except ImportError as exc:
        raise ImportError("converting to or from PyTorch needs the torch package "
                          "(https://pytorch.org/get-started/)") from exc
    return torch


def to_torch(model):
    """The PyTorch equivalent of ``model``: a ``torch.nn.Sequential`` in eval mode.

    Parameters
    ----------
    model : fastbp.Sequential

    Returns
    -------
    torch.nn.Sequential
        One module per fastbp layer (see the table in :mod:`fastbp.interop`),
        with the model's dtype (torch.float32 or torch.float64), its weights and
        BatchNorm running statistics copied (not shared), in eval mode, so
        ``module(torch.from_numpy(X))`` equals ``model.predict(X)``. Call
        ``.train()`` on it to train it in PyTorch. The loss is not part of the
        module: with ``BinaryCrossEntropy`` the final ``Sigmoid`` is (use
        ``BCELoss``); with ``SoftmaxCrossEntropy`` the module returns logits
        (use ``CrossEntropyLoss``). PyTorch's global random state is not used.
    """
    specs = read_layers(model)
    torch = _import_torch()
    nn = torch.nn
    tdtype = {"float32": torch.float32, "float64": torch.float64}[np.dtype(model.dtype).name]
    acts = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "identity": nn.Identity}
    modules = []
    with torch.no_grad():
        for s in specs:
            if s["kind"] == "dense":
                n_in, n_out = s["W"].shape
                # skip_init: no draw from torch's global generator; every value is set below
                m = nn.utils.skip_init(nn.Linear, n_in, n_out, bias=s["b"] is not None,
                                       dtype=tdtype)
                m.weight.copy_(torch.from_numpy(np.ascontiguousarray(s["W"].T)))
                if s["b"] is not None:
                    m.bias.copy_(torch.from_numpy(s["b"]))
            elif s["kind"] == "activation":
                m = acts[s["name"]]()
            elif s["kind"] == "batchnorm":
                m = nn.BatchNorm1d(len(s["gamma"]), eps=s["eps"], momentum=s["momentum"],
                                   dtype=tdtype)
                for name, key in (("weight", "gamma"), ("bias", "beta"),
                                  ("running_mean", "running_mean"), ("running_var", "running_var")):
                    getattr(m, name).copy_(torch.from_numpy(s[key]))
            else:
                m = nn.Dropout(s["p"])
            modules.append(m)
    return nn.Sequential(*modules).eval()
