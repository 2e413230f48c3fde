"""What the commands of ``fastbp`` share: the errors and exit statuses, the argument
types, the data/model/training options, loading the data, resolving the settings
over the data set's defaults, building the model, and checking output paths.

Every command module (:mod:`fastbp._cli_train`, :mod:`fastbp._cli_compare`,
:mod:`fastbp._sweep_cli`, :mod:`fastbp._cli_export`, :mod:`fastbp._cli_trace`, ...)
imports this one; :mod:`fastbp.cli` assembles them. Nothing here imports a command.
"""
import argparse
import math
import os
from pathlib import Path

import numpy as np

from . import datasets
from .demo import DEFAULT_SEED
from .layers import ACTIVATION_LAYERS, INITS
from .losses import MSE
from .model import MLP
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


# --------------------------------------------------------------------------- options
def data_options(p):
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


def model_options(p, sizes_help, backend=True):
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


def training_options(p, epochs_help, batch_help, lr=True):
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


SIZES_HELP = ("layer sizes, input to output, e.g. 2,4,4,1 (default: 2,4,4,1 for "
              "xor/linear, 2,4,4,2 with --loss cross_entropy; 64,128,64,10 for digits; "
              "3072,128,64,10 for cifar10)")


def stop_at_accuracy_option(g):
    """``--stop-at-accuracy`` in the option group ``g`` (train and compare)."""
    g.add_argument("--stop-at-accuracy", type=accuracy_fraction, metavar="A",
                   help="stop once a fraction A of the training points is classified right; "
                        "0 turns it off (default: 1.0 for xor/linear, off for digits/cifar10)")


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
def pick(value, default):
    return default if value is None else value


def resolve(args, data, presets):
    """The model and training settings: the command line over the data set's defaults."""
    pre = presets["toy" if data.toy else "images"]
    s = {}
    s["loss"] = pick(args.loss, pre["loss"])
    n_in = data.X.shape[1]
    n_out = 2 if (data.toy and s["loss"] == "cross_entropy") else (1 if data.toy else 10)
    s["sizes"] = args.sizes or [n_in] + pre["hidden"] + [n_out]
    s["activation"] = pick(args.activation, pre["activation"])
    s["output_activation"] = pick(args.output_activation,
                                   "identity" if s["loss"] == "cross_entropy" else "sigmoid")
    s["init"] = pick(args.init, pre["init"])
    s["batchnorm"] = pick(args.batchnorm, pre["batchnorm"])
    s["dropout"] = pick(args.dropout, pre["dropout"])
    s["reduction"] = args.reduction
    if args.reduction is not None and s["loss"] != "mse":
        raise CLIError(f"--reduction goes with --loss mse, not --loss {s['loss']}")
    for key in ("epochs", "optimizer", "momentum", "shuffle"):
        s[key] = pick(getattr(args, key), pre[key])
    s["batch_size"] = args.batch_size
    s["lr_decay"] = pick(args.lr_decay, pre.get("lr_decay"))
    if hasattr(args, "lr"):
        s["lr"] = pick(args.lr, pre["lr"])
    if hasattr(args, "stop_at_accuracy"):
        stop = pick(args.stop_at_accuracy, pre["stop_at_accuracy"])
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
             f", {epochs_word + ' ' if epochs_word else ''}{epochs_text(s['epochs'])}")
    if s.get("stop_at_accuracy"):
        train += f", stop at accuracy {s['stop_at_accuracy']}"
    return model, train


def output_path(path, option):
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


def result_path(plot_path):
    return plot_path.with_name(plot_path.stem + "_result" + (plot_path.suffix or ".png"))


def epochs_text(n):
    return f"{n:,} epoch" + ("" if n == 1 else "s")


def fmt_time(t):
    return f"{t:.3f} s" if t < 10 else f"{t:.1f} s"


# --------------------------------------------------------------------------- warm-up
def warm_up(s, args, data, backend, batch_size, evaluate=False):
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
