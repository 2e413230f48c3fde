"""``fastbp trace``: one step of backpropagation written out, or drawn in a web page.

    fastbp trace --example neuron            seed 000's sigmoid neuron, lr 0.5
    fastbp trace --example 2-2-1             seed 002's linear 2-2-1 network, lr 0.05
    fastbp trace --model m.npz --x 0.1,0.2 --y 1 [--x ... --y ...] [--lr 0.1]
    fastbp trace --example 2-2-1 --html step.html

The examples are the write-ups' networks as :mod:`fastbp.demo` defines them,
named as the write-ups name them, and end with a check of every figure the
write-up published.
"""
import argparse
import math
import sys

EXAMPLES = ("neuron", "2-2-1")


# --------------------------------------------------------------------------- the examples
def example(name):
    """``(model, x, y, lr, names, checks)`` of a write-up's worked example.

    ``checks(trace)`` returns the write-up's published figures checked against
    the trace, as :func:`fastbp.demo._check` dicts.
    """
    import numpy as np

    from . import demo
    from .layers import Dense
    from .losses import MSE
    from .model import Sequential

    if name == "neuron":
        inp = demo.SEED000_INPUT
        names = {"x": ["x1", "x2"], "W1": ["w1", "w2"], "b1": ["b"], "z1": ["z"],
                 "a1": ["ŷ"], "δ1": ["δ"]}
        return (demo._neuron("numpy"), np.array([inp["x"]]), np.array([[inp["y"]]]),
                inp["lr"], names, _checks_neuron)
    if name == "2-2-1":
        inp = demo.SEED002_INPUT
        model = Sequential([Dense(2, 2, bias=False), Dense(2, 1, bias=False)],
                           loss=MSE(half=True), backend="numpy")
        model.set_weights(list(demo._weights_221(inp["w"])))
        # W1 is (in, out) = [[w1, w3], [w2, w4]] (see demo._weights_221), named row by row
        names = {"x": ["i1", "i2"], "W1": ["w1", "w3", "w2", "w4"], "z1": ["h1", "h2"],
                 "W2": ["w5", "w6"], "z2": ["prediction"], "δ1": ["δh1", "δh2"],
                 "δ2": ["Δ"], "y": ["actual"], "L": "E"}
        return (model, np.array([inp["x"]]), np.array([[inp["y"]]]), inp["lr"], names,
                _checks_221)
    raise ValueError(f"unknown example {name!r}; expected one of {', '.join(EXAMPLES)}")


def _checks_neuron(t):
    from . import demo
    fwd = t.stage("forward")
    values = {"z": fwd[0]["z"][0, 0], "y_hat": fwd[1]["y"][0, 0], "loss": t.loss,
              "dL_dw2": t.grads[0][1, 0], "w2_new": t.new_weights[0][1, 0]}
    return [demo._check(k, values[k], pub, dec, tol=demo.SEED000_PUBLISHED_TOL.get(k))
            for k, (pub, dec) in demo.SEED000_PUBLISHED.items()]


def _checks_221(t):
    from . import demo
    fwd = t.stage("forward")
    V1, V2 = t.new_weights
    values = {"h1": fwd[0]["z"][0, 0], "h2": fwd[0]["z"][0, 1], "prediction": fwd[1]["z"][0, 0],
              "error": t.loss, "new_prediction": t.after["prediction"][0, 0]}
    new = [V1[0, 0], V1[1, 0], V1[0, 1], V1[1, 1], V2[0, 0], V2[1, 0]]
    values.update({f"w{i + 1}": v for i, v in enumerate(new)})
    return [demo._check(k, values[k], pub, dec) for k, (pub, dec) in demo.SEED002_PUBLISHED.items()]


SOURCES = {"neuron": "seed 000 (one sigmoid neuron, L = (y - ŷ)²)",
           "2-2-1": "seed 002 (2-2-1 linear network, E = ½(prediction - actual)²)"}


def published(name, checks):
    """The closing lines: each published figure beside the traced value."""
    from .demo import _fmt_check
    lines = ["", f"== The write-up's figures: {SOURCES[name]} ==",
             "    (each published value, rounded as published; the traced value must round to it)"]
    lines += [_fmt_check(c) for c in checks]
    bad = [c["name"] for c in checks if not c["ok"]]
    lines.append(f"    {len(checks) - len(bad)} of {len(checks)} published values reproduced"
                 + (f"; MISMATCH: {', '.join(bad)}" if bad else ""))
    if name == "neuron":
        lines.append("    (the write-up's dL_dw2 and w2_new differ from float64, -0.00537204 and "
                     "0.50268602, in the 7th decimal:\n     they read as those values with a 0 "
                     "left out, so they are held to 5e-7)")
    return lines


