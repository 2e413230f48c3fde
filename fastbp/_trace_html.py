"""A :class:`fastbp.trace.Trace` as one self-contained web page.

The page draws the network as nodes (one per unit, listing its values) and
weighted edges, and steps through the frames of :func:`fastbp._trace_text.frames`
(start, forward pass, loss, backward pass, update) with buttons or the arrow
keys. Each value sits on the node or edge it belongs to; what the current
frame computed is highlighted; clicking an element shows its formulas. All
numbers and formulas are computed here, in Python, and embedded as JSON; the
script only draws them. No network access: no external script, style sheet,
font or image.
"""
import html
import json
from importlib import resources

import numpy as np

from ._trace_notation import SHOWN_UNITS, _shown
from ._trace_text import frames

_TEMPLATE = "_trace_page.html"


def _columns(trace, nm):
    """The drawn columns: the input, then one per Dense layer (its units carry the
    values of the layers up to the next Dense)."""
    cols = [{"arrays": ["x"], "width": trace.x.shape[1], "layer": None, "bias": False}]
    for s in trace.stage("forward"):
        arr = nm.out[s["layer"]]
        if s["kind"] == "dense":
            cols.append({"arrays": [arr], "width": s["W"].shape[1], "layer": s["layer"],
                         "bias": s["b"] is not None, "W": nm.params[s["layer"]]["W"],
                         "b": nm.params[s["layer"]]["b"], "weights": int(s["W"].size)})
        else:
            cols[-1]["arrays"].append(arr)
    return cols


def _slots(col, j, nm, keys):
    """The lines of unit j's node: each value, then each gradient, then its new value."""
    out = []
    for arr in col["arrays"]:
        if f"v:{arr}:{j}" in keys:
            out.append({"key": f"v:{arr}:{j}", "label": nm.el(arr, j), "kind": "v"})
    for arr in reversed(col["arrays"]):
        if f"g:{arr}:{j}" in keys:
            out.append({"key": f"g:{arr}:{j}", "label": nm.grad(arr, j), "kind": "g"})
    for arr in col["arrays"]:
        if f"n:{arr}:{j}" in keys:
            out.append({"key": f"n:{arr}:{j}", "label": f"new {nm.el(arr, j)}", "kind": "n"})
    return out


def graph(trace, nm, frs, limit):
    """Nodes and edges to draw, with the keys of the values each one shows."""
    keys = {it["k"] for fr in frs for it in fr["items"]}
    cols = _columns(trace, nm)
    nodes, edges = [], []
    for c, col in enumerate(cols):
        for j in _shown(col["width"]):
            nodes.append({"id": f"{c}:{j}", "col": c, "row": j, "slots": _slots(col, j, nm, keys)})
        if col["width"] > SHOWN_UNITS:
            nodes.append({"id": f"{c}:more", "col": c, "row": SHOWN_UNITS - 1, "slots": [],
                          "more": col["width"] - len(_shown(col["width"]))})
        if c == 0:
            continue
        prev, labelled = cols[c - 1], col["weights"] <= limit
        for j in _shown(col["width"]):
            for k in _shown(prev["width"]):
                edges.append(_edge(nm, col["W"], (k, j), f"{c - 1}:{k}", f"{c}:{j}", labelled))
            if col["bias"]:
                edges.append(_edge(nm, col["b"], (j,), f"{c - 1}:bias", f"{c}:{j}", labelled))
        if col["bias"]:
            nodes.append({"id": f"{c - 1}:bias", "col": c - 1, "row": SHOWN_UNITS + 1,
                          "slots": [], "bias": True})
    loss = trace.stage("loss")[0]
    target = loss.get("target", loss.get("labels"))
    lslots = [{"key": "v:L", "label": nm.L, "kind": "v"}]
    lslots += [{"key": f"v:y:{j}", "label": "label" if target.ndim == 1 else nm.el("y", j),
                "kind": "y"} for j in range(1 if target.ndim == 1 else target.shape[1])
               if f"v:y:{j}" in keys]
    lslots.append({"key": "n:L", "label": f"new {nm.L}", "kind": "n"})
    nodes.append({"id": "loss", "col": len(cols), "row": 0, "slots": lslots, "loss": True})
    last = len(cols) - 1
    edges += [{"id": f"to-loss:{j}", "from": f"{last}:{j}", "to": "loss", "loss": True}
              for j in _shown(cols[-1]["width"])]
    return {"nodes": nodes, "edges": edges, "ncols": len(cols) + 1,
            "titles": [_col_title(c, col) for c, col in enumerate(cols)] + ["loss"]}


def _col_title(c, col):
    """"input", "layer 3" or "layers 1-4" (the model's layers whose values the column holds)."""
    first, count = col["layer"], len(col["arrays"])
    if c == 0:
        return "input" if count == 1 else f"input, layer{'s' if count > 2 else ''} 1" + (
            f"–{count - 1}" if count > 2 else "")
    return f"layer {first + 1}" if count == 1 else f"layers {first + 1}–{first + count}"


def _edge(nm, P, idx, src, dst, labelled):
    key = ",".join(map(str, idx))
    return {"id": f"{P}:{key}", "from": src, "to": dst, "labelled": labelled,
            "names": {"w": nm.el(P, *idx), "g": nm.dparam(P, *idx), "n": nm.el(P, *idx)},
            "keys": {"w": f"w:{P}:{key}", "g": f"g:{P}:{key}", "n": f"n:{P}:{key}"}}


def data(trace, limit=64, names=None):
    """Everything the page shows, as one JSON-able dict."""
    frs, nm = frames(trace, limit, names)
    for fr in frs:
        for it in fr["items"]:
            if not np.isfinite(it["v"]):
                it["v"] = None
    return {"frames": frs, "graph": graph(trace, nm, frs, limit), "samples": int(trace.x.shape[0]),
            "inputs": int(trace.x.shape[1]),
            "lr": trace.lr, "layers": trace.layers, "loss": trace.loss_repr}


def page(trace, limit=64, names=None, title=None):
    """The page's HTML text."""
    title = title or "fastbp trace: one step of backpropagation"
    payload = json.dumps(data(trace, limit, names), ensure_ascii=False, separators=(",", ":"))
    payload = payload.replace("</", "<\\/").replace("<!--", "<\\!--")
    template = resources.files("fastbp").joinpath(_TEMPLATE).read_text(encoding="utf-8")
    return (template.replace("__TITLE__", html.escape(title))
            .replace("/*__DATA__*/null", payload))


def write(path, text):
    """Write the page atomically (never a half-written file)."""
    from .io import atomic_write
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))
