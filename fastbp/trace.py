"""One step of backpropagation, recorded term by term through the NumPy reference.

:func:`trace` (also :meth:`fastbp.Sequential.trace`) runs one plain SGD step
``w <- w - lr * dL/dw`` on one sample or a small batch, layer by layer, calling
the reference ops of :mod:`fastbp.reference` in the order the backends run
them, and keeps every intermediate value: the inputs, each weighted sum with
its terms, each activation, BatchNorm's batch statistics, each dropout mask,
the loss and its derivative, each delta, each weight gradient with its
factors, and each updated weight. The model is not changed: the step runs on
copies of its parameters and running statistics.

The numbers are those of ``fit(X, y, epochs=1, lr=lr, batch_size=len(X),
shuffle=False)`` on a fresh SGD optimizer (the tests hold the Numba backend to
them within 1e-12 in float64), including the dropout masks that step would
draw.

:meth:`Trace.text` writes the record as a worked example (formula, numbers
substituted, result), :meth:`Trace.html` as an interactive page; see
:mod:`fastbp._trace_text` and :mod:`fastbp._trace_html`.
"""
import numpy as np

from . import plan as P
from ._config import ACTIVATIONS
from .layers import Activation, BatchNorm, Dense, Dropout, _check_float
from .losses import BinaryCrossEntropy, SoftmaxCrossEntropy
from .reference import (act_backward, act_forward, batchnorm_backward, batchnorm_forward_train,
                        bce_with_logits, dense_backward, dense_forward, dropout_backward,
                        dropout_forward, dropout_mask, mse_loss, sgd_update,
                        softmax_cross_entropy)

__all__ = ["Trace", "trace", "STAGES", "TERMS_LIMIT"]

STAGES = ("forward", "loss", "backward", "update")
# A Dense step keeps its products x[r, k] * W[k, j] as an (n, in, out) array
# up to this many elements; above it ``terms`` is None (the factors are there).
TERMS_LIMIT = 1 << 20


