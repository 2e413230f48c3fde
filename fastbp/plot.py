"""Figures for fastbp: loss curves, learning-rate sweeps, 2-D results, benchmarks.

Every function draws one figure, saves it as a PNG at ``path`` (parent
folders are created), and returns the path as a ``str``.

The figures are built on ``matplotlib.figure.Figure`` with the Agg canvas,
never through ``pyplot``: no global figure is created (nothing is left open),
and the user's interactive backend is never switched. matplotlib is imported
inside the functions, so ``import fastbp`` does not pay for it.

Every function takes two optional keywords: ``figsize`` (inches, width and
height) and ``dpi`` (default 100); the PNG is ``figsize * dpi`` pixels.
"""
import math
import numbers
import os
from pathlib import Path

import numpy as np

from . import _sweep_plot
from ._plot_base import DPI, _check_figure_args, _lr_label, _new_figure, _use_log

__all__ = [
    "plot_loss",
    "plot_lr_sweep",
    "plot_lr_comparison",
    "plot_result",
    "plot_benchmark",
    "plot_sweep_curves",
    "plot_sweep_metric",
]

CLASS_COLORS = ("tab:red", "tab:blue")             # class 0, class 1
REGION_COLORS = ("#f8d0d0", "#d0dcf8")             # light red, light blue


# --------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------- #
def _save(fig, path):
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(p, format="png", dpi=fig.dpi)
    finally:
        fig.clear()
    return os.fspath(p)


def _losses(values, name):
    """A 1-D float array of per-epoch losses (from a History or a sequence)."""
    if hasattr(values, "loss") and not isinstance(values, np.ndarray):
        values = values.loss
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a sequence of numbers") from None
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(
            f"{name} must be a non-empty 1-D sequence of per-epoch losses, "
            f"got shape {arr.shape}"
        )
    return arr


def _sorted_curves(curves, name):
    if not isinstance(curves, dict) or not curves:
        raise ValueError(f"{name} must be a non-empty dict {{lr: losses}}")
    items = []
    for lr, losses in curves.items():
        if isinstance(lr, bool) or not isinstance(lr, numbers.Real):
            raise ValueError(f"{name}: learning rate keys must be numbers, got {lr!r}")
        items.append((float(lr), _losses(losses, f"{name}[{lr!r}]")))
    items.sort(key=lambda item: item[0])
    return items


def _draw_lr_curves(ax, items, cmap_name="viridis"):
    """One line per learning rate, coloured in lr order along a colormap."""
    from matplotlib import colormaps

    cmap = colormaps[cmap_name]
    k = len(items)
    for j, (lr, losses) in enumerate(items):
        # stop at 0.8 of viridis: its light end is hard to see on white
        color = cmap(0.8 * j / (k - 1)) if k > 1 else cmap(0.0)
        ax.plot(np.arange(1, losses.size + 1), losses, color=color,
                lw=1.4, label=_lr_label(lr))
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.grid(True, which="major", alpha=0.3)


# --------------------------------------------------------------------------- #
# loss curves
# --------------------------------------------------------------------------- #
def plot_loss(history_or_losses, path, title=None, logy=True, label=None,
              *, figsize=None, dpi=DPI):
    """One loss curve: per-epoch loss against epoch (1, 2, ...).

    Parameters
    ----------
    history_or_losses : History (anything with a ``.loss`` list) or sequence
    path : str or os.PathLike
        Where the PNG goes.
    title : str, optional
    logy : bool
        Log-scaled loss axis (falls back to linear when a loss is <= 0).
    label : str, optional
        Legend entry for the curve; no legend without it.
    """
    figsize, dpi = _check_figure_args(figsize, dpi, (6.4, 4.2))
    losses = _losses(history_or_losses, "history_or_losses")
    fig = _new_figure(figsize, dpi)
    ax = fig.add_subplot()
    ax.plot(np.arange(1, losses.size + 1), losses, color="tab:blue", lw=1.4,
            label=label)
    _use_log(ax, [losses], logy)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.grid(True, which="major", alpha=0.3)
    if label is not None:
        ax.legend()
    if title:
        ax.set_title(title)
    return _save(fig, path)


