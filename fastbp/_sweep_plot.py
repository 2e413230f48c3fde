"""The sweep figures of :mod:`fastbp.plot`: loss curves grouped by a parameter, and a
final metric against a parameter with the spread over seeds. Each function here draws
its figure and returns it; :func:`fastbp.plot.plot_sweep_curves` and
:func:`fastbp.plot.plot_sweep_metric` check the arguments and save it."""
import math
import numbers

import numpy as np

from ._plot_base import _lr_label, _new_figure, _use_log


def _sweep_value_label(name, value):
    if name == "lr" and isinstance(value, numbers.Real):
        return _lr_label(value)
    if isinstance(value, (list, tuple)):
        return f"{name}={'-'.join(str(v) for v in value)}"
    if isinstance(value, float):
        return f"{name}={value:g}"
    return f"{name}={value}"


def _sweep_groups(records, by, what):
    """``[(value, [records])]`` of the runs grouped by ``params[by]``: numbers in
    increasing order, other values in order of first appearance."""
    if isinstance(records, dict) or not isinstance(records, (list, tuple)) or not records:
        raise ValueError(f"{what} must be a non-empty list of sweep records")
    groups = {}
    for i, r in enumerate(records):
        if not isinstance(r, dict) or not isinstance(r.get("params"), dict):
            raise ValueError(f"{what}[{i}] is not a sweep record (a dict with 'params')")
        if by not in r["params"]:
            raise ValueError(f"{what}[{i}] has no parameter {by!r}; its grid parameters are "
                             f"{', '.join(r['params']) or 'none'}")
        value = r["params"][by]
        groups.setdefault(repr(value), (value, []))[1].append(r)
    items = list(groups.values())
    if all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v, _ in items):
        items.sort(key=lambda item: item[0])
    return items


def _group_colors(items):
    from matplotlib import colormaps

    k = len(items)
    numeric = all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v, _ in items)
    if numeric or k > 10:         # an order: along viridis, stopping at its light end
        cmap = colormaps["viridis"]
        return [cmap(0.8 * j / (k - 1)) if k > 1 else cmap(0.0) for j in range(k)]
    return [colormaps["tab10"](j) for j in range(k)]


def _curve(record):
    return np.array([np.nan if v is None else v for v in record.get("loss") or []],
                    dtype=np.float64)


def curves_figure(records, by, title, logy, figsize, dpi):
    """The figure of :func:`fastbp.plot.plot_sweep_curves` (``figsize`` and ``dpi`` checked)."""
    items = _sweep_groups(records, by, "records")
    curves = [(c, r) for _, rs in items for r in rs for c in [_curve(r)]]
    firsts = [abs(c[0]) for c, _ in curves if c.size and np.isfinite(c[0])]
    if not firsts:
        raise ValueError("records: no run has a finite loss to draw")
    cap = 1e6 * max(firsts)
    fig = _new_figure(figsize, dpi)
    ax = fig.add_subplot()
    drawn = []
    for (value, rs), color in zip(items, _group_colors(items)):
        label = _sweep_value_label(by, value)
        for r in rs:
            c = _curve(r)
            bad = np.flatnonzero(~(np.abs(c) <= cap))
            if bad.size:
                c = c[:bad[0] + 1]
                c[-1] = cap
            if not c.size:
                continue
            x = np.arange(1, c.size + 1)
            ax.plot(x, c, color=color, lw=1.4 if len(rs) == 1 else 1.0,
                    alpha=1.0 if len(rs) == 1 else 0.7, label=label)
            label = None
            if bad.size or r.get("status", "ok") != "ok":
                ax.plot(x[-1:], c[-1:], "x", color=color, ms=7)
            drawn.append(c)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.grid(True, which="major", alpha=0.3)
    _use_log(ax, drawn, logy)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), ncol=2 if len(items) > 6 else 1,
              fontsize="small", frameon=False)
    if title:
        ax.set_title(title)
    return fig


def metric_figure(records, param, metric, title, logx, logy, figsize, dpi):
    """The figure of :func:`fastbp.plot.plot_sweep_metric` (``figsize`` and ``dpi`` checked)."""
    items = _sweep_groups(records, param, "records")
    values = [v for v, _ in items]
    numeric = all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values)
    xs = {repr(v): (float(v) if numeric else float(j)) for j, v in enumerate(values)}
    series = {}
    for v, rs in items:
        for r in rs:
            other = {k: w for k, w in r["params"].items() if k not in (param, "seed")}
            name = ", ".join(_sweep_value_label(k, w) for k, w in other.items())
            series.setdefault(name, {}).setdefault(repr(v), []).append(r)
    fig = _new_figure(figsize, dpi)
    ax = fig.add_subplot()
    colors = _group_colors([(k, None) for k in series])
    shown = []
    for (name, by_value), color in zip(series.items(), colors):
        mx, my, sy, failed = [], [], [], 0
        for key, rs in by_value.items():
            ok = [r[metric] for r in rs if r.get("status", "ok") == "ok"
                  and isinstance(r.get(metric), numbers.Real) and math.isfinite(r[metric])]
            failed += len(rs) - len(ok)
            if ok:
                ax.plot([xs[key]] * len(ok), ok, "o", color=color, ms=3.5, alpha=0.5)
                mx.append(xs[key])
                my.append(float(np.mean(ok)))
                sy.append(float(np.std(ok, ddof=1)) if len(ok) > 1 else 0.0)
                shown.extend(ok)
        label = (name or "mean ± std over seeds") + (f" ({failed} failed)" if failed else "")
        order = np.argsort(mx)
        ax.errorbar(np.array(mx)[order], np.array(my)[order], yerr=np.array(sy)[order],
                    color=color, lw=1.4, capsize=3, marker="s", ms=4, label=label)
    if not shown:
        raise ValueError(f"records: no finished run has a finite {metric!r}")
    if numeric:
        span = [x for x in xs.values() if x > 0]
        if logx or (logx is None and len(span) == len(xs) and max(span) > 10 * min(span)):
            ax.set_xscale("log")
    else:
        ax.set_xticks(list(xs.values()), [_sweep_value_label(param, v).split("=", 1)[1]
                                          for v in values])
    _use_log(ax, [np.array(shown)], logy)
    ax.set_xlabel(param)
    ax.set_ylabel(metric)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return fig