class Trace:
    """The record of one SGD step; made by :func:`trace`.

    Attributes
    ----------
    steps : list of dict
        In order: every layer's forward step, the loss, every layer's backward
        step (last layer first), then one update per parameter array. Each has
        ``stage`` (one of :data:`STAGES`), ``kind`` and ``layer`` (the index
        in ``model.layers``; None for the loss), plus the arrays of its kind
        (all copies, rows are samples):

        - forward ``dense``: ``x`` (n, in), ``W`` (in, out), ``b`` (out,) or
          None, ``terms`` (n, in, out) with ``terms[r, k, j] = x[r, k] *
          W[k, j]`` (None past :data:`TERMS_LIMIT`), ``z`` (n, out) ``= x @ W + b``.
        - forward ``activation``: ``name``, ``x``, ``y``; ``folded`` is True
          for the sigmoid a BinaryCrossEntropy loss takes over (the loss reads
          ``x``).
        - forward ``batchnorm``: ``x``, batch ``mean`` and biased ``var``,
          ``inv_std`` ``= 1/sqrt(var + eps)``, ``xhat``, ``gamma``, ``beta``,
          ``y``, ``momentum``, ``eps``, the running statistics before
          (``running_mean``, ``running_var``) and after (``*_new``).
        - forward ``dropout``: ``p``, ``key``, ``counter``, ``mask`` (0 or
          1/(1-p)), ``x``, ``y = x * mask``.
        - ``loss``: ``loss`` ("mse", "cross_entropy" or "bce"), ``output``
          (what the loss reads: the last output, or the logits), ``prediction``
          (the output, the softmax probabilities, or sigmoid(logits)),
          ``target`` (n, k) or ``labels`` (n,), ``value``, ``grad`` (dL/d
          output); for MSE ``half`` and ``reduction``.
        - backward ``activation``: ``name``, ``y``, ``dy`` (dL/dy), ``local``
          (dy/dx, from the output), ``dx``.
        - backward ``dense``: ``x``, ``W``, ``delta`` (dL/dz), ``dW`` (with
          ``dW[k, j] = sum_r x[r, k] * delta[r, j]``), ``db`` or None, ``dx``
          (dL/dx) or None for the first layer (the input is data).
        - backward ``batchnorm``: ``dy``, ``xhat``, ``inv_std``, ``gamma``,
          ``dgamma``, ``dbeta``, ``dx`` or None.
        - backward ``dropout``: ``dy``, ``mask``, ``dx``.
        - ``update``: ``param`` ("W", "b", "gamma" or "beta"), ``old``,
          ``grad``, ``new = old - lr * grad``.
    x : (n, n_inputs) array
    loss : float
        The loss before the step.
    grads, new_weights : lists of arrays in ``model.get_weights()`` order
    new_state : array
        The running statistics after the step (BatchNorm), flat.
    after : dict
        ``prediction`` and ``loss`` of the same forward pass (same batch
        statistics mode, same dropout masks) with the new weights.
    lr : float
    layers : list of str
        ``repr`` of each layer.
    """

    def __init__(self, **fields):
        self.__dict__.update(fields)

    def stage(self, name):
        """The steps of one stage ("forward", "loss", "backward" or "update")."""
        if name not in STAGES:
            raise ValueError(f"unknown stage {name!r}; expected one of {', '.join(STAGES)}")
        return [s for s in self.steps if s["stage"] == name]

    def text(self, limit=64, names=None, ascii=False):
        """The step as a worked example; see :func:`fastbp._trace_text.format_text`."""
        from ._trace_text import format_text
        return format_text(self, limit=limit, names=names, ascii=ascii)

    def html(self, path=None, limit=64, names=None, title=None):
        """The step as one self-contained interactive page (returned, and written to
        ``path`` if given); see :func:`fastbp._trace_html.page`."""
        from ._trace_html import page, write
        text = page(self, limit=limit, names=names, title=title)
        if path is not None:
            write(path, text)
        return text

    def __repr__(self):
        return (f"Trace({len(self.steps)} steps, {self.x.shape[0]} sample(s), lr={self.lr}, "
                f"loss {self.loss:.6g} -> {self.after['loss']:.6g})")


# --------------------------------------------------------------------------- the model's plan
def _internals(model):
    """What the step reads from the model beyond its public API, in one place
    (with the validators ``_check_X``, ``_check_y`` and ``_split``): per layer
    its plan row and float settings (None when the loss took the layer over),
    and the dropout step counter. The settings are passed to the ops as the
    backends pass them (float64 scalars), so float32 models round alike."""
    rows = [(model._plan[r], model._pf[r]) if r >= 0 else (None, None)
            for r in model._layer_rows]
    rows += [(None, None)] * (len(model.layers) - len(rows))
    return rows, int(model._counters[P.C_DROPOUT])


def _bind(model, rows, params, state):
    """Per layer, its parameter (and running-statistic) views into the flat copies."""
    views = []
    for layer, (row, pf) in zip(model.layers, rows):
        v = {}
        if isinstance(layer, Dense):
            pa, pb = int(row[P.P_A]), int(row[P.P_B])
            n_in, n_out = layer.in_features, layer.out_features
            v["W"] = params[pa:pa + n_in * n_out].reshape(n_in, n_out)
            v["b"] = params[pb:pb + n_out] if pb >= 0 else None
            v["offsets"] = {"W": pa, "b": pb}
        elif isinstance(layer, BatchNorm):
            d, pa, pb, s = layer.num_features, int(row[P.P_A]), int(row[P.P_B]), int(row[P.STATE])
            v.update(gamma=params[pa:pa + d], beta=params[pb:pb + d],
                     running_mean=state[s:s + d], running_var=state[s + d:s + 2 * d],
                     offsets={"gamma": pa, "beta": pb}, momentum=pf[P.F_A], eps=pf[P.F_B])
        elif isinstance(layer, Dropout):
            v.update(key=int(row[P.KEY]), p=pf[P.F_A])
        views.append(v)
    return views


