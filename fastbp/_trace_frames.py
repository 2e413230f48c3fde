"""The frames of a traced step, one per layer and stage (see :func:`fastbp._trace_text.frames`).

Each builder takes one step of a :class:`fastbp.trace.Trace` and writes its
formula lines (``name = formula = numbers = result``) and the items that tie
each value to the element of the drawn network it belongs to.
"""
import numpy as np

from . import _trace_back as B
from ._trace_loss import bce, cross_entropy, mse
from ._trace_notation import (_ACT_TEXT, _shown, _tag, _too_big, _values_only, add, equation,
                              frame, num, order, sub, summary, wrap)


def _title(nm, i):
    return f"Layer {i + 1}: {nm.reprs[i]}"


def _big(fr, limit, count, parts):
    """Summarise a frame: one line per (label, array, name) and the notice."""
    fr["lines"] += [summary(label, arr, fr["nm"], name) for label, arr, name in parts]
    fr["lines"].append(_too_big(count, limit))


def _frame(stage, title, rule, nm, layer=None):
    fr = frame(stage, title, rule)
    fr["nm"], fr["layer"] = nm, layer
    return fr


# --------------------------------------------------------------------------- start
def start(trace, nm, limit):
    """The inputs, the targets and the weights before the step."""
    fr = _frame("start", "Inputs, targets and starting weights", "", nm)
    x, n = trace.x, trace.x.shape[0]
    loss = trace.stage("loss")[0]
    target = loss.get("target", loss.get("labels"))
    if x.size + target.size <= limit:
        for r in range(n):
            xs = [f"{nm.el('x', k)} = {num(x[r, k])}" for k in range(x.shape[1])]
            for k in range(x.shape[1]):
                fr["items"].append({"k": f"v:x:{k}", "r": r, "v": float(x[r, k]), "f": xs[k]})
            if target.ndim == 1:
                ts = [f"label {int(target[r])}"]
                fr["items"].append({"k": "v:y:0", "r": r, "v": float(target[r]), "f": ts[0]})
            else:
                ts = [f"{nm.el('y', j)} = {num(target[r, j])}" for j in range(target.shape[1])]
                fr["items"] += [{"k": f"v:y:{j}", "r": r, "v": float(target[r, j]), "f": ts[j]}
                                for j in range(target.shape[1])]
            fr["lines"].append(wrap([f"{_tag(n, r)}input {xs[0]}"] + xs[1:]
                                     + [f"target {ts[0]}"] + ts[1:]))
    else:
        _big(fr, limit, x.size, [("input x", x, "x")])
        _values_only(fr, nm, "v", "x", x)
    for s in trace.stage("forward"):
        if s["kind"] == "dense":
            _weights(fr, nm, limit, nm.params[s["layer"]], s["W"], s["b"], "w")
    return fr


def _weights(fr, nm, limit, P, W, b, key, label=""):
    """One line per Dense layer listing its weights and biases (or a summary)."""
    n_in, n_out = W.shape
    if W.size <= limit:
        parts = []
        for k, j in order(W.shape):
            parts.append(f"{nm.el(P['W'], k, j)} = {num(W[k, j])}")
            fr["items"].append({"k": f"{key}:{P['W']}:{k},{j}", "r": -1,
                                "v": float(W[k, j]), "f": parts[-1]})
        if b is not None:
            for j in range(n_out):
                parts.append(f"{nm.el(P['b'], j)} = {num(b[j])}")
                fr["items"].append({"k": f"{key}:{P['b']}:{j}", "r": -1, "v": float(b[j]),
                                    "f": parts[-1]})
        fr["lines"].append(wrap([f"{label}{P['W']}: {parts[0]}"] + parts[1:]))
        return
    fr["lines"].append(summary(label + P["W"], W, nm, P["W"]))
    fr["lines"].append(_too_big(W.size, limit))
    for k in _shown(n_in):
        for j in _shown(n_out):
            fr["items"].append({"k": f"{key}:{P['W']}:{k},{j}", "r": -1, "v": float(W[k, j]),
                                "f": f"{nm.el(P['W'], k, j)} = {num(W[k, j])}"})


# --------------------------------------------------------------------------- forward
def forward(s, nm, limit):
    return {"dense": _dense, "activation": _activation, "batchnorm": _batchnorm,
            "dropout": _dropout}[s["kind"]](s, nm, limit)


