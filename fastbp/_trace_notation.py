"""The notation of a traced step: how values and names are written, and the frame
pieces every stage of :mod:`fastbp._trace_text` is built from.

Names: the input is ``x1, x2, ...``; the Dense layers are numbered 1, 2, ...
and the values after them are ``z1[j]`` (weighted sum), ``bn1[j]``
(BatchNorm), ``a1[j]`` (activation), ``dr1[j]`` (dropout); weights ``W1[k,j]``
(input k to unit j, 1-based), biases ``b1[j]``; ``δ1[j] = dL/dz1[j]``.
``names`` overrides any of them, e.g. ``{"W1": ["w1", "w3", "w2", "w4"],
"z1": ["h1", "h2"], "L": "E"}`` (matrices in row-major order).
"""
import numpy as np

WIDTH = 100           # a longer formula line breaks before each "="
SHOWN_UNITS = 8       # units of a layer drawn on the page (the first 7 and "..." beyond 8)
_ASCII = str.maketrans({"·": "*", "δ": "d", "Δ": "D", "σ": "sigmoid", "Σ": "sum", "²": "^2",
                        "√": "sqrt", "ŷ": "y_hat", "μ": "mu", "ε": "eps", "γ": "gamma",
                        "β": "beta", "\u0302": "_hat", "½": "1/2", "←": "<-", "→": "->",
                        "‖": "|", "₂": "2", "…": "...", "−": "-"})
_ACT_TEXT = {"sigmoid": "σ(z) = 1 / (1 + e^(-z))", "relu": "max(0, z)", "tanh": "tanh(z)",
             "identity": "z"}


def num(v):
    """A value as printed: 8 significant digits, no trailing zeros."""
    s = f"{float(v):.8g}"
    return "0" if s == "-0" else s


def sub(v):
    """A value substituted into a formula: negatives in parentheses."""
    s = num(v)
    return f"({s})" if s.startswith("-") else s


def equation(*parts):
    """``a = b = c`` from the non-empty parts (a part equal to the next is dropped);
    past :data:`WIDTH` characters each ``=`` starts a new, indented line."""
    kept = [p for i, p in enumerate(parts) if p and (i + 1 >= len(parts) or p != parts[i + 1])]
    line = " = ".join(kept)
    if len(line) <= WIDTH or len(kept) < 3:
        return line
    pad = " " * (len(kept[0]) + 1)
    return "\n".join([f"{kept[0]} = {kept[1]}"] + [f"{pad}= {p}" for p in kept[2:]])


# --------------------------------------------------------------------------- names
class Names:
    """The name of every array of a traced network and of each of its entries."""

    def __init__(self, trace, names=None):
        self.custom = dict(names or {})
        self.L = self.custom.get("L", "L")
        fwd = trace.stage("forward")
        self.n_in = trace.x.shape[1]
        self.out, self.inp, self.params, self.block = {}, {}, {}, {}
        block, prev, used = 0, "x", set()
        for step in fwd:
            i, kind = step["layer"], step["kind"]
            if kind == "dense":
                block += 1
                self.params[i] = {"W": f"W{block}", "b": f"b{block}"}
            elif kind == "batchnorm":
                self.params[i] = {"gamma": f"γ{block}", "beta": f"β{block}"}
            base = {"dense": "z", "activation": "a", "batchnorm": "bn", "dropout": "dr"}[kind]
            arr = f"{base}{block}"
            while arr in used:
                arr += "'"
            used.add(arr)
            self.out[i], self.inp[i], self.block[i] = arr, prev, block
            prev = arr
        self.last = prev
        self.last_layer = fwd[-1]["layer"]
        self.reprs = trace.layers
        self.dense_out = {self.out[s["layer"]] for s in fwd if s["kind"] == "dense"}

    def el(self, arr, *idx):
        """Entry ``idx`` (0-based) of array ``arr``."""
        custom = self.custom.get(arr)
        if custom is not None:
            flat = idx[0] if len(idx) == 1 else idx[0] * self._cols(arr) + idx[1]
            if flat < len(custom):
                return custom[flat]
        if arr == "x":
            return f"x{idx[0] + 1}" if self.n_in < 10 else f"x[{idx[0] + 1}]"
        if arr == "y":
            return "y" if self.custom.get("_k", 1) == 1 else f"y[{idx[0] + 1}]"
        return f"{arr}[{','.join(str(i + 1) for i in idx)}]"

    def _cols(self, arr):
        return self.custom.get("_cols", {}).get(arr, 1)

    def grad(self, arr, *idx):
        """dL/d of an entry; ``δ`` for a Dense layer's weighted sums."""
        if arr in self.dense_out:
            return self.el("δ" + arr[1:], *idx)
        return f"d{self.L}/d{self.el(arr, *idx)}"

    def grad_long(self, arr, *idx):
        """As :meth:`grad`, with ``= dL/dz`` spelled out for a δ."""
        g = self.grad(arr, *idx)
        if arr in self.dense_out:
            return f"{g} = d{self.L}/d{self.el(arr, *idx)}"
        return g

    def dparam(self, arr, *idx):
        return f"d{self.L}/d{self.el(arr, *idx)}"