# --------------------------------------------------------------------------- forward
def _dense_forward(x, v):
    W, b = v["W"], v["b"]
    z = np.empty((x.shape[0], W.shape[1]), dtype=x.dtype)
    dense_forward(x, W, b if b is not None else W[:0, 0], z)
    terms = x[:, :, None] * W[None, :, :] if x.size // x.shape[1] * W.size <= TERMS_LIMIT else None
    return z, {"kind": "dense", "x": x, "W": W.copy(), "b": None if b is None else b.copy(),
               "terms": terms, "z": z}


def _activation_forward(x, layer, folded):
    y = np.empty_like(x)
    act_forward(x, ACTIVATIONS[layer.name], y)
    return y, {"kind": "activation", "name": layer.name, "x": x, "y": y, "folded": folded}


def _batchnorm_forward(x, v):
    n, d = x.shape
    xhat, inv_std, y = np.empty_like(x), np.empty(d, dtype=x.dtype), np.empty_like(x)
    old_mean, old_var = v["running_mean"].copy(), v["running_var"].copy()
    batchnorm_forward_train(x, v["gamma"], v["beta"], v["running_mean"], v["running_var"],
                            v["momentum"], v["eps"], xhat, inv_std, y)
    # the batch statistics behind inv_std, for display (the op keeps only inv_std)
    mean = x.sum(axis=0) / n
    var = ((x - mean) * (x - mean)).sum(axis=0) / n
    return y, {"kind": "batchnorm", "x": x, "mean": mean, "var": var, "inv_std": inv_std,
               "xhat": xhat, "gamma": v["gamma"].copy(), "beta": v["beta"].copy(), "y": y,
               "momentum": float(v["momentum"]), "eps": float(v["eps"]), "running_mean": old_mean,
               "running_var": old_var, "running_mean_new": v["running_mean"].copy(),
               "running_var_new": v["running_var"].copy()}


def _dropout_forward(x, v, counter, mask=None):
    if mask is None:
        mask = np.empty_like(x)
        dropout_mask(v["key"], counter, v["p"], mask)
    y = np.empty_like(x)
    dropout_forward(x, mask, y)
    return y, {"kind": "dropout", "p": float(v["p"]), "key": v["key"], "counter": counter,
               "mask": mask, "x": x, "y": y}


def _forward(model, rows, views, x, counter, masks=None):
    """Every layer's forward step (training mode) on ``x``; ``masks`` reuses dropout masks."""
    steps, inp = [], x
    for i, (layer, (row, _), v) in enumerate(zip(model.layers, rows, views)):
        if isinstance(layer, Dense):
            out, rec = _dense_forward(inp, v)
        elif isinstance(layer, Activation):
            out, rec = _activation_forward(inp, layer, folded=row is None)
        elif isinstance(layer, BatchNorm):
            out, rec = _batchnorm_forward(inp, v)
        elif isinstance(layer, Dropout):
            out, rec = _dropout_forward(inp, v, counter, None if masks is None else masks[i])
        else:
            raise TypeError(f"layers[{i}]: cannot trace {type(layer).__name__}")
        rec.update(stage="forward", layer=i)
        steps.append(rec)
        inp = out
    return steps


