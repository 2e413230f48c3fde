"""The ``fastbp`` command: train, compare backends, sweep learning rates, run the demo.

    fastbp train   --data xor --plot out/loss.png --save out/xor.npz
    fastbp compare --data xor --epochs 200
    fastbp sweep   --data linear --lrs 0.1,0.5,1.0
    fastbp demo    --out fastbp-out
    fastbp warmup  --dtype float32

``python -m fastbp`` is the same command. Every bad argument or input ends
the command with one line on stderr, ``fastbp: error: ...``, and exit status
2; nothing is written then (plots and saved models are written only after
training succeeds). Ctrl-C during training stops after the current step:
``train`` then saves the model if ``--save`` was given and exits with 130;
SIGTERM does the same and exits with 143 (see :mod:`fastbp._signals`).
Training that diverges (the loss becomes NaN or infinite) exits with 1.
"""
import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from . import _cache, _signals, _warmup, datasets
from ._version import __version__
from .demo import DEFAULT_SEED
from .layers import ACTIVATION_LAYERS, INITS
from .losses import MSE
from .model import MLP, TrainingDivergedError
from .optim import ExponentialLR

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

DATASETS = ("xor", "linear", "digits", "cifar10")
TOY = ("xor", "linear")

# Settings that depend on the data set; a command-line option overrides each.
# The 2-D sets train the seed-001 network: [2, 4, 4, 1] sigmoid, weights
# uniform in [0, 1), per-sample SGD at lr 0.1 without shuffling, until every
# point is classified. The image sets train the seed-003 classifier.
PRESETS = {
    "toy": dict(hidden=[4, 4], activation="sigmoid", loss="mse", init="uniform", lr=0.1,
                epochs=100_000, batch_size=1, optimizer="sgd", momentum=0.0, lr_decay=None,
                shuffle=False, stop_at_accuracy=1.0, batchnorm=False, dropout=0.0,
                compare_epochs={"xor": 200, "linear": 5}),
    "images": dict(hidden=[128, 64], activation="relu", loss="cross_entropy", init=None,
                   lr=0.05, epochs=30, batch_size=32, optimizer="sgd", momentum=0.9,
                   lr_decay=0.93, shuffle=True, stop_at_accuracy=None, batchnorm=True,
                   dropout=0.1, compare_epochs={"digits": 2, "cifar10": 1}),
}

class CLIError(Exception):
    """A bad argument or input: reported as one ``fastbp: error:`` line, exit 2."""


class _Parser(argparse.ArgumentParser):
    """argparse with errors raised (and printed by :func:`main` as one line)."""

    def error(self, message):
        raise CLIError(f"{message} (see '{self.prog} --help')")


# --------------------------------------------------------------------------- argument types
def _number(text, kind):
    try:
        value = kind(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(
            f"expected {'an integer' if kind is int else 'a number'}, got {text!r}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def positive_float(text):
    value = _number(text, float)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def positive_int(text):
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def nonneg_int(text):
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def unit_interval(text):
    """A number in [0, 1)."""
    value = _number(text, float)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def accuracy_fraction(text):
    """A number in [0, 1]; 0 turns the accuracy stop off."""
    value = _number(text, float)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1] (0: off), got {text}")
    return value


def decay_factor(text):
    value = _number(text, float)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1] (1: no decay), got {text}")
    return value


