"""What every figure of :mod:`fastbp.plot` is built with: the Agg figure, the checked
size arguments, the log axis and the learning-rate label."""
import math
import numbers

import numpy as np

DPI = 100


def _new_figure(figsize, dpi):
    """A Figure attached to an Agg canvas (no pyplot, no backend switch)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _check_figure_args(figsize, dpi, default):
    if figsize is None:
        figsize = default
    figsize = tuple(float(v) for v in figsize)
    if len(figsize) != 2 or not all(math.isfinite(v) and v > 0 for v in figsize):
        raise ValueError(f"figsize must be two positive numbers, got {figsize!r}")
    if isinstance(dpi, bool) or not isinstance(dpi, numbers.Real) or not dpi > 0:
        raise ValueError(f"dpi must be a positive number, got {dpi!r}")
    return figsize, dpi


def _use_log(ax, arrays, logy):
    """Log y-axis when asked and every finite loss is positive."""
    if not logy:
        return
    finite = np.concatenate([a[np.isfinite(a)] for a in arrays])
    if finite.size and finite.min() > 0:
        # explicit limits first: autoscaling a log axis overflows near the float64
        # maximum (a diverged run); such values are drawn off the top of the axis
        ax.set_ylim(finite.min() / 1.25, min(finite.max() * 1.25, 1e100))
        ax.set_yscale("log")


def _lr_label(lr):
    text = f"{lr:g}"
    if not any(ch in text for ch in ".einf"):
        text += ".0"                      # "lr=1.0" beside "lr=0.9", not "lr=1"
    return f"lr={text}"