# --------------------------------------------------------------------------- loss
def _loss(model, fwd, Yf, Yi):
    """The loss step: what the loss reads (the last output, or the logits a BCE
    loss takes from before its sigmoid), its value and its gradient."""
    last = fwd[-1]
    loss = model.loss
    if isinstance(loss, BinaryCrossEntropy):
        out = last["x"]
        grad = np.empty_like(out)
        value = bce_with_logits(out, Yf, grad)
        rec = {"loss": "bce", "output": out, "prediction": last["y"], "target": Yf}
    elif isinstance(loss, SoftmaxCrossEntropy):
        out = _output(last)
        probs, grad = np.empty_like(out), np.empty_like(out)
        value = softmax_cross_entropy(out, Yi, probs, grad)
        rec = {"loss": "cross_entropy", "output": out, "prediction": probs, "labels": Yi}
    else:
        out = _output(last)
        grad = np.empty_like(out)
        value = mse_loss(out, Yf, loss.reduction == "sum", loss.half, grad)
        rec = {"loss": "mse", "output": out, "prediction": out, "target": Yf,
               "half": loss.half, "reduction": loss.reduction}
    rec.update(stage="loss", kind="loss", layer=None, value=float(value), grad=grad)
    return rec


def _output(rec):
    return rec["z"] if rec["kind"] == "dense" else rec["y"]


# --------------------------------------------------------------------------- backward
def _backward(model, fwd, views, grad, grads):
    """Every layer's backward step, last layer first; parameter gradients go into
    the flat ``grads`` (the layout of the model's parameters)."""
    steps, dy = [], grad
    for i in range(len(model.layers) - 1, -1, -1):
        f, v = fwd[i], views[i]
        kind = f["kind"]
        if kind == "activation" and f["folded"]:
            continue                      # the BCE loss already gave dL/d(logits)
        n = dy.shape[0]
        want = i > 0
        dx = np.empty((n if want else 0, f["x"].shape[1]), dtype=dy.dtype)
        if kind == "dense":
            W = f["W"]
            off = v["offsets"]
            dW = grads[off["W"]:off["W"] + W.size].reshape(W.shape)
            db = grads[off["b"]:off["b"] + W.shape[1]] if off["b"] >= 0 else grads[:0]
            dense_backward(dy, f["x"], W, dx, dW, db)
            rec = {"kind": "dense", "x": f["x"], "W": W, "delta": dy, "dW": dW.copy(),
                   "db": db.copy() if off["b"] >= 0 else None}
        elif kind == "activation":
            code = ACTIVATIONS[f["name"]]
            local = np.empty_like(dy)
            act_backward(np.ones_like(dy), f["y"], code, local)
            dx = np.empty_like(dy)
            act_backward(dy, f["y"], code, dx)
            rec = {"kind": "activation", "name": f["name"], "y": f["y"], "dy": dy, "local": local}
        elif kind == "batchnorm":
            d = f["gamma"].size
            off = v["offsets"]
            dgamma = grads[off["gamma"]:off["gamma"] + d]
            dbeta = grads[off["beta"]:off["beta"] + d]
            batchnorm_backward(dy, f["xhat"], f["inv_std"], f["gamma"], dx, dgamma, dbeta)
            rec = {"kind": "batchnorm", "dy": dy, "xhat": f["xhat"], "inv_std": f["inv_std"],
                   "gamma": f["gamma"], "dgamma": dgamma.copy(), "dbeta": dbeta.copy()}
        else:
            dx = np.empty_like(dy)
            dropout_backward(dy, f["mask"], dx)
            rec = {"kind": "dropout", "dy": dy, "mask": f["mask"]}
        rec.update(stage="backward", layer=i, dx=dx if dx.shape[0] else None)
        steps.append(rec)
        dy = dx
    return steps


# --------------------------------------------------------------------------- update
def _update(model, views, params, grads, lr):
    """One plain SGD step on the flat copies (the reference optimizer), and a
    record per parameter array."""
    old = params.copy()
    sgd_update(params, grads, params[:0], np.float64(lr), 0.0, 0.0, False)
    steps = []
    for i, (layer, v) in enumerate(zip(model.layers, views)):
        for name, off in v.get("offsets", {}).items():
            if off < 0:
                continue
            shape = v[name].shape
            size = v[name].size
            steps.append({"stage": "update", "kind": "update", "layer": i, "param": name,
                          "old": old[off:off + size].reshape(shape).copy(),
                          "grad": grads[off:off + size].reshape(shape).copy(),
                          "new": params[off:off + size].reshape(shape).copy(), "lr": lr})
    return steps