def plot_lr_sweep(curves, path, title=None, logy=True, *, figsize=None, dpi=DPI):
    """Loss curves of several learning rates on one plot.

    Parameters
    ----------
    curves : dict {lr: sequence of per-epoch losses}
        Drawn in increasing lr order, coloured along viridis (dark = small
        lr), legend ``lr=0.1`` etc. Curves may differ in length.
    """
    figsize, dpi = _check_figure_args(figsize, dpi, (7.2, 4.6))
    items = _sorted_curves(curves, "curves")
    fig = _new_figure(figsize, dpi)
    ax = fig.add_subplot()
    _draw_lr_curves(ax, items)
    _use_log(ax, [c for _, c in items], logy)
    ncol = 2 if len(items) > 6 else 1
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), ncol=ncol,
              fontsize="small", frameon=False)
    if title:
        ax.set_title(title)
    return _save(fig, path)


def plot_lr_comparison(results, path, title=None, logy=True, *, figsize=None,
                       dpi=DPI):
    """Learning rates compared on several data sets, one panel per data set.

    Parameters
    ----------
    results : dict {data set name: {lr: sequence of per-epoch losses}}
        One subplot per data set (in dict order), one curve per lr.
    """
    if not isinstance(results, dict) or not results:
        raise ValueError("results must be a non-empty dict {name: {lr: losses}}")
    panels = [(str(name), _sorted_curves(curves, f"results[{name!r}]"))
              for name, curves in results.items()]
    figsize, dpi = _check_figure_args(figsize, dpi, (4.6 * len(panels) + 0.4, 4.0))
    fig = _new_figure(figsize, dpi)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (name, items) in zip(axes, panels):
        _draw_lr_curves(ax, items)
        _use_log(ax, [c for _, c in items], logy)
        ax.set_title(name)
        ax.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


# --------------------------------------------------------------------------- #
# 2-D classification result
# --------------------------------------------------------------------------- #
def _labels01(values, n, name):
    arr = np.asarray(values)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},) or ({n}, 1), got {arr.shape}")
    if not np.all((arr == 0) | (arr == 1)):
        raise ValueError(
            f"{name} must hold class labels 0 and 1 (threshold probabilities "
            f"first, e.g. (p >= 0.5))"
        )
    return arr.astype(np.int64)