def _dense(s, nm, limit):
    i, x, W, b, z = s["layer"], s["x"], s["W"], s["b"], s["z"]
    (n, n_in), n_out = x.shape, W.shape[1]
    P, xin, zo = nm.params[i], nm.inp[i], nm.out[i]
    fr = _frame("forward", _title(nm, i),
                "z[j] = Σ_k W[k,j]·x[k]" + (" + b[j]" if b is not None else ""), nm, i)
    if W.size > limit or n * n_out > limit:
        _big(fr, limit, max(W.size, n * n_out), [(zo, z, zo)])
        _values_only(fr, nm, "v", zo, z)
        return fr
    for r in range(n):
        for j in range(n_out):
            sym = " + ".join(f"{nm.el(P['W'], k, j)}·{nm.el(xin, k)}" for k in range(n_in))
            val = " + ".join(f"{sub(W[k, j])}·{sub(x[r, k])}" for k in range(n_in))
            if b is not None:
                sym, val = f"{sym} + {nm.el(P['b'], j)}", f"{val} + {sub(b[j])}"
            add(fr, f"v:{zo}:{j}", z[r, j],
                equation(_tag(n, r) + nm.el(zo, j), sym, val, num(z[r, j])), r)
    return fr


def _activation(s, nm, limit):
    i, x, y, name = s["layer"], s["x"], s["y"], s["name"]
    zi, ao = nm.inp[i], nm.out[i]
    rule = f"a = {_ACT_TEXT[name]}"
    if s["folded"]:
        rule += "   (the loss reads z itself: binary cross-entropy from the logits)"
    fr = _frame("forward", _title(nm, i), rule, nm, i)
    n, d = x.shape
    if n * d > limit:
        _big(fr, limit, n * d, [(ao, y, ao)])
        _values_only(fr, nm, "v", ao, y)
        return fr
    for r in range(n):
        for j in range(d):
            z = nm.el(zi, j)
            sym, val = {"sigmoid": (f"σ({z})", f"1 / (1 + e^({num(-x[r, j])}))"),
                        "relu": (f"max(0, {z})", f"max(0, {num(x[r, j])})"),
                        "tanh": (f"tanh({z})", f"tanh({num(x[r, j])})"),
                        "identity": (z, num(x[r, j]))}[name]
            add(fr, f"v:{ao}:{j}", y[r, j],
                equation(_tag(n, r) + nm.el(ao, j), sym, val, num(y[r, j])), r)
    return fr


def _batchnorm(s, nm, limit):
    i, x, y = s["layer"], s["x"], s["y"]
    n, d = x.shape
    zi, bo, P = nm.inp[i], nm.out[i], nm.params[i]
    m = s["momentum"]
    fr = _frame("forward", _title(nm, i) + ", training mode: the batch's own statistics",
                "μ = Σ_r x/n, σ² = Σ_r (x - μ)²/n, x̂ = (x - μ)·1/√(σ² + ε), bn = γ·x̂ + β", nm, i)
    if n * d > limit:
        _big(fr, limit, n * d, [("batch mean μ", s["mean"], "μ"), ("batch variance σ²", s["var"],
                                                                   "σ²"), (bo, y, bo)])
        _values_only(fr, nm, "v", bo, y)
        return fr
    for j in range(d):
        xs, mu, var, inv = x[:, j], s["mean"][j], s["var"][j], s["inv_std"][j]
        g, be = s["gamma"][j], s["beta"][j]
        fr["lines"].append(f"feature {j + 1}: " + equation(
            f"μ[{j + 1}]", f"Σ_r {nm.el(zi, j)}/{n}",
            "(" + " + ".join(sub(v) for v in xs) + f")/{n}", num(mu)))
        fr["lines"].append(equation(f"σ²[{j + 1}]", f"Σ_r ({nm.el(zi, j)} - μ[{j + 1}])²/{n}",
                                    "(" + " + ".join(f"({num(v)} - {sub(mu)})²" for v in xs)
                                    + f")/{n}", num(var)))
        fr["lines"].append(equation(f"1/√(σ²[{j + 1}] + ε)", f"1/√({num(var)} + {num(s['eps'])})",
                                    num(inv)))
        for r in range(n):
            xh = s["xhat"][r, j]
            add(fr, f"v:{bo}:{j}", y[r, j], equation(
                f"{_tag(n, r)}x̂ = ({num(xs[r])} - {sub(mu)})·{sub(inv)} = {num(xh)}; "
                f"{nm.el(bo, j)}", f"{nm.el(P['gamma'], j)}·x̂ + {nm.el(P['beta'], j)}",
                f"{sub(g)}·{sub(xh)} + {sub(be)}", num(y[r, j])), r)
        fr["lines"].append(
            f"running mean[{j + 1}] ← (1 - {num(m)})·{sub(s['running_mean'][j])} + {num(m)}·"
            f"{sub(mu)} = {num(s['running_mean_new'][j])}; running var[{j + 1}] ← (1 - {num(m)})·"
            f"{sub(s['running_var'][j])} + {num(m)}·{sub(var)}·{n}/{n - 1} = "
            f"{num(s['running_var_new'][j])}")
    return fr