# --------------------------------------------------------------------------- the step
def trace(model, X, y, lr=0.01):
    """Record one SGD step of ``model`` on the batch ``(X, y)``, term by term.

    Parameters
    ----------
    model : fastbp.Sequential
        Not changed (neither weights, running statistics nor counters).
    X : (n, n_inputs) array-like
        One sample (n = 1) or a small batch; a 1-D X is one sample.
    y : targets as ``fit`` takes them; a scalar or 1-D y of one sample is
        accepted for a 1-D X.
    lr : float > 0
        Learning rate of the step ``w <- w - lr * dL/dw``.

    Returns
    -------
    Trace
        Computed with the NumPy reference ops whatever ``model.backend`` is; its
        gradients and new weights are those of ``fit(X, y, epochs=1, lr=lr,
        batch_size=n, shuffle=False)`` with plain SGD.

    Raises
    ------
    ValueError, TypeError
        For the inputs ``fit`` rejects, and for a batch of one with BatchNorm
        (no batch statistics).
    """
    lr = _check_float(lr, "lr", 0.0, None, low_open=True)
    X, y = _as_batch(model, X, y)
    X = model._check_X(X)
    Yf, Yi = model._check_y(y, X.shape[0])
    n = X.shape[0]
    if n == 1 and any(isinstance(layer, BatchNorm) for layer in model.layers):
        raise ValueError("BatchNorm needs at least 2 samples in training mode: trace a batch "
                         "of 2 or more rows")
    rows, counter = _internals(model)
    params, state = model.params.copy(), model.state.copy()
    views = _bind(model, rows, params, state)
    fwd = _forward(model, rows, views, X, counter)
    loss = _loss(model, fwd, Yf, Yi)
    grads = np.zeros_like(params)
    bwd = _backward(model, fwd, views, loss["grad"], grads)
    upd = _update(model, views, params, grads, lr)
    masks = {s["layer"]: s["mask"] for s in fwd if s["kind"] == "dropout"}
    scratch = _bind(model, rows, params, state.copy())
    again = _forward(model, rows, scratch, X, counter, masks)
    after = _loss(model, again, Yf, Yi)
    return Trace(steps=fwd + [loss] + bwd + upd, x=X, target=Yf if Yf.size else Yi, lr=lr,
                 loss=loss["value"], grads=model._split(grads),
                 new_weights=model._split(params), new_state=state,
                 after={"prediction": after["prediction"], "loss": after["value"]},
                 layers=[_short(layer) for layer in model.layers], loss_repr=repr(model.loss),
                 dtype=model.dtype.name)


def _short(layer):
    """``Dense(2, 4)``, ``Dense(2, 1, no bias)``, ``Sigmoid``, ``BatchNorm(4)``, ``Dropout(p=0.5)``."""
    if isinstance(layer, Dense):
        return (f"Dense({layer.in_features}, {layer.out_features}"
                f"{'' if layer.bias else ', no bias'})")
    if isinstance(layer, BatchNorm):
        return f"BatchNorm({layer.num_features})"
    if isinstance(layer, Dropout):
        return f"Dropout(p={layer.p:g})"
    return type(layer).__name__


def _as_batch(model, X, y):
    """A 1-D X is one sample: (n_inputs,) -> (1, n_inputs), with y to match."""
    if isinstance(X, (str, bytes)):
        return X, y
    arr = np.asarray(X)
    if arr.ndim != 1 or arr.dtype == object:
        return X, y
    yarr = np.asarray(y)
    if yarr.ndim == 0 or (yarr.ndim == 1 and not isinstance(model.loss, SoftmaxCrossEntropy)):
        yarr = yarr.reshape(1, -1)
    elif yarr.ndim == 1 and yarr.size == model.n_outputs and yarr.size > 1:
        yarr = yarr.reshape(1, -1)     # one one-hot row
    return arr.reshape(1, -1), yarr