def layer_sizes(text):
    """``"2,4,4,1"`` -> [2, 4, 4, 1]: at least two positive integers."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        sizes = [int(p) for p in parts]
    except ValueError:
        sizes = None
    if not sizes or len(sizes) < 2 or min(sizes) < 1:
        raise argparse.ArgumentTypeError(
            f"expected at least two positive integers separated by commas, such as 2,4,4,1; "
            f"got {text!r}")
    return sizes


# --------------------------------------------------------------------------- the parser
def _data_options(p):
    g = p.add_argument_group("data")
    g.add_argument("--data", choices=DATASETS, default="xor",
                   help="xor: the 21-point XOR problem; linear: points in the unit square "
                        "split by the diagonal; digits: scikit-learn's 8x8 digits (80/20 "
                        "split); cifar10: CIFAR-10 binary batches from --cifar-path "
                        "(default: %(default)s)")
    g.add_argument("--cifar-path", metavar="PATH",
                   help="a CIFAR-10 batch file, or a folder of *.bin batch files "
                        "(needed with --data cifar10)")
    g.add_argument("--max-records", type=positive_int, metavar="N",
                   help="read at most N CIFAR-10 records")
    g.add_argument("--n", type=positive_int, default=500,
                   help="number of points for --data linear (default: %(default)s)")
    g.add_argument("--data-seed", type=nonneg_int, default=0, metavar="SEED",
                   help="seed of the linear points, and of the digits / CIFAR-10 train/test "
                        "split (default: %(default)s)")


def _model_options(p, sizes_help, backend=True):
    g = p.add_argument_group("model")
    g.add_argument("--sizes", type=layer_sizes, metavar="N,N,...", help=sizes_help)
    g.add_argument("--activation", choices=list(ACTIVATION_LAYERS),
                   help="activation after every hidden layer (default: sigmoid for xor/"
                        "linear, relu for digits/cifar10)")
    g.add_argument("--output-activation", choices=list(ACTIVATION_LAYERS),
                   help="activation after the last layer (default: identity with "
                        "--loss cross_entropy, sigmoid otherwise)")
    g.add_argument("--loss", choices=["mse", "bce", "cross_entropy"],
                   help="mse: squared error; bce: binary cross-entropy (sigmoid output); "
                        "cross_entropy: softmax cross-entropy over the logits (default: mse "
                        "for xor/linear, cross_entropy for digits/cifar10)")
    g.add_argument("--reduction", choices=["mean", "sum"],
                   help="with --loss mse: mean (default) or sum of the squared errors")
    g.add_argument("--init", choices=list(INITS),
                   help="weight initialisation (default: uniform in [0, 1) for xor/linear, "
                        "He/Glorot uniform for digits/cifar10)")
    g.add_argument("--batchnorm", action=argparse.BooleanOptionalAction, default=None,
                   help="BatchNorm after every hidden Dense layer (default: on for digits/"
                        "cifar10, off for xor/linear)")
    g.add_argument("--dropout", type=unit_interval, metavar="P",
                   help="dropout probability after every hidden activation (default: 0.1 "
                        "for digits/cifar10, 0 for xor/linear)")
    if backend:
        g.add_argument("--backend", choices=["numba", "numpy"], default="numba",
                       help="numba: the compiled kernels; numpy: the plain-NumPy reference "
                            "(default: %(default)s)")
    g.add_argument("--dtype", choices=["float64", "float32"], default="float64",
                   help="(default: %(default)s)")
    g.add_argument("--seed", type=nonneg_int, default=DEFAULT_SEED,
                   help="model seed: initial weights, shuffling, dropout masks "
                        "(default: %(default)s)")


def _training_options(p, epochs_help, batch_help, lr=True):
    g = p.add_argument_group("training")
    if lr:
        g.add_argument("--lr", type=positive_float,
                       help="learning rate (default: 0.1 for xor/linear, 0.05 for digits/"
                            "cifar10)")
    g.add_argument("--epochs", type=positive_int, help=epochs_help)
    g.add_argument("--batch-size", type=positive_int, metavar="N", help=batch_help)
    g.add_argument("--optimizer", choices=["sgd", "adam"],
                   help="(default: sgd)")
    g.add_argument("--momentum", type=unit_interval,
                   help="SGD momentum (default: 0 for xor/linear, 0.9 for digits/cifar10)")
    g.add_argument("--lr-decay", type=decay_factor, metavar="GAMMA",
                   help="multiply the learning rate by GAMMA after every epoch (default: "
                        "0.93 for digits/cifar10, none for xor/linear)")
    g.add_argument("--shuffle", action=argparse.BooleanOptionalAction, default=None,
                   help="reshuffle the training data every epoch (default: off for xor/"
                        "linear, as in the original per-sample runs; on for digits/cifar10)")
    return g


def build_parser():
    parser = _Parser(
        prog="fastbp",
        description="Train fully-connected networks by backpropagation on the CPU, with "
                    "Numba kernels and a NumPy reference that give the same numbers.",
        epilog="Run 'fastbp COMMAND --help' for the options of each command.")
    parser.add_argument("--version", action="version", version=f"fastbp {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    # ---------------------------------------------------------------- train
    sizes_help = ("layer sizes, input to output, e.g. 2,4,4,1 (default: 2,4,4,1 for "
                  "xor/linear, 2,4,4,2 with --loss cross_entropy; 64,128,64,10 for digits; "
                  "3072,128,64,10 for cifar10)")
    p = sub.add_parser(
        "train", help="train a network on one data set and report",
        description="Train a fully-connected network and print a summary (epochs run, final "
                    "loss and accuracy, time, test accuracy for digits/cifar10). Defaults "
                    "depend on --data: xor/linear train the [2, 4, 4, 1] sigmoid network "
                    "with per-sample SGD at lr 0.1 until every point is classified (up to "
                    "100,000 epochs); digits/cifar10 train Dense-BatchNorm-ReLU-Dropout x2 - "
                    "Dense with softmax cross-entropy, SGD momentum 0.9, lr 0.05 x 0.93 per "
                    "epoch, batch 32, 30 epochs.",
        epilog="Example: fastbp train --data xor --plot out/xor.png --save out/xor.npz")
    _data_options(p)
    _model_options(p, sizes_help)
    g = _training_options(p, "number of epochs (default: 100000 for xor/linear, 30 for "
                             "digits/cifar10)",
                          "samples per update; 1 is per-sample SGD (default: 1 for xor/"
                          "linear, 32 for digits/cifar10)")
    g.add_argument("--stop-at-accuracy", type=accuracy_fraction, metavar="A",
                   help="stop once a fraction A of the training points is classified right; "
                        "0 turns it off (default: 1.0 for xor/linear, off for digits/cifar10)")
    o = p.add_argument_group("output")
    o.add_argument("--save", metavar="PATH", help="save the trained model (.npz) to PATH")
    o.add_argument("--plot", metavar="PATH",
                   help="write the loss curve (PNG) to PATH; for xor/linear also the ground "
                        "truth vs prediction figure next to it, PATH with a _result suffix")
    o.add_argument("--verbose", action="store_true",
                   help="show a progress bar while training (on a terminal)")
    o.add_argument("--print-every", type=positive_int, metavar="N",
                   help="print the loss every N epochs")
    o.add_argument("--quiet", action="store_true",
                   help="no notice on stderr while kernels compile on first use")
    p.set_defaults(func=cmd_train)

    # ---------------------------------------------------------------- compare
    p = sub.add_parser(
        "compare", help="train the same network on both backends and compare",
        description="Train the same network from the same seed on the Numba kernels and on "
                    "the NumPy reference; print the largest weight difference, the epochs "
                    "each ran, the time of each and the speedup. Exits 1 when the weights "
                    "differ by more than --tol or the backends stop at different epochs.",
        epilog="Example: fastbp compare --data xor --epochs 500")
    _data_options(p)
    _model_options(p, sizes_help, backend=False)
    g = _training_options(p, "number of epochs (default: small so that the NumPy reference "
                             "finishes quickly: 200 for xor, 5 for linear, 2 for digits, "
                             "1 for cifar10)",
                          "samples per update (default: 1 for xor/linear, 32 for "
                          "digits/cifar10)")
    g.add_argument("--stop-at-accuracy", type=accuracy_fraction, metavar="A",
                   help="stop once a fraction A of the training points is classified right; "
                        "0 turns it off (default: 1.0 for xor/linear, off for digits/cifar10)")
    p.add_argument("--tol", type=positive_float,
                   help="largest acceptable weight difference (default: 1e-10 for float64, "
                        "1e-4 for float32)")
    p.set_defaults(func=cmd_compare)

    # ---------------------------------------------------------------- sweep
    from . import _sweep_cli
    _sweep_cli.add_parser(sub)

    # ---------------------------------------------------------------- demo
    p = sub.add_parser(
        "demo", help="run the seed experiments end to end and save their figures",
        description="Run the experiments fastbp was built from and check them against the "
                    "published figures: one sigmoid neuron (seed 000), the 2-2-1 linear "
                    "network (seed 002), the [2, 4, 4, 1] sigmoid network on the linear and "
                    "XOR data on both backends (seed 001), the learning-rate sweep (seed "
                    "000), and the BatchNorm/Dropout classifier on digits and on a "
                    "CIFAR-10-format file (seed 003). Exits 1 if any result is not as "
                    "expected.")
    p.add_argument("--out", metavar="DIR", default="fastbp-out",
                   help="folder for the figures (created; default: %(default)s)")
    p.add_argument("--quick", action="store_true",
                   help="a small run of everything (seconds, not minutes): the NumPy "
                        "reference is capped at 500 per-sample steps, digits and CIFAR-10 "
                        "train 1-2 epochs")
    p.add_argument("--seed", type=nonneg_int, default=DEFAULT_SEED,
                   help="model seed (default: %(default)s, for which both the linear and "
                        "the XOR runs converge within 100,000 epochs)")
    p.add_argument("--numpy-steps", type=nonneg_int, metavar="N",
                   help="per-sample steps the NumPy reference may take in each seed-001 "
                        "backend comparison; it costs ~150 us per step (default: 180000, "
                        "which with the default seed covers the whole linear run and cuts the "
                        "XOR run short; 500 with --quick; 0: no cap, both full runs, several "
                        "minutes)")
    p.set_defaults(func=cmd_demo)

    from .export import add_parser as add_export_parser     # fastbp export (ONNX)
    add_export_parser(sub)
    from . import _cli_trace
    _cli_trace.add_parser(sub)
    _warmup.add_parser(sub)

    # ---------------------------------------------------------------- bench (listed here,
    # run by fastbp.bench, which parses its own options)
    sub.add_parser("bench", help="time fastbp against the NumPy reference, PyTorch and "
                                 "scikit-learn side by side (fastbp bench --help)")
    return parser


# --------------------------------------------------------------------------- data
class Data:
    """Training (and test) arrays with class labels, as the command line chose them."""

    def __init__(self, name, X, labels, n_classes, X_test=None, labels_test=None, note=""):
        self.name, self.X, self.labels, self.n_classes = name, X, labels, n_classes
        self.X_test, self.labels_test, self.note = X_test, labels_test, note

    @property
    def toy(self):
        return self.name in TOY


def load_data(args):
    dtype = args.dtype
    if args.data != "cifar10" and (args.cifar_path or args.max_records):
        raise CLIError("--cifar-path and --max-records go with --data cifar10")
    if args.data == "xor":
        X, y = datasets.generate_xor_easy(dtype=dtype)
        return Data("xor", X, y[:, 0].astype(np.int64), 2, note="21 points")
    if args.data == "linear":
        X, y = datasets.generate_linear(args.n, seed=args.data_seed, dtype=dtype)
        return Data("linear", X, y[:, 0].astype(np.int64), 2,
                    note=f"{args.n} points, data seed {args.data_seed}")
    if args.data == "digits":
        Xtr, Xte, ytr, yte = datasets.load_digits(seed=args.data_seed, dtype=dtype)
        return Data("digits", Xtr, ytr, 10, Xte, yte,
                    note=f"{len(Xtr)} train / {len(Xte)} test images")
    if not args.cifar_path:
        raise CLIError("--data cifar10 needs --cifar-path FILE_OR_FOLDER")
    X, y = datasets.load_cifar10(args.cifar_path, dtype=dtype, max_records=args.max_records)
    n = X.shape[0]
    if n >= 5:   # a seeded 80/20 train/test split
        order = np.random.default_rng(args.data_seed).permutation(n)
        n_test = max(1, n // 5)
        te, tr = order[:n_test], order[n_test:]
        return Data("cifar10", X[tr], y[tr], 10, X[te], y[te],
                    note=f"{len(tr)} train / {len(te)} test images from {args.cifar_path}")
    return Data("cifar10", X, y, 10, note=f"{n} images from {args.cifar_path}, no test split")


# --------------------------------------------------------------------------- settings
def _pick(value, default):
    return default if value is None else value


def resolve(args, data, presets):
    """The model and training settings: the command line over the data set's defaults."""
    pre = presets["toy" if data.toy else "images"]
    s = {}
    s["loss"] = _pick(args.loss, pre["loss"])
    n_in = data.X.shape[1]
    n_out = 2 if (data.toy and s["loss"] == "cross_entropy") else (1 if data.toy else 10)
    s["sizes"] = args.sizes or [n_in] + pre["hidden"] + [n_out]
    s["activation"] = _pick(args.activation, pre["activation"])
    s["output_activation"] = _pick(args.output_activation,
                                   "identity" if s["loss"] == "cross_entropy" else "sigmoid")
    s["init"] = _pick(args.init, pre["init"])
    s["batchnorm"] = _pick(args.batchnorm, pre["batchnorm"])
    s["dropout"] = _pick(args.dropout, pre["dropout"])
    s["reduction"] = args.reduction
    if args.reduction is not None and s["loss"] != "mse":
        raise CLIError(f"--reduction goes with --loss mse, not --loss {s['loss']}")
    for key in ("epochs", "optimizer", "momentum", "shuffle"):
        s[key] = _pick(getattr(args, key), pre[key])
    s["batch_size"] = args.batch_size
    s["lr_decay"] = _pick(args.lr_decay, pre.get("lr_decay"))
    if hasattr(args, "lr"):
        s["lr"] = _pick(args.lr, pre["lr"])
    if hasattr(args, "stop_at_accuracy"):
        stop = _pick(args.stop_at_accuracy, pre["stop_at_accuracy"])
        s["stop_at_accuracy"] = stop if stop else None
    if s["optimizer"] == "adam" and args.momentum is not None:
        raise CLIError("--momentum goes with --optimizer sgd, not adam")
    _check_sizes(s, data)
    return s


