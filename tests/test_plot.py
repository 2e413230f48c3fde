"""Tests for fastbp.plot: every figure is a real PNG of the promised size."""
import os
import subprocess
import sys

import numpy as np
import pytest

from fastbp import plot
from fastbp.datasets import generate_linear, generate_xor_easy

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _check_png(path, width, height):
    import matplotlib.image as mpimg

    assert os.path.isfile(path)
    assert os.path.getsize(path) > 1000
    with open(path, "rb") as fh:
        assert fh.read(8) == PNG_SIGNATURE
    img = mpimg.imread(path)
    assert img.shape[:2] == (height, width)
    # not a blank canvas: something was drawn in more than one colour
    rgb = np.round(img[..., :3] * 255).astype(np.uint32)
    packed = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    assert np.unique(packed).size > 10


class _History:
    def __init__(self, loss):
        self.loss = list(loss)


def _losses(rng, epochs, rate):
    e = np.arange(epochs)
    return 0.25 * np.exp(-rate * e) + 1e-3 * rng.random(epochs) + 1e-4


# --------------------------------------------------------------------------- #
# loss curves
# --------------------------------------------------------------------------- #
def test_plot_loss_from_sequence(tmp_path):
    rng = np.random.default_rng(0)
    out = plot.plot_loss(_losses(rng, 300, 0.02).tolist(), tmp_path / "loss.png",
                         title="loss", label="train")
    assert out == str(tmp_path / "loss.png")
    _check_png(out, 640, 420)


def test_plot_loss_from_history_creates_parents(tmp_path):
    rng = np.random.default_rng(1)
    target = tmp_path / "a" / "b" / "loss.png"
    out = plot.plot_loss(_History(_losses(rng, 50, 0.1)), target, logy=False,
                         figsize=(4, 3), dpi=50)
    _check_png(out, 200, 150)


def test_plot_loss_zero_loss_falls_back_to_linear(tmp_path):
    out = plot.plot_loss([0.5, 0.1, 0.0, 0.0], tmp_path / "zero.png")
    _check_png(out, 640, 420)