def _dropout(s, nm, limit):
    i, x, y, mask, p = s["layer"], s["x"], s["y"], s["mask"], s["p"]
    ai, do = nm.inp[i], nm.out[i]
    scale = 1.0 / (1.0 - p)
    fr = _frame("forward", _title(nm, i) + f", mask from stream (key {s['key']}, step "
                f"{s['counter']})", f"dr = a·m;  m = 1/(1 - p) = {num(scale)} for a kept unit "
                f"(probability {num(1 - p)}), 0 for a dropped one", nm, i)
    n, d = x.shape
    if n * d > limit:
        kept = int(np.count_nonzero(mask))
        fr["lines"].append(f"mask: {kept} of {mask.size} units kept ({kept / mask.size:.1%})")
        _big(fr, limit, n * d, [(do, y, do)])
        _values_only(fr, nm, "v", do, y)
        return fr
    for r in range(n):
        fr["lines"].append(f"{_tag(n, r)}mask m = [{', '.join(num(v) for v in mask[r])}]")
        for j in range(d):
            add(fr, f"v:{do}:{j}", y[r, j], equation(
                _tag(n, r) + nm.el(do, j), f"{nm.el(ai, j)}·m[{j + 1}]",
                f"{sub(x[r, j])}·{sub(mask[r, j])}", num(y[r, j])), r)
    return fr


# --------------------------------------------------------------------------- loss
def loss(s, nm, limit):
    return {"mse": mse, "cross_entropy": cross_entropy, "bce": bce}[s["loss"]](
        s, nm, limit, _frame("loss", "", "", nm))


# --------------------------------------------------------------------------- backward
def backward(s, nm, limit, trace):
    fr = _frame("backward", _title(nm, s["layer"]), "", nm, s["layer"])
    return {"dense": B.dense, "activation": B.activation, "batchnorm": B.batchnorm,
            "dropout": B.dropout}[s["kind"]](s, nm, limit, fr)


# --------------------------------------------------------------------------- update
def updates(trace, nm, limit):
    """One frame per layer with parameters: ``new w = w - lr·dL/dw``."""
    out, by_layer = [], {}
    for s in trace.stage("update"):
        by_layer.setdefault(s["layer"], []).append(s)
    lr = num(trace.lr)
    for i, steps in by_layer.items():
        fr = _frame("update", _title(nm, i), f"new w = w - lr·d{nm.L}/dw, lr = {lr}", nm, i)
        for s in steps:
            P = nm.params[i][s["param"]]
            old, g, new = s["old"], s["grad"], s["new"]
            if old.size > limit:
                _big(fr, limit, old.size, [(f"new {P}", new, P), (f"change of {P}", new - old, P)])
                _shown_updates(fr, nm, P, new)
                continue
            for idx in order(old.shape):
                key = ",".join(map(str, idx))
                add(fr, f"n:{P}:{key}", new[idx], equation(
                    f"new {nm.el(P, *idx)}", f"{nm.el(P, *idx)} - lr·{nm.dparam(P, *idx)}",
                    f"{num(old[idx])} - {lr}·{sub(g[idx])}", num(new[idx])))
        out.append(fr)
    return out


def _shown_updates(fr, nm, P, new):
    rows = _shown(new.shape[0])
    for idx in np.ndindex(new.shape):
        if idx[0] in rows and (len(idx) == 1 or idx[1] in _shown(new.shape[1])):
            fr["items"].append({"k": f"n:{P}:{','.join(map(str, idx))}", "r": -1,
                                "v": float(new[idx]), "f": f"new {nm.el(P, *idx)} = "
                                                            f"{num(new[idx])}"})


def check(trace, nm):
    """The same forward pass with the new weights: did the loss go down?"""
    kinds = {s["kind"] for s in trace.stage("forward")}
    same = "same batch" + (", same dropout masks" if "dropout" in kinds else "") + (
        ", BatchNorm on this batch's statistics" if "batchnorm" in kinds else "")
    fr = _frame("check", "Check: the same forward pass with the new weights", f"({same})", nm)
    before = trace.stage("loss")[0]
    old, new = before["prediction"], trace.after["prediction"]
    name = nm.last
    if old.size <= 64:
        for r in range(old.shape[0]):
            for j in range(old.shape[1]):
                probs = before["loss"] == "cross_entropy"
                label = f"p[{j + 1}]" if probs else nm.el(name, j)
                add(fr, f"n:{'p' if probs else name}:{j}", new[r, j], f"{_tag(old.shape[0], r)}{label}: "
                    f"{num(old[r, j])} → {num(new[r, j])}", r)
    add(fr, "n:L", trace.after["loss"],
        f"{nm.L}: {num(before['value'])} → {num(trace.after['loss'])} "
        f"({'down' if trace.after['loss'] < before['value'] else 'not down'} by "
        f"{num(abs(before['value'] - trace.after['loss']))})")
    return fr