def plot_result(X, y_true, y_pred, path, predict_fn=None, title=None, *,
                figsize=None, dpi=DPI, grid_size=200):
    """Ground truth beside the prediction, for 2-D points with labels 0/1.

    Two scatter plots side by side, "Ground truth" and "Predict result";
    class 0 in red, class 1 in blue, equal aspect, the same limits on both.

    Parameters
    ----------
    X : array (n, 2)
    y_true, y_pred : array (n,) or (n, 1) of 0/1
        Predictions must already be thresholded.
    predict_fn : callable, optional
        Maps an (m, 2) array to (m,) or (m, 1) probabilities of class 1.
        When given, the "Predict result" panel is shaded by the predicted
        class (light red / light blue) on a ``grid_size`` x ``grid_size``
        grid spanning the data +- 0.1, with the 0.5 contour drawn in black.
    """
    figsize, dpi = _check_figure_args(figsize, dpi, (9.0, 4.6))
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != 2 or X.shape[0] == 0:
        raise ValueError(f"X must be a non-empty (n, 2) array of 2-D points, got shape {X.shape}")
    n = X.shape[0]
    t = _labels01(y_true, n, "y_true")
    p = _labels01(y_pred, n, "y_pred")
    if predict_fn is not None and not callable(predict_fn):
        raise ValueError("predict_fn must be callable or None")
    grid_size = int(grid_size)
    if grid_size < 2:
        raise ValueError(f"grid_size must be >= 2, got {grid_size}")

    lo = X.min(axis=0) - 0.1
    hi = X.max(axis=0) + 0.1

    fig = _new_figure(figsize, dpi)
    ax_true, ax_pred = fig.subplots(1, 2, sharex=True, sharey=True)

    if predict_fn is not None:
        from matplotlib.colors import ListedColormap

        gx = np.linspace(lo[0], hi[0], grid_size)
        gy = np.linspace(lo[1], hi[1], grid_size)
        xx, yy = np.meshgrid(gx, gy)
        grid = np.column_stack([xx.ravel(), yy.ravel()])
        z = np.asarray(predict_fn(grid), dtype=np.float64)
        if z.size != grid.shape[0]:
            raise ValueError(
                f"predict_fn returned {z.size} values for {grid.shape[0]} points; "
                "expected (m,) or (m, 1)"
            )
        zz = z.reshape(xx.shape)
        finite = zz[np.isfinite(zz)]
        zmin = min(0.0, finite.min()) if finite.size else 0.0
        zmax = max(1.0, finite.max()) if finite.size else 1.0
        ax_pred.contourf(xx, yy, zz, levels=[zmin - 1.0, 0.5, zmax + 1.0],
                         cmap=ListedColormap(list(REGION_COLORS)), zorder=0)
        if finite.size and finite.min() < 0.5 < finite.max():
            ax_pred.contour(xx, yy, zz, levels=[0.5], colors="k",
                            linewidths=1.0, zorder=1)

    for ax, labels, name in ((ax_true, t, "Ground truth"),
                             (ax_pred, p, "Predict result")):
        for c in (0, 1):
            mask = labels == c
            ax.scatter(X[mask, 0], X[mask, 1], s=18, c=CLASS_COLORS[c],
                       edgecolors="white", linewidths=0.4, zorder=2,
                       label=f"class {c}")
        ax.set_title(name)
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
        ax.set_aspect("equal")
        ax.set_xlabel("x0")
    ax_true.set_ylabel("x1")
    ax_pred.tick_params(labelleft=True)
    wrong = int(np.count_nonzero(t != p))
    ax_pred.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False,
                   title=f"{n - wrong}/{n} correct", fontsize="small",
                   title_fontsize="small")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


# --------------------------------------------------------------------------- #
# benchmark bars
# --------------------------------------------------------------------------- #
def _fmt_time(t):
    if t >= 1.0:
        return f"{t:.3g} s"
    if t >= 1e-3:
        return f"{t * 1e3:.3g} ms"
    if t >= 1e-6:
        return f"{t * 1e6:.3g} \u00b5s"
    return f"{t * 1e9:.3g} ns"