@pytest.mark.parametrize("bad", [[], [[1.0, 2.0]], "abc", None])
def test_plot_loss_rejects_bad_losses(tmp_path, bad):
    with pytest.raises(ValueError):
        plot.plot_loss(bad, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_plot_lr_sweep(tmp_path):
    rng = np.random.default_rng(2)
    lrs = [round(0.1 * k, 1) for k in range(1, 11)]
    curves = {lr: _losses(rng, 1000, 0.004 * lr * 10) for lr in reversed(lrs)}
    out = plot.plot_lr_sweep(curves, tmp_path / "sweep.png", title="lr sweep")
    _check_png(out, 720, 460)


def test_plot_lr_sweep_labels_and_colour_order(monkeypatch, tmp_path):
    # capture the axes before the figure is cleared, to check what was drawn
    seen = {}
    real_save = plot._save

    def spy(fig, path):
        ax = fig.axes[0]
        seen["labels"] = [t.get_text() for t in ax.get_legend().get_texts()]
        seen["colors"] = [line.get_color() for line in ax.get_lines()]
        seen["yscale"] = ax.get_yscale()
        return real_save(fig, path)

    monkeypatch.setattr(plot, "_save", spy)
    rng = np.random.default_rng(3)
    curves = {1.0: _losses(rng, 20, 0.3), 0.1: _losses(rng, 20, 0.03),
              0.5: _losses(rng, 20, 0.1)}
    plot.plot_lr_sweep(curves, tmp_path / "s.png")
    assert seen["labels"] == ["lr=0.1", "lr=0.5", "lr=1.0"]
    assert len(set(map(str, seen["colors"]))) == 3
    assert seen["yscale"] == "log"


def test_plot_lr_sweep_rejects(tmp_path):
    with pytest.raises(ValueError):
        plot.plot_lr_sweep({}, tmp_path / "x.png")
    with pytest.raises(ValueError):
        plot.plot_lr_sweep({"fast": [1.0, 0.5]}, tmp_path / "x.png")


def test_plot_lr_comparison(tmp_path):
    rng = np.random.default_rng(4)
    results = {
        "linear": {0.1: _losses(rng, 2000, 0.003), 0.02: _losses(rng, 2500, 0.001)},
        "XOR": {0.1: _losses(rng, 1500, 0.003), 0.02: _losses(rng, 3500, 0.001)},
    }
    out = plot.plot_lr_comparison(results, tmp_path / "cmp.png", title="lr 0.1 vs 0.02")
    _check_png(out, 960, 400)


def test_plot_lr_comparison_one_panel_per_dataset(monkeypatch, tmp_path):
    seen = {}
    real_save = plot._save

    def spy(fig, path):
        seen["titles"] = [ax.get_title() for ax in fig.axes]
        seen["lines"] = [len(ax.get_lines()) for ax in fig.axes]
        return real_save(fig, path)

    monkeypatch.setattr(plot, "_save", spy)
    rng = np.random.default_rng(5)
    results = {"a": {0.1: _losses(rng, 10, 0.1)},
               "b": {0.1: _losses(rng, 10, 0.1), 0.2: _losses(rng, 10, 0.2)},
               "c": {0.3: _losses(rng, 10, 0.3)}}
    plot.plot_lr_comparison(results, tmp_path / "c.png")
    assert seen["titles"] == ["a", "b", "c"]
    assert seen["lines"] == [1, 2, 1]


# --------------------------------------------------------------------------- #
# 2-D result
# --------------------------------------------------------------------------- #
def test_plot_result_linear_with_regions(tmp_path):
    X, y = generate_linear(n=200, seed=0)

    def predict_fn(P):
        return 1.0 / (1.0 + np.exp(-8.0 * (P[:, 1] - P[:, 0])))[:, None]

    y_pred = (predict_fn(X) >= 0.5).astype(np.float64)
    out = plot.plot_result(X, y, y_pred, tmp_path / "lin.png", predict_fn=predict_fn,
                           title="linear")
    _check_png(out, 900, 460)


def test_plot_result_xor_flat_labels_no_regions(tmp_path):
    X, y = generate_xor_easy()
    out = plot.plot_result(X, y[:, 0], y[:, 0].astype(int), tmp_path / "xor.png")
    _check_png(out, 900, 460)


def test_plot_result_colours_and_titles(monkeypatch, tmp_path):
    seen = {}
    real_save = plot._save

    def spy(fig, path):
        seen["titles"] = [ax.get_title() for ax in fig.axes[:2]]
        seen["aspect"] = [ax.get_aspect() for ax in fig.axes[:2]]
        seen["faces"] = [[tuple(np.round(c.get_facecolor()[0][:3], 3))
                          for c in ax.collections if hasattr(c, "get_offsets")
                          and len(c.get_offsets())]
                         for ax in fig.axes[:2]]
        return real_save(fig, path)

    monkeypatch.setattr(plot, "_save", spy)
    X, y = generate_xor_easy()
    plot.plot_result(X, y, 1 - y, tmp_path / "r.png")
    from matplotlib.colors import to_rgb

    red, blue = (tuple(np.round(to_rgb(c), 3)) for c in plot.CLASS_COLORS)
    assert seen["titles"] == ["Ground truth", "Predict result"]
    assert seen["aspect"] == [1.0, 1.0]
    assert seen["faces"] == [[red, blue], [red, blue]]
    assert to_rgb(plot.CLASS_COLORS[0])[0] > 0.7 and to_rgb(plot.CLASS_COLORS[1])[2] > 0.6


def test_plot_result_region_shading(monkeypatch, tmp_path):
    from matplotlib.colors import to_rgb
    from matplotlib.contour import ContourSet

    seen = {}
    real_save = plot._save

    def spy(fig, path):
        ax_true, ax_pred = fig.axes[:2]
        seen["fills"] = [
            {tuple(np.round(c[:3], 3)) for c in coll.get_facecolor()}
            for coll in ax_pred.collections
            if isinstance(coll, ContourSet) and coll.filled
        ]
        seen["true_shaded"] = len(ax_true.collections)
        seen["limits"] = (ax_pred.get_xlim(), ax_pred.get_ylim())
        return real_save(fig, path)

    monkeypatch.setattr(plot, "_save", spy)
    X, y = generate_xor_easy()
    plot.plot_result(X, y, y, tmp_path / "r.png",
                     predict_fn=lambda P: (np.abs(P[:, 0] - 0.5)
                                           > np.abs(P[:, 1] - 0.5)).astype(float))
    light = {tuple(np.round(to_rgb(c), 3)) for c in plot.REGION_COLORS}
    assert len(light) == 2
    assert light in seen["fills"]              # both shades behind the prediction
    assert seen["true_shaded"] == 2            # ground truth: the two scatters only
    np.testing.assert_allclose(seen["limits"], [(-0.1, 1.1), (-0.1, 1.1)])


def test_plot_result_constant_predict_fn(tmp_path):
    # a network that says "class 1" everywhere: no 0.5 contour to draw, no warning
    X, y = generate_xor_easy()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = plot.plot_result(X, y, np.ones_like(y), tmp_path / "c.png",
                               predict_fn=lambda P: np.full(len(P), 0.9))
    _check_png(out, 900, 460)


@pytest.mark.parametrize("shape", [(10, 3), (10,), (2, 5, 2)])
def test_plot_result_rejects_non_2d_points(tmp_path, shape):
    rng = np.random.default_rng(6)
    X = rng.random(shape)
    y = np.zeros(10)
    with pytest.raises(ValueError, match="X"):
        plot.plot_result(X, y, y, tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


def test_plot_result_rejects_bad_labels(tmp_path):
    X, y = generate_linear(n=20, seed=1)
    with pytest.raises(ValueError, match="y_pred"):
        plot.plot_result(X, y, np.full(20, 0.7), tmp_path / "p.png")
    with pytest.raises(ValueError, match="y_true"):
        plot.plot_result(X, y[:10], y, tmp_path / "p.png")
    with pytest.raises(ValueError, match="predict_fn"):
        plot.plot_result(X, y, y, tmp_path / "p.png", predict_fn=lambda P: P[:5, 0])


# --------------------------------------------------------------------------- #
# benchmark bars
# --------------------------------------------------------------------------- #
def _bench_rows():
    rows = []
    for workload, base in [("online SGD 2-4-4-1", 0.8), ("digits mini-batch", 2e-3),
                           ("cifar one epoch", 14.0)]:
        for impl, ratio in [("numpy", 23.0), ("fastbp", 1.0), ("pytorch", 41.0)]:
            rows.append({"workload": workload, "impl": impl, "time_s": base * ratio})
    return rows


def test_plot_benchmark(tmp_path):
    out = plot.plot_benchmark(_bench_rows(), tmp_path / "bench.png", title="times",
                              figsize=(8, 5))
    _check_png(out, 800, 500)


def test_plot_benchmark_ratios_and_log_axis(monkeypatch, tmp_path):
    seen = {}
    real_save = plot._save

    def spy(fig, path):
        ax = fig.axes[0]
        seen["xscale"] = ax.get_xscale()
        seen["texts"] = [t.get_text() for t in ax.texts]
        seen["legend"] = [t.get_text() for t in ax.get_legend().get_texts()]
        return real_save(fig, path)

    monkeypatch.setattr(plot, "_save", spy)
    rows = _bench_rows() + [{"workload": "no baseline", "impl": "numpy", "time_s": 3e-7}]
    plot.plot_benchmark(rows, tmp_path / "b.png")
    assert seen["xscale"] == "log"
    assert seen["legend"] == ["fastbp", "numpy", "pytorch"]     # fastbp first
    texts = seen["texts"]
    assert len(texts) == 10
    assert sum("(1\u00d7)" in t for t in texts) == 3
    assert sum("(23\u00d7)" in t for t in texts) == 3
    assert sum("(41\u00d7)" in t for t in texts) == 3
    assert "2 ms  (1\u00d7)" in texts and "800 ms  (1\u00d7)" in texts
    assert "300 ns" in texts                     # no fastbp row: time only


@pytest.mark.parametrize("rows", [
    [],
    [{"workload": "w", "impl": "fastbp"}],
    [{"workload": "w", "impl": "fastbp", "time_s": 0.0}],
    [{"workload": "w", "impl": "fastbp", "time_s": float("nan")}],
    [{"workload": "w", "impl": "fastbp", "time_s": 1.0},
     {"workload": "w", "impl": "fastbp", "time_s": 2.0}],
])
def test_plot_benchmark_rejects(tmp_path, rows):
    with pytest.raises(ValueError):
        plot.plot_benchmark(rows, tmp_path / "x.png")


# --------------------------------------------------------------------------- #
# backend and import hygiene
# --------------------------------------------------------------------------- #
def test_plots_leave_backend_and_pyplot_alone(tmp_path):
    code = """
import sys
import fastbp.plot as plot
assert "matplotlib" not in sys.modules, "importing fastbp.plot loaded matplotlib"
import matplotlib
matplotlib.use("svg")
before = matplotlib.get_backend()
plot.plot_loss([1.0, 0.5, 0.25], sys.argv[1])
assert matplotlib.get_backend() == before, matplotlib.get_backend()
assert "matplotlib.pyplot" not in sys.modules, "pyplot was imported"
"""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("MPLBACKEND", None)
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "l.png")],
                   check=True, env=env, cwd=root)
    assert (tmp_path / "l.png").is_file()