def _check_sizes(s, data):
    sizes, n_in = s["sizes"], data.X.shape[1]
    if sizes[0] != n_in:
        raise CLIError(f"--sizes starts with {sizes[0]} inputs but the {data.name} data has "
                       f"{n_in} features; start with {n_in}")
    k, n_out = data.n_classes, sizes[-1]
    if n_out == k or (k == 2 and n_out == 1):
        pass
    else:
        raise CLIError(f"--sizes ends with {n_out} outputs but the {data.name} data has {k} "
                       f"classes; end with {k}" + (" (or 1)" if k == 2 else ""))
    if s["loss"] == "cross_entropy" and n_out == 1:
        raise CLIError("--loss cross_entropy needs one output per class; for one output use "
                       "--loss mse or --loss bce")


def targets(labels, sizes, loss, dtype):
    """What fit wants: integer labels (cross-entropy), a 0/1 column (one output) or one-hot."""
    if loss == "cross_entropy":
        return labels
    if sizes[-1] == 1:
        return labels.astype(dtype).reshape(-1, 1)
    onehot = np.zeros((labels.size, sizes[-1]), dtype=dtype)
    onehot[np.arange(labels.size), labels] = 1
    return onehot


def check_batch(s, n, batch):
    """BatchNorm needs two samples in every training batch; say so before training."""
    batch = min(batch, n)
    if s["batchnorm"] and (batch == 1 or n % batch == 1):
        raise CLIError(f"BatchNorm needs at least 2 samples in every training batch, but "
                       f"--batch-size {batch} with {n} training samples leaves a batch of 1; "
                       f"choose a batch size >= 2 that leaves more than one sample over, or "
                       f"--no-batchnorm")