# --------------------------------------------------------------------------- arguments
def _numbers(text):
    """``"0.05,0.1"`` -> [0.05, 0.1]: finite numbers separated by commas."""
    try:
        values = [float(p) for p in str(text).split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected numbers separated by commas, such as 0.05,0.1; got {text!r}") from None
    if not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"expected finite numbers, got {text!r}")
    return values


def add_parser(sub):
    """Register ``fastbp trace`` on the ``fastbp`` command's subparsers."""
    from ._cli_common import positive_float, positive_int
    p = sub.add_parser(
        "trace", help="show one step of backpropagation: every sum, delta and update",
        description="Run one plain SGD step through the NumPy reference and write it out as a "
                    "worked example: forward pass, loss, backward pass, update, each value as "
                    "formula = numbers = result. --example neuron and --example 2-2-1 are the "
                    "write-ups' worked examples (seeds 000 and 002) and end with a check of "
                    "every figure they published. --html also writes an interactive page of "
                    "the network to step through.",
        epilog="Examples: fastbp trace --example 2-2-1;  fastbp trace --model m.npz --x 0.1,0.9 "
               "--y 1 --lr 0.5 --html step.html  (a negative first value: --x=-0.5,1)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--example", choices=EXAMPLES,
                     help="neuron: seed 000's sigmoid neuron; 2-2-1: seed 002's linear network")
    src.add_argument("--model", metavar="FILE.npz", help="a model saved by fastbp")
    p.add_argument("--x", type=_numbers, action="append", metavar="X1,X2,...",
                   help="with --model: one sample's inputs; repeat --x for a small batch")
    p.add_argument("--y", type=_numbers, action="append", metavar="Y1,...",
                   help="with --model: that sample's target(s), or its class label for "
                        "cross-entropy; one --y per --x")
    p.add_argument("--lr", type=positive_float,
                   help="learning rate (default: the example's, 0.5 for neuron and 0.05 for "
                        "2-2-1; 0.1 with --model)")
    p.add_argument("--limit", type=positive_int, default=64, metavar="N",
                   help="write a layer's values out in full up to N of them, summarise past "
                        "that (default: %(default)s)")
    p.add_argument("--html", metavar="PATH", help="also write the interactive page to PATH")
    p.add_argument("--ascii", action="store_true",
                   help="spell out Greek letters and symbols (sigma, delta, ...)")
    p.set_defaults(func=run)
    return p


def _from_args(args):
    """(model, x, y, lr, names, checks or None) from the command line."""
    import numpy as np

    if args.example:
        if args.x or args.y:
            raise ValueError("--x and --y go with --model; an example brings its own")
        model, x, y, lr, names, checks = example(args.example)
        return model, x, y, args.lr or lr, names, checks
    if not args.model:
        raise ValueError("choose --example neuron, --example 2-2-1, or --model FILE.npz with "
                         "--x and --y")
    if not args.x or not args.y:
        raise ValueError("--model needs --x (inputs) and --y (targets)")
    if len(args.x) != len(args.y):
        raise ValueError(f"give one --y per --x: got {len(args.x)} --x and {len(args.y)} --y")
    if len({len(v) for v in args.x}) != 1:
        raise ValueError("every --x must have the same number of values")
    from .io import load
    from .losses import SoftmaxCrossEntropy
    model = load(args.model, backend="numpy")
    x = np.array(args.x, dtype=np.float64)
    y = np.array(args.y, dtype=np.float64)
    if isinstance(model.loss, SoftmaxCrossEntropy) and y.shape[1] == 1:
        y = y[:, 0]
    return model, x, y, args.lr or 0.1, None, None


def run(args):
    """``fastbp trace``: print the step; write the page with ``--html``."""
    from .trace import trace

    model, x, y, lr, names, checks = _from_args(args)
    if args.html:
        from .io import check_path
        check_path(args.html, "--html")
    t = trace(model, x, y, lr=lr)
    text = t.text(limit=args.limit, names=names)
    ok = True
    if checks is not None:
        results = checks(t)
        ok = all(c["ok"] for c in results)
        text += "\n" + "\n".join(published(args.example, results))
    encoding = getattr(sys.stdout, "encoding", None)
    try:
        text.encode(encoding or "utf-8")
    except (UnicodeEncodeError, LookupError):     # a terminal that cannot show δ, σ, ...
        args.ascii = True
    if args.ascii:
        from ._trace_text import _ASCII
        text = text.translate(_ASCII)
    print(text)
    if args.html:
        t.html(args.html, limit=args.limit, names=names,
               title=f"fastbp trace: {SOURCES[args.example]}" if args.example else None)
        print(f"\nwrote {args.html}")
    return 0 if ok else 1
