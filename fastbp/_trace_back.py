"""The backward frames of a traced step, one per layer, last layer first (see
:mod:`fastbp._trace_frames`): the chain rule with the numbers in it."""
from ._trace_notation import _tag, _too_big, _values_only, add, equation, num, order, sub, summary


def _summarise(fr, nm, limit, count, parts, arr=None, dx=None):
    fr["lines"] += [summary(label, a, nm, name, grad=True) for label, a, name in parts]
    fr["lines"].append(_too_big(count, limit))
    if arr is not None and dx is not None:
        _values_only(fr, nm, "g", arr, dx, grad=True)


def _no_dx(fr, nm, i):
    if nm.inp[i] == "x":
        fr["lines"].append("(no gradient for the input: x is data, not a weight)")


def dense(s, nm, limit, fr):
    """``dL/dW[k,j] = Σ_r x[k]·δ[j]``, ``dL/db[j] = Σ_r δ[j]``, ``dL/dx[k] = Σ_j W[k,j]·δ[j]``."""
    i, x, W, d, dW, db, dx = (s[k] for k in ("layer", "x", "W", "delta", "dW", "db", "dx"))
    (n, n_in), n_out = x.shape, W.shape[1]
    P, xin, zo, L = nm.params[i], nm.inp[i], nm.out[i], nm.L
    sr = "Σ_r " if n > 1 else ""
    fr["rule"] = (f"d{L}/dW[k,j] = {sr}x[k]·δ[j]" + (f";  d{L}/db[j] = {sr}δ[j]" if db is not None
                                                    else "")
                  + (f";  d{L}/dx[k] = Σ_j W[k,j]·δ[j]" if dx is not None else ""))
    if W.size > limit or n * max(n_in, n_out) > limit:
        parts = [(f"d{L}/d{P['W']}", dW, P["W"])]
        parts += [(f"d{L}/d{P['b']}", db, P["b"])] if db is not None else []
        parts += [(f"d{L}/d{xin}", dx, xin)] if dx is not None else []
        _summarise(fr, nm, limit, max(W.size, n * n_in), parts, xin, dx)
        _no_dx(fr, nm, i)
        return fr
    for k, j in order(W.shape):
        add(fr, f"g:{P['W']}:{k},{j}", dW[k, j], equation(
            nm.dparam(P["W"], k, j), sr + f"{nm.el(xin, k)}·{nm.grad(zo, j)}",
            " + ".join(f"{sub(x[r, k])}·{sub(d[r, j])}" for r in range(n)), num(dW[k, j])))
    if db is not None:
        for j in range(n_out):
            add(fr, f"g:{P['b']}:{j}", db[j], equation(
                nm.dparam(P["b"], j), sr + nm.grad(zo, j),
                " + ".join(sub(d[r, j]) for r in range(n)) if n > 1 else "", num(db[j])))
    if dx is None:
        _no_dx(fr, nm, i)
        return fr
    for r in range(n):
        for k in range(n_in):
            add(fr, f"g:{xin}:{k}", dx[r, k], equation(
                _tag(n, r) + nm.grad_long(xin, k),
                " + ".join(f"{nm.el(P['W'], k, j)}·{nm.grad(zo, j)}" for j in range(n_out)),
                " + ".join(f"{sub(W[k, j])}·{sub(d[r, j])}" for j in range(n_out)),
                num(dx[r, k])), r)
    return fr


_RULES = {"sigmoid": "·a·(1 - a)", "relu": "·[z > 0]", "tanh": "·(1 - a²)", "identity": ""}