def build_model(s, args, backend=None):
    loss = MSE(reduction=s["reduction"] or "mean") if s["loss"] == "mse" else s["loss"]
    return MLP(s["sizes"], activation=s["activation"], output_activation=s["output_activation"],
               loss=loss, backend=backend or args.backend, dtype=args.dtype, seed=args.seed,
               init=s["init"], batchnorm=s["batchnorm"], dropout=s["dropout"])


def fit_kwargs(s, batch_size):
    kw = dict(epochs=s["epochs"], lr=s["lr"], batch_size=batch_size, shuffle=s["shuffle"],
              optimizer=s["optimizer"])
    if s["optimizer"] == "sgd":
        kw["momentum"] = s["momentum"]
    if s["lr_decay"] is not None and s["lr_decay"] != 1.0:
        kw["lr_schedule"] = ExponentialLR(s["lr_decay"])
    if s.get("stop_at_accuracy"):
        kw["stop_at_accuracy"] = s["stop_at_accuracy"]
    return kw


def describe(s, batch_size, epochs_word="up to", lr_text=None):
    arch = "-".join(str(v) for v in s["sizes"])
    extra = []
    if s["batchnorm"]:
        extra.append("batchnorm")
    if s["dropout"]:
        extra.append(f"dropout {s['dropout']:g}")
    loss = s["loss"] + (f" ({s['reduction']})" if s["reduction"] else "")
    model = (f"{arch}, {s['activation']} hidden / {s['output_activation']} output, loss {loss}"
             f", init {s['init'] or 'default'}" + "".join(", " + e for e in extra))
    opt = s["optimizer"] + (f" momentum {s['momentum']:g}" if s["optimizer"] == "sgd"
                            and s["momentum"] else "")
    lr = lr_text or f"lr {s['lr']:g}"
    if s["lr_decay"] not in (None, 1.0):
        lr += f" x {s['lr_decay']:g}/epoch"
    train = (f"{opt}, {lr}, batch {batch_size}, {'shuffled' if s['shuffle'] else 'no shuffle'}"
             f", {epochs_word + ' ' if epochs_word else ''}{_epochs(s['epochs'])}")
    if s.get("stop_at_accuracy"):
        train += f", stop at accuracy {s['stop_at_accuracy']}"
    return model, train


