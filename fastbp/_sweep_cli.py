"""``fastbp sweep``: the command over :func:`fastbp.sweep`.

    fastbp sweep --data xor --grid lr=0.05,0.1,0.2 --grid seed=0,1,2 --sizes 2,4,4,1 \\
                 --epochs 2000 --batch-size 1 --out results.jsonl --plot sweep.png

Each ``--grid NAME=V1,V2,...`` adds one axis; the runs are the product of the
axes. ``--lrs 0.1,0.5`` is ``--grid lr=0.1,0.5``; with neither, the learning
rates are 0.1, 0.2, ..., 1.0 (seed 000's sweep). The other options fix a
setting for every run (a grid axis wins over them).
"""
import argparse
import os
import re
import sys
import time

from . import _cli_common as C
from .demo import SWEEP_LRS
from .sweep import SweepError, SweepInterrupted, format_summary, summarize, sweep
from ._sweep_report import default_metric
from ._sweep_run import PARAMS, DataSource, coerce

# Defaults by data set (each option overrides its own): the 2-D sets train seed
# 000's 2-4-1 sigmoid network full-batch for 1,000 epochs; the image sets the
# 128-64 ReLU classifier for 30 epochs. Full batch unless --batch-size says otherwise.
SWEEP_PRESETS = {
    "toy": dict(hidden=[4], activation="sigmoid", loss="mse", init="uniform", epochs=1000,
                optimizer="sgd", momentum=0.0, shuffle=False, batchnorm=False, dropout=0.0),
    "images": dict(hidden=[128, 64], activation="relu", loss="cross_entropy", init=None,
                   epochs=30, optimizer="sgd", momentum=0.0, shuffle=False, batchnorm=False,
                   dropout=0.0),
}
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def parse_value(name, text):
    """One grid value of parameter ``name`` from its text."""
    kind, _, nullable = PARAMS[name]
    low = text.strip().lower()
    if nullable and low in ("none", "full", "auto", "off"):
        return None
    try:
        if kind == "bool":
            if low not in _TRUE + _FALSE:
                raise ValueError(f"{name}={text!r}: expected true or false")
            value = low in _TRUE
        elif kind == "int":
            value = int(low)
        elif kind == "float":
            value = float(low)
        elif kind == "ints":
            value = [int(p) for p in re.split(r"[-x]", low)]
        elif kind == "pair":
            value = [float(p) for p in low.split(":")]
        else:
            value = low
        return coerce(name, value)
    except ValueError as exc:
        msg = str(exc)
        if not msg.startswith(name):
            msg = f"{name}={text!r}: not {'an integer' if kind == 'int' else 'a number'}" \
                if kind in ("int", "float") else f"{name}={text!r}: {msg}"
        raise argparse.ArgumentTypeError(msg) from None


def grid_axis(text):
    """``"lr=0.05,0.1"`` -> ("lr", [0.05, 0.1])."""
    name, sep, values = str(text).partition("=")
    name = name.strip().replace("-", "_")
    if not sep or not name or not values.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=V1,V2,... such as lr=0.05,0.1,0.2; "
                                         f"got {text!r}")
    if name not in PARAMS:
        raise argparse.ArgumentTypeError(f"unknown parameter {name!r}; expected one of "
                                         f"{', '.join(PARAMS)}")
    return name, [parse_value(name, v) for v in values.split(",")]


def learning_rates(text):
    """``"0.1,0.5,1"`` -> [0.1, 0.5, 1.0]: positive numbers."""
    return grid_axis(f"lr={text}")[1]


def add_parser(sub):
    """The ``sweep`` subcommand, on the ``fastbp`` parser's subparsers."""
    p = sub.add_parser(
        "sweep", help="train one network per point of a grid of settings, locally or on a "
                      "Dask cluster",
        description="Train one network per point of a grid of model and fit settings (the "
                    "product of the --grid axes), in parallel: a local process pool by "
                    "default, or a Dask cluster with --scheduler. With --out, every finished "
                    "run is appended to a JSON-lines file and the same command run again "
                    "skips the runs already there. Prints one line per run and a summary "
                    "(best configurations, mean +- std over seeds) and plots the loss "
                    "curves. Defaults: seed 000's sweep, a 2-4-1 sigmoid network with squared "
                    "error, weights uniform in [0, 1), on the linear data, trained full-batch "
                    "for 1,000 epochs per lr, lr 0.1, 0.2, ..., 1.0.",
        epilog="Example: fastbp sweep --data xor --grid lr=0.05,0.1,0.2 --grid seed=0,1,2 "
               "--sizes 2,4,4,1 --epochs 2000 --batch-size 1 --out results.jsonl")
    C.data_options(p)
    p.set_defaults(data="linear")
    C.model_options(p, "layer sizes (default: 2,4,1 for xor/linear, 64,128,64,10 for "
                          "digits, 3072,128,64,10 for cifar10)")
    C.training_options(p, "epochs per run (default: 1000 for xor/linear, 30 for "
                             "digits/cifar10)",
                          "samples per update (default: the whole training set: full-batch "
                          "gradient descent)", lr=False)
    g = p.add_argument_group("sweep")
    g.add_argument("--grid", type=grid_axis, action="append", default=[],
                   metavar="NAME=V1,V2,...",
                   help="one axis of the grid (repeat for more): a model or fit setting and "
                        "its values, e.g. lr=0.05,0.1 seed=0,1,2 batch-size=1,32,full "
                        "hidden=4,8,4x4 activation=sigmoid,tanh optimizer=sgd,adam. "
                        f"Settings: {', '.join(PARAMS)}")
    g.add_argument("--lrs", type=learning_rates, metavar="LR,LR,...",
                   help="the same as --grid lr=LR,LR,... (default, without a lr axis: "
                        "0.1,0.2,...,1.0)")
    g.add_argument("--out", metavar="FILE",
                   help="JSON-lines results file: each finished run is appended as one line; "
                        "running the same command again skips the runs already in it")
    g.add_argument("--retry-failed", action="store_true",
                   help="run again the failed runs found in --out")
    g.add_argument("--scheduler", metavar="ADDRESS",
                   help="run on the Dask cluster whose scheduler is at ADDRESS (e.g. "
                        "tcp://10.0.0.1:8786; needs pip install 'fastbp[dask]')")
    g.add_argument("--workers", type=C.nonneg_int, metavar="N",
                   help="local worker processes (default: one per core; 0: in this process)")
    o = p.add_argument_group("output")
    o.add_argument("--plot", metavar="PATH", default=os.path.join("fastbp-out", "sweep.png"),
                   help="the loss curves, coloured by --by (default: %(default)s)")
    o.add_argument("--plot-final", metavar="PATH",
                   help="also plot the final loss (the validation loss for digits/cifar10) "
                        "against --by, with the spread over seeds")
    o.add_argument("--by", metavar="NAME",
                   help="the grid axis the plots group by (default: the first axis that is "
                        "not seed)")
    o.add_argument("--top", type=C.positive_int, default=10, metavar="N",
                   help="configurations in the summary table (default: %(default)s)")
    p.set_defaults(func=run)
    return p