def activation(s, nm, limit, fr):
    """``dL/dz = dL/da · a'(z)``, the slope read off the output a."""
    i, y, dy, local, dx, name = (s[k] for k in ("layer", "y", "dy", "local", "dx", "name"))
    zi, ao, L = nm.inp[i], nm.out[i], nm.L
    fr["rule"] = f"d{L}/dz = d{L}/da{_RULES[name]}"
    n, d = y.shape
    if n * d > limit:
        _summarise(fr, nm, limit, n * d, [(f"d{L}/d{zi}", dx, zi)], zi, dx)
        return fr
    for r in range(n):
        for j in range(d):
            g, a, z = nm.grad(ao, j), nm.el(ao, j), nm.el(zi, j)
            sym, val = {
                "sigmoid": (f"{g}·{a}·(1 - {a})",
                            f"{sub(dy[r, j])}·{sub(y[r, j])}·(1 - {sub(y[r, j])})"),
                "relu": (f"{g}·[{z} > 0]", f"{sub(dy[r, j])}·{num(local[r, j])}"),
                "tanh": (f"{g}·(1 - {a}²)", f"{sub(dy[r, j])}·(1 - {sub(y[r, j])}²)"),
                "identity": (g, sub(dy[r, j]))}[name]
            add(fr, f"g:{zi}:{j}", dx[r, j],
                equation(_tag(n, r) + nm.grad_long(zi, j), sym, val, num(dx[r, j])), r)
    return fr


def batchnorm(s, nm, limit, fr):
    """BatchNorm's gradients: γ and β from sums over the batch; x through the batch mean
    and variance as well as directly."""
    i, dy, xh, inv, gamma, dg, dbe, dx = (s[k] for k in ("layer", "dy", "xhat", "inv_std",
                                                         "gamma", "dgamma", "dbeta", "dx"))
    zi, bo, P, L = nm.inp[i], nm.out[i], nm.params[i], nm.L
    n, d = dy.shape
    fr["rule"] = (f"d{L}/dγ = Σ_r d{L}/dbn·x̂;  d{L}/dβ = Σ_r d{L}/dbn;  d{L}/dx = "
                  f"(γ/√(σ² + ε)/n)·(n·d{L}/dbn - d{L}/dβ - x̂·d{L}/dγ)")
    if n * d > limit:
        parts = [(f"d{L}/d{P['gamma']}", dg, P["gamma"]), (f"d{L}/d{P['beta']}", dbe, P["beta"])]
        parts += [(f"d{L}/d{zi}", dx, zi)] if dx is not None else []
        _summarise(fr, nm, limit, n * d, parts, zi, dx)
        return fr
    for j in range(d):
        add(fr, f"g:{P['gamma']}:{j}", dg[j], equation(
            nm.dparam(P["gamma"], j), f"Σ_r {nm.grad(bo, j)}·x̂",
            " + ".join(f"{sub(dy[r, j])}·{sub(xh[r, j])}" for r in range(n)), num(dg[j])))
        add(fr, f"g:{P['beta']}:{j}", dbe[j], equation(
            nm.dparam(P["beta"], j), f"Σ_r {nm.grad(bo, j)}",
            " + ".join(sub(dy[r, j]) for r in range(n)), num(dbe[j])))
        if dx is None:
            continue
        for r in range(n):
            add(fr, f"g:{zi}:{j}", dx[r, j], equation(
                _tag(n, r) + nm.grad_long(zi, j),
                f"({num(gamma[j])}·{num(inv[j])}/{n})·({n}·{sub(dy[r, j])} - {sub(dbe[j])} - "
                f"{sub(xh[r, j])}·{sub(dg[j])})", num(dx[r, j])), r)
    if dx is None:
        _no_dx(fr, nm, i)
    return fr


def dropout(s, nm, limit, fr):
    """``dL/da = dL/ddr · m``: the dropped units pass no gradient back."""
    i, dy, mask, dx = s["layer"], s["dy"], s["mask"], s["dx"]
    ai, do, L = nm.inp[i], nm.out[i], nm.L
    fr["rule"] = f"d{L}/da = d{L}/ddr·m   (the same mask as the forward pass)"
    n, d = dy.shape
    if n * d > limit:
        _summarise(fr, nm, limit, n * d, [(f"d{L}/d{ai}", dx, ai)], ai, dx)
        return fr
    for r in range(n):
        for j in range(d):
            add(fr, f"g:{ai}:{j}", dx[r, j], equation(
                _tag(n, r) + nm.grad_long(ai, j), f"{nm.grad(do, j)}·m[{j + 1}]",
                f"{sub(dy[r, j])}·{sub(mask[r, j])}", num(dx[r, j])), r)
    return fr