def _with_shapes(names, trace):
    """Record matrix widths (for row-major custom names) and the output count."""
    names = dict(names or {})
    cols = {}
    for s in trace.stage("forward"):
        if s["kind"] == "dense":
            cols[f"W{len(cols) + 1}"] = s["W"].shape[1]
    names["_cols"] = cols
    last = trace.stage("loss")[0]["output"]
    names["_k"] = last.shape[1]
    return names


# --------------------------------------------------------------------------- summaries
def summary(label, arr, nm, name, grad=False, top=5):
    """One line about a large array: shape, norm, range and its largest entries
    (named as gradients ``dL/d...`` when ``grad``)."""
    a = np.asarray(arr, dtype=np.float64)
    picks = np.argsort(-np.abs(a).ravel(), kind="stable")[:top]
    big = ", ".join(f"{_entry(nm, name, a.shape, int(f), grad)} = {num(a.ravel()[f])}"
                    for f in picks)
    return (f"{label}: shape {a.shape}, ‖·‖₂ = {num(np.linalg.norm(a))}, min {num(a.min())}, "
            f"max {num(a.max())}; largest |entries|: {big}")


def _entry(nm, name, shape, flat, grad):
    idx = [int(i) for i in np.unravel_index(flat, shape)]
    pre = f"d{nm.L}/d" if grad else ""
    if len(shape) == 1:
        return pre + nm.el(name, idx[0])
    if name[:1] in ("W", "γ", "β") and name not in nm.out.values():
        return pre + nm.el(name, idx[0], idx[1])
    return pre + nm.el(name, idx[1]) + (f" (sample {idx[0] + 1})" if shape[0] > 1 else "")


def wrap(parts, sep=", "):
    """Join ``parts`` with ``sep`` into lines of at most :data:`WIDTH` characters."""
    lines, line = [], ""
    for p in parts:
        if line and len(line) + len(sep) + len(p) > WIDTH:
            lines.append(line + sep.rstrip())
            line = p
        else:
            line = f"{line}{sep}{p}" if line else p
    return "\n".join(lines + [line])


def _too_big(count, limit):
    return (f"(summarised: {count:,} values here, more than the limit of {limit}; "
            f"--limit N writes up to N in full)")


def _shown(width):
    return range(width if width <= SHOWN_UNITS else SHOWN_UNITS - 1)


def order(shape):
    """Entries of a parameter array in the order they are written: a weight matrix
    unit by unit (every weight into unit 1, then unit 2, ...), a vector in order."""
    if len(shape) == 1:
        return [(j,) for j in range(shape[0])]
    return [(k, j) for j in range(shape[1]) for k in range(shape[0])]


def _tag(n, r):
    return f"[sample {r + 1}] " if n > 1 else ""


def _item(key, value, line, r=-1):
    return {"k": key, "r": r, "v": float(value), "f": line}


def _values_only(frame, nm, key, arr, values, grad=False):
    """Items for the drawn units of a summarised layer: just ``name = value``."""
    n = values.shape[0]
    for r in range(n):
        for j in _shown(values.shape[1]):
            name = nm.grad(arr, j) if grad else nm.el(arr, j)
            frame["items"].append(_item(f"{key}:{arr}:{j}", values[r, j],
                                        f"{_tag(n, r)}{name} = {num(values[r, j])}", r))


def frame(stage, title, rule):
    return {"stage": stage, "title": title, "rule": rule, "lines": [], "items": []}


def add(fr, key, value, line, r=-1):
    """A line of the frame that is also the formula of one drawn element."""
    fr["lines"].append(line)
    fr["items"].append(_item(key, value, line, r))