def _output_path(path, option):
    """Refuse output paths that cannot be written, before any training."""
    if path is None:
        return None
    p = Path(path)
    if p.is_dir():
        raise CLIError(f"{option} {path!r} is a folder; give a file name")
    for parent in p.parents:
        if parent.exists():
            if not parent.is_dir():
                raise CLIError(f"{option} {path!r}: {str(parent)!r} is not a folder")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise CLIError(f"{option} {path!r}: cannot write into {str(parent)!r}")
            break
    return p


def _result_path(plot_path):
    return plot_path.with_name(plot_path.stem + "_result" + (plot_path.suffix or ".png"))


def _epochs(n):
    return f"{n:,} epoch" + ("" if n == 1 else "s")


def _fmt_time(t):
    return f"{t:.3f} s" if t < 10 else f"{t:.1f} s"


# --------------------------------------------------------------------------- commands
def _warm_up(s, args, data, backend, batch_size, evaluate=False):
    """Compile (or load) the kernels this run needs, so timings measure training only."""
    model = build_model(s, args, backend)
    rows = min(data.X.shape[0], max(2, 2 * batch_size))
    if rows % batch_size == 1 and rows > 2:
        rows -= 1
    kw = fit_kwargs(s, batch_size)
    kw["epochs"] = 1
    y = targets(data.labels[:rows], s["sizes"], s["loss"], data.X.dtype)
    model.fit(data.X[:rows], y, **kw)
    if evaluate:
        model.evaluate(data.X[:rows], y)