def test_render_all_to_one_folder(tmp_path):
    # the set of figures the demo produces, side by side in one folder
    rng = np.random.default_rng(7)
    X, y = generate_xor_easy()
    paths = [
        plot.plot_loss(_losses(rng, 100, 0.05), tmp_path / "figs" / "loss.png"),
        plot.plot_lr_sweep({0.1: _losses(rng, 100, 0.01), 0.2: _losses(rng, 100, 0.02)},
                           tmp_path / "figs" / "sweep.png"),
        plot.plot_result(X, y, y, tmp_path / "figs" / "xor.png",
                         predict_fn=lambda P: (np.abs(P[:, 0] - 0.5)
                                               > np.abs(P[:, 1] - 0.5)).astype(float)),
    ]
    assert sorted(os.listdir(tmp_path / "figs")) == ["loss.png", "sweep.png", "xor.png"]
    for p in paths:
        with open(p, "rb") as fh:
            assert fh.read(8) == PNG_SIGNATURE


def test_log_axis_survives_a_diverged_curve(tmp_path):
    """Losses near the float64 maximum must not overflow the log axis (no warning)."""
    import warnings

    from fastbp import plot
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plot.plot_lr_sweep({0.1: [2, 1, 0.5], 1.0: [2, 1e150, 5e302]}, tmp_path / "s.png")
        plot.plot_loss([2, 1e150, 5e302], tmp_path / "l.png")
    assert (tmp_path / "s.png").stat().st_size > 0


def test_plot_is_reachable_from_the_package():
    import fastbp as fb
    assert callable(fb.plot.plot_loss)
