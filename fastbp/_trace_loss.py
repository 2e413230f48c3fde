"""The loss frame of a traced step: the loss, then its gradient with respect to the
network's output (see :mod:`fastbp._trace_frames`)."""
import numpy as np

from ._trace_notation import _tag, _too_big, _values_only, add, equation, num, sub, summary


def _summarise(fr, nm, limit, s, arr, count):
    fr["lines"].append(summary(f"d{nm.L}/d{arr}", s["grad"], nm, arr, grad=True))
    fr["lines"].append(_too_big(count, limit))
    add(fr, "v:L", s["value"], f"{nm.L} = {num(s['value'])}")
    _values_only(fr, nm, "g", arr, s["grad"], grad=True)


def mse(s, nm, limit, fr):
    """Squared error: ``L = f·Σ(ŷ - y)²/D``, ``dL/dŷ = (2f/D)·(ŷ - y)``."""
    out, t, g = s["output"], s["target"], s["grad"]
    n, k = out.shape
    half = "½·" if s["half"] else ""
    D = 1 if s["reduction"] == "sum" else n * k
    coef = (1.0 if s["half"] else 2.0) / D
    y, L = nm.last, nm.L
    how = "summed" if s["reduction"] == "sum" else f"mean over {D} value{'s' if D > 1 else ''}"
    fr["title"] = f"Loss: squared error{', halved' if s['half'] else ''}, {how}"
    scale = "" if D == 1 else f"(1/{D})·"
    fr["rule"] = (f"{L} = {half}{scale}Σ (ŷ - y)²;  d{L}/dŷ = "
                  f"{'' if coef == 1 else num(coef) + '·'}(ŷ - y)")
    if n * k > limit:
        _summarise(fr, nm, limit, s, y, n * k)
        return fr
    pairs = [(r, j) for r in range(n) for j in range(k)]
    if len(pairs) == 1:
        sym = f"{half}({nm.el(y, 0)} - {nm.el('y', 0)})²"
    else:
        sym = f"{half}{scale}Σ ({y} - y)²"
    vals = " + ".join(f"({num(out[r, j])} - {sub(t[r, j])})²" for r, j in pairs)
    vals = f"{half}{scale}{vals}" if len(pairs) == 1 else f"{half}{scale}[{vals}]"
    add(fr, "v:L", s["value"], equation(L, sym, vals, num(s["value"])))
    c = "" if coef == 1 else f"{num(coef)}·"
    for r, j in pairs:
        add(fr, f"g:{y}:{j}", g[r, j], equation(
            _tag(n, r) + nm.grad_long(y, j), f"{c}({nm.el(y, j)} - {nm.el('y', j)})"
            if c else f"{nm.el(y, j)} - {nm.el('y', j)}",
            f"{c}({num(out[r, j])} - {sub(t[r, j])})" if c else f"{num(out[r, j])} - {sub(t[r, j])}",
            num(g[r, j])), r)
    return fr


def cross_entropy(s, nm, limit, fr):
    """Softmax cross-entropy over the logits, mean over the batch."""
    z, p, labels, g = s["output"], s["prediction"], s["labels"], s["grad"]
    n, k = z.shape
    zo, L = nm.last, nm.L
    fr["title"] = "Loss: softmax cross-entropy, mean over the batch"
    fr["rule"] = (f"p[j] = e^(z[j] - max z) / Σ_i e^(z[i] - max z);  {L} = -(1/n)·Σ_r log "
                  f"p[label];  d{L}/dz[j] = (p[j] - [j = label])/n")
    if n * k > limit:
        fr["lines"].append(summary("p = softmax(z)", p, nm, "p"))
        _summarise(fr, nm, limit, s, zo, n * k)
        return fr
    per_row = []
    for r in range(n):
        m = z[r].max()
        total = float(np.exp(z[r] - m).sum())       # the softmax's denominator, for display
        for j in range(k):
            fr["lines"].append(equation(f"{_tag(n, r)}p[{j + 1}]",
                                        f"e^({nm.el(zo, j)} - max)/Σ",
                                        f"e^({num(z[r, j])} - {sub(m)})/{num(total)}",
                                        num(p[r, j])))
        lab = int(labels[r])
        per_row.append(-np.log(p[r, lab]))
        fr["lines"].append(equation(f"{_tag(n, r)}{L}_{r + 1}", f"-log p[{lab + 1}]",
                                    f"-log({num(p[r, lab])})", num(per_row[-1]))
                           + f"   (label {lab}: output {lab + 1})")
    add(fr, "v:L", s["value"], equation(
        L, f"(1/{n})·Σ_r {L}_r" if n > 1 else f"{L}_1",
        f"(1/{n})·(" + " + ".join(num(v) for v in per_row) + ")" if n > 1 else "",
        num(s["value"])))
    for r in range(n):
        for j in range(k):
            one = 1 if j == int(labels[r]) else 0
            add(fr, f"g:{zo}:{j}", g[r, j], equation(
                _tag(n, r) + nm.grad_long(zo, j), f"(p[{j + 1}] - {one})/{n}",
                f"({num(p[r, j])} - {one})/{n}", num(g[r, j])), r)
    return fr


def bce(s, nm, limit, fr):
    """Binary cross-entropy of ŷ = σ(z), computed from the logits z."""
    z, yh, t, g = s["output"], s["prediction"], s["target"], s["grad"]
    n, k = z.shape
    N = n * k
    zo, yo, L = nm.inp[nm.last_layer], nm.last, nm.L
    fr["title"] = f"Loss: binary cross-entropy, mean over the {N} output value{'s' if N > 1 else ''}"
    fr["rule"] = (f"{L} = -(1/N)·Σ [y·log ŷ + (1 - y)·log(1 - ŷ)], ŷ = σ(z);  d{L}/dz = "
                  f"(ŷ - y)/N   (from z directly: the sigmoid's slope cancels)")
    if N > limit:
        _summarise(fr, nm, limit, s, zo, N)
        return fr
    terms = " + ".join(f"{sub(t[r, j])}·log({num(yh[r, j])}) + (1 - {num(t[r, j])})·"
                       f"log(1 - {num(yh[r, j])})" for r in range(n) for j in range(k))
    add(fr, "v:L", s["value"], equation(
        L, f"-(1/{N})·Σ [y·log ŷ + (1 - y)·log(1 - ŷ)]", f"-(1/{N})·[{terms}]",
        num(s["value"])))
    for r in range(n):
        for j in range(k):
            add(fr, f"g:{zo}:{j}", g[r, j], equation(
                _tag(n, r) + nm.grad_long(zo, j), f"({nm.el(yo, j)} - {nm.el('y', j)})/{N}",
                f"({num(yh[r, j])} - {sub(t[r, j])})/{N}", num(g[r, j])), r)
    return fr