def cmd_train(args):
    if args.quiet:
        _cache.quiet = True
    save_path = _output_path(args.save, "--save")
    plot_path = _output_path(args.plot, "--plot")
    data = load_data(args)
    s = resolve(args, data, PRESETS)
    batch = _pick(s["batch_size"], PRESETS["toy" if data.toy else "images"]["batch_size"])
    check_batch(s, data.X.shape[0], batch)
    model = build_model(s, args)
    y = targets(data.labels, s["sizes"], s["loss"], data.X.dtype)
    desc_model, desc_train = describe(s, batch)
    print(f"data:     {data.name} ({data.note}, {data.X.shape[1]} features, "
          f"{data.n_classes} classes)")
    print(f"model:    {desc_model}; {args.backend} backend, {args.dtype}, seed {args.seed}")
    print(f"training: {desc_train}", flush=True)
    with _signals.TrainSignals() as sig:
        t0 = time.perf_counter()
        try:
            sig.run(_warm_up, s, args, data, args.backend, batch, True)
        except KeyboardInterrupt:
            _signals.note(sig, "while loading the kernels, before training; nothing saved")
            return sig.exit_code
        warm = time.perf_counter() - t0
        try:
            hist = model.fit(data.X, y, verbose=args.verbose, print_every=args.print_every,
                             **fit_kwargs(s, batch))
        except KeyboardInterrupt:       # a second Ctrl-C: fit stopped after its current step
            hist = None
        stopped = hist is None or hist.interrupted or sig.signum is not None
        try:
            _train_report(s, data, model, y, hist, warm)
        except KeyboardInterrupt:
            stopped = True
        if save_path is not None:
            with sig.saving():          # a signal now waits for the save to finish
                save_path.parent.mkdir(parents=True, exist_ok=True)
                model.save(save_path)
            print(f"saved model: {save_path}", flush=True)
        saved = f"; the model so far is saved in {save_path}" if save_path else ""
        if stopped or sig.signum is not None:
            _signals.note(sig, f"after {_epochs(model.epochs_trained)}{saved}"
                          + (" (no plot written)" if plot_path else ""))
            return sig.exit_code
        try:
            figures = _train_plots(s, data, model, hist, plot_path)
        except KeyboardInterrupt:
            _signals.note(sig, f"while plotting{saved} (plot not written)")
            return sig.exit_code
    for f in figures:
        print(f"wrote plot:  {f}")
    return EXIT_OK