def _axes(args):
    axes = {}
    for name, values in args.grid:
        if name in axes:
            raise C.CLIError(f"--grid {name}=... is given twice; put all its values in one")
        axes[name] = values
    if args.lrs:
        if "lr" in axes:
            raise C.CLIError("--lrs and --grid lr=... both give the learning rates; use one")
        axes["lr"] = args.lrs
    axes.setdefault("lr", list(SWEEP_LRS))
    if args.sizes and {"sizes", "hidden"} & set(axes):
        raise C.CLIError("--sizes fixes the layers; drop it to sweep over sizes or hidden")
    if args.by is not None and args.by.replace("-", "_") not in axes:
        raise C.CLIError(f"--by {args.by!r} is not a grid axis; the axes are "
                           f"{', '.join(axes)}")
    return axes


def _settings(args, s, axes):
    """The fixed settings: the command line over the data set's defaults."""
    fixed = dict(activation=s["activation"], loss=s["loss"], reduction=s["reduction"] or "mean",
                 init=s["init"], batchnorm=s["batchnorm"], dropout=s["dropout"],
                 dtype=args.dtype, backend=args.backend, seed=args.seed, epochs=s["epochs"],
                 batch_size=args.batch_size, optimizer=s["optimizer"], momentum=s["momentum"],
                 shuffle=s["shuffle"], lr_decay=s["lr_decay"])
    if args.output_activation is not None:
        fixed["output_activation"] = args.output_activation
    if args.sizes:
        fixed["sizes"] = args.sizes
    elif "sizes" not in axes:
        fixed["hidden"] = s["sizes"][1:-1]
    return {k: v for k, v in fixed.items() if k not in axes}


def _source(args, data):
    options = {"n": args.n, "data_seed": args.data_seed, "max_records": args.max_records}
    source = DataSource(args.cifar_path if args.data == "cifar10" else args.data, options,
                        dtype=args.dtype)
    source.remember(data.X, data.labels, data.X_test, data.labels_test)
    return source


def run(args):
    """Run ``fastbp sweep``; the exit status."""
    plot_path = C.output_path(args.plot, "--plot")
    final_path = C.output_path(args.plot_final, "--plot-final")
    out_path = C.output_path(args.out, "--out")
    axes = _axes(args)
    data = C.load_data(args)
    s = C.resolve(args, data, SWEEP_PRESETS)
    n = data.X.shape[0]
    batch = min(args.batch_size or n, n)
    C.check_batch(s, n, batch)
    model, train = C.describe(s, batch, epochs_word="", lr_text="lr per run")
    print(f"data:     {data.name} ({data.note})")
    print(f"model:    {model}; {args.backend} backend, {args.dtype}, seed {args.seed}")
    print(f"training: {train}" + (" (full batch)" if batch == n else "")
          + "; the grid overrides these", flush=True)
    t0 = time.perf_counter()
    try:
        records = sweep(axes, data=_source(args, data), out=out_path, scheduler=args.scheduler,
                        workers=args.workers, retry_failed=args.retry_failed,
                        log=lambda line: print(line, flush=True), **_settings(args, s, axes))
    except SweepInterrupted as exc:
        sys.stdout.flush()
        print(f"fastbp: {exc}", file=sys.stderr)
        return C.EXIT_INTERRUPTED
    except ImportError as exc:          # --scheduler without dask.distributed installed
        raise C.CLIError(str(exc)) from None
    except SweepError as exc:
        sys.stdout.flush()
        print(f"fastbp: error: {exc}", file=sys.stderr)
        return C.EXIT_FAILED
    print(format_summary(summarize(records), top=args.top))
    by = args.by.replace("-", "_") if args.by else next((a for a in axes if a != "seed"), "seed")
    from . import plot as fbplot
    title = (f"{data.name}: {'-'.join(map(str, s['sizes']))} {s['activation']}, "
             f"{'full batch' if batch == n else f'batch {batch}'}, {s['epochs']:,} epochs")
    figures = [fbplot.plot_sweep_curves(records, plot_path, by=by, title=title)]
    if final_path is not None:
        figures.append(fbplot.plot_sweep_metric(records, final_path, param=by, title=title,
                                                metric=default_metric(records)))
    print(f"time:       {C.fmt_time(time.perf_counter() - t0)}")
    for f in figures:
        print(f"wrote plot: {f}")
    return C.EXIT_OK