def plot_benchmark(rows, path, title=None, *, figsize=None, dpi=DPI,
                   baseline="fastbp"):
    """Grouped horizontal bars: time per workload per implementation, log axis.

    Parameters
    ----------
    rows : list of dicts {"workload": str, "impl": str, "time_s": float}
        At most one row per (workload, impl); times must be positive.
        Workloads are drawn top to bottom in order of first appearance;
        within a workload ``baseline`` comes first, then the other
        implementations in order of first appearance.
    baseline : str
        Each bar is annotated with its time and its ratio to the
        ``baseline`` row of its workload ("12x" = 12 times slower than
        fastbp); a workload without a baseline row gets times only.
    """
    if not isinstance(rows, (list, tuple)) or not rows:
        raise ValueError("rows must be a non-empty list of dicts")
    table, workloads, impls = {}, [], []
    for i, row in enumerate(rows):
        try:
            w, m, t = row["workload"], row["impl"], row["time_s"]
        except (KeyError, TypeError):
            raise ValueError(
                f"rows[{i}] must be a dict with keys 'workload', 'impl', 'time_s'"
            ) from None
        w, m = str(w), str(m)
        if isinstance(t, bool) or not isinstance(t, numbers.Real) \
                or not math.isfinite(t) or t <= 0:
            raise ValueError(f"rows[{i}]['time_s'] must be a positive number, got {t!r}")
        if (w, m) in table:
            raise ValueError(f"rows[{i}]: duplicate row for workload {w!r}, impl {m!r}")
        table[(w, m)] = float(t)
        if w not in workloads:
            workloads.append(w)
        if m not in impls:
            impls.append(m)
    if baseline in impls:
        impls.remove(baseline)
        impls.insert(0, baseline)

    from matplotlib import colormaps

    colors = colormaps["tab10"]
    n_w, n_i = len(workloads), len(impls)
    bar_h = 0.8 / n_i
    height = 1.4 + 0.32 * n_w * n_i + 0.25 * n_w
    figsize, dpi = _check_figure_args(figsize, dpi, (8.0, max(3.0, height)))
    fig = _new_figure(figsize, dpi)
    ax = fig.add_subplot()

    times = np.array(list(table.values()))
    for j, impl in enumerate(impls):
        ys, ws, notes = [], [], []
        for k, w in enumerate(workloads):
            if (w, impl) not in table:
                continue
            t = table[(w, impl)]
            ys.append(k - 0.4 + bar_h * (j + 0.5))
            ws.append(t)
            base = table.get((w, baseline))
            note = _fmt_time(t)
            if base is not None:
                note += f"  ({t / base:.3g}\u00d7)"
            notes.append(note)
        bars = ax.barh(ys, ws, height=bar_h * 0.9, color=colors(j % 10),
                       label=impl)
        ax.bar_label(bars, labels=notes, padding=3, fontsize="x-small")
    ax.set_xscale("log")
    # room on the right for the annotations (log axis: multiply)
    ax.set_xlim(times.min() / 2.0, times.max() * 12.0)
    ax.set_yticks(np.arange(n_w), workloads)
    ax.invert_yaxis()
    ax.set_xlabel("time (s, log scale)")
    ax.grid(True, axis="x", which="major", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small",
              frameon=False)
    if title:
        ax.set_title(title)
    return _save(fig, path)


# --------------------------------------------------------------------------- #
# sweeps (drawn in fastbp._sweep_plot)
# --------------------------------------------------------------------------- #
def plot_sweep_curves(records, path, by="lr", title=None, logy=True, *, figsize=None,
                      dpi=DPI):
    """The loss curves of a sweep's runs, one colour per value of one parameter.

    Parameters
    ----------
    records : list of sweep records
        What :func:`fastbp.sweep` returns (or :func:`fastbp.sweep.load_results`
        reads): dicts with ``params`` and a per-epoch ``loss``.
    by : str
        The grid parameter that picks the colour: numbers in increasing order
        along viridis (dark = small), other values in tab10. Runs that share
        its value (seeds, other axes) share the colour and one legend entry.
        With one run per learning rate this is :func:`plot_lr_sweep`'s figure
        (seed 000's learning-rate sweep is ``plot_sweep_curves(records, path)``).
    logy : bool
        Log-scaled loss axis (linear when a loss is <= 0).

    A run that diverged is drawn until its loss passes 1e6 times the largest
    first-epoch loss (or stops being finite) and ends there with an x.
    """
    figsize, dpi = _check_figure_args(figsize, dpi, (7.2, 4.6))
    return _save(_sweep_plot.curves_figure(records, by, title, logy, figsize, dpi), path)


def plot_sweep_metric(records, path, param="lr", metric="final_loss", title=None,
                      logx=None, logy=True, *, figsize=None, dpi=DPI):
    """A final metric against one parameter, with the spread over seeds.

    Each run is a dot; the line joins the mean over the runs that share a
    value of ``param`` and the error bar is their standard deviation. Runs
    that differ in another grid parameter (not ``seed``) get a line of their
    own. Failed runs are left out (the legend counts them).

    Parameters
    ----------
    records : list of sweep records
    param : str
        The grid parameter on the x axis (numbers on a numeric axis, log-scaled
        when ``logx`` or, by default, when they span more than a factor of 10;
        other values one tick each).
    metric : str
        A record field: "final_loss", "final_accuracy", "final_val_loss", ...
    """
    figsize, dpi = _check_figure_args(figsize, dpi, (6.8, 4.4))
    return _save(_sweep_plot.metric_figure(records, param, metric, title, logx, logy,
                                           figsize, dpi), path)