def _train_report(s, data, model, y, hist, warm):
    """The summary lines of ``fastbp train``."""
    if hist is None:
        print(f"epochs run:  {model.epochs_trained:,} (interrupted)")
        return
    if hist.stop_reason == "accuracy":
        stop = f" (stopped: training accuracy reached {s['stop_at_accuracy']})"
    elif hist.interrupted:
        stop = " (interrupted)"
    else:
        stop = ""
    print(f"epochs run:  {hist.epochs_run:,}{stop}")
    if hist.loss:
        print(f"final epoch: loss {hist.loss[-1]:.6g}, accuracy {hist.accuracy[-1]:.4f} "
              f"(over the epoch's training batches)")
    ev = model.evaluate(data.X, y)
    print(f"train set:   loss {ev['loss']:.6g}, accuracy {ev['accuracy']:.4f} (eval mode)")
    if data.X_test is not None:
        yt = targets(data.labels_test, s["sizes"], s["loss"], data.X.dtype)
        et = model.evaluate(data.X_test, yt)
        print(f"test set:    loss {et['loss']:.6g}, accuracy {et['accuracy']:.4f} "
              f"({data.X_test.shape[0]} samples)")
    print(f"time:        {_fmt_time(hist.seconds)} training "
          f"({1e6 * hist.seconds / max(1, hist.epochs_run * data.X.shape[0]):.3g} us per "
          f"sample), after a {_fmt_time(warm)} warm-up (loading the kernels)", flush=True)


def _train_plots(s, data, model, hist, plot_path):
    """Write the loss curve (and for 2-D data the result figure); their paths."""
    figures = []
    if plot_path is None:
        return figures
    from . import plot as fbplot
    figures.append(fbplot.plot_loss(
        hist, plot_path, title=f"{data.name}: {'-'.join(map(str, s['sizes']))}, "
                               f"{_epochs(hist.epochs_run)}"))
    if data.X.shape[1] == 2:
        if model.n_outputs == 1:
            def prob(g):          # the output, thresholded at 0.5 by predict_classes
                return model.predict(g)[:, 0]
        else:
            def prob(g):          # above 0.5 exactly where output 1 beats output 0
                out = model.predict(g)
                return 0.5 + 0.5 * (out[:, 1] - out[:, 0])
        figures.append(fbplot.plot_result(
            data.X, data.labels, model.predict_classes(data.X), _result_path(plot_path),
            predict_fn=prob, title=f"{data.name} data after {_epochs(hist.epochs_run)}"))
    return figures


def cmd_compare(args):
    data = load_data(args)
    pre = PRESETS["toy" if data.toy else "images"]
    if args.epochs is None:
        args.epochs = pre["compare_epochs"][data.name]
    s = resolve(args, data, PRESETS)
    batch = _pick(s["batch_size"], pre["batch_size"])
    check_batch(s, data.X.shape[0], batch)
    y = targets(data.labels, s["sizes"], s["loss"], data.X.dtype)
    tol = args.tol if args.tol is not None else (1e-10 if args.dtype == "float64" else 1e-4)
    desc_model, desc_train = describe(s, batch)
    print(f"data:     {data.name} ({data.note})")
    print(f"model:    {desc_model}; {args.dtype}, seed {args.seed}")
    print(f"training: {desc_train}", flush=True)
    runs = {}
    for backend in ("numba", "numpy"):
        _warm_up(s, args, data, backend, batch)
        model = build_model(s, args, backend)
        t0 = time.perf_counter()
        hist = model.fit(data.X, y, **fit_kwargs(s, batch))
        seconds = time.perf_counter() - t0
        if hist.interrupted:
            print(f"fastbp: interrupted during the {backend} run", file=sys.stderr)
            return EXIT_INTERRUPTED
        runs[backend] = (model, hist, seconds)
        print(f"{backend:>6}: {_epochs(hist.epochs_run)}"
              + (" (stopped at the accuracy target)" if hist.stop_reason == "accuracy" else "")
              + f", {_fmt_time(seconds)}, final loss {hist.loss[-1]:.10g}", flush=True)
    (mn, hn, tn), (mp, hp, tp) = runs["numba"], runs["numpy"]
    diff = max(float(np.max(np.abs(a - b), initial=0.0))
               for a, b in zip(mn.get_weights(), mp.get_weights()))
    state_diff = float(np.max(np.abs(mn.state - mp.state), initial=0.0))
    same = hn.epochs_run == hp.epochs_run
    print(f"max |weight difference|: {diff:.3g} (tolerance {tol:g})")
    if mn.state.size:
        print(f"max |running-statistics difference|: {state_diff:.3g}")
    print(f"epochs run: numba {hn.epochs_run:,}, numpy {hp.epochs_run:,} "
          f"({'the same' if same else 'DIFFERENT'})")
    print(f"time: numba {_fmt_time(tn)}, numpy {_fmt_time(tp)}; "
          f"speedup numba/numpy: {tp / max(tn, 1e-12):.1f}x")
    if not same or not diff <= tol or not state_diff <= tol:
        print(f"fastbp: error: the backends disagree (max weight difference {diff:.3g}, "
              f"tolerance {tol:g}; epochs {hn.epochs_run} vs {hp.epochs_run})",
              file=sys.stderr)
        return EXIT_FAILED
    print("the backends agree")
    return EXIT_OK


def cmd_demo(args):
    from . import demo
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {args.out!r} exists and is not a folder")
    _output_path(out / "x.png", "--out")
    res = demo.run_all(out, quick=args.quick, seed=args.seed, numpy_steps=args.numpy_steps,
                       log=lambda line: print(line, flush=True))
    return EXIT_OK if res["ok"] else EXIT_FAILED


# --------------------------------------------------------------------------- entry point
def _one_line(message):
    return " ".join(str(message).split())


def main(argv=None):
    """Run the ``fastbp`` command on ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:       # the benchmark has its own options (fastbp bench --help)
        from .bench import main as bench_main
        return bench_main(argv[1:])
    parser = build_parser()
    try:
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:     # --help and --version
            return exc.code if isinstance(exc.code, int) else EXIT_OK
        if args.command is None:
            raise CLIError("choose a command: train, compare, sweep, demo, export, trace, warmup or "
                           "bench "
                           "(see 'fastbp --help')")
        return args.func(args)
    except (CLIError, ValueError, TypeError, FileNotFoundError, OSError) as exc:
        sys.stdout.flush()
        msg = str(exc)
        if isinstance(exc, OSError) and exc.strerror and exc.filename:
            msg = f"{exc.strerror}: {exc.filename!r}"
        print(f"fastbp: error: {_one_line(msg)}", file=sys.stderr)
        return EXIT_USAGE
    except TrainingDivergedError as exc:
        sys.stdout.flush()
        print(f"fastbp: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        sys.stdout.flush()
        print("fastbp: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":   # pragma: no cover
    sys.exit(main())
