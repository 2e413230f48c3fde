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
import sys
from pathlib import Path

from . import _cli_compare, _cli_export, _cli_trace, _cli_train, _sweep_cli, _warmup, demo
from ._cli_common import (EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, CLIError,
                          nonneg_int, output_path)
from ._version import __version__
from .model import TrainingDivergedError


class _Parser(argparse.ArgumentParser):
    """argparse with errors raised (and printed by :func:`main` as one line)."""

    def error(self, message):
        raise CLIError(f"{message} (see '{self.prog} --help')")


# --------------------------------------------------------------------------- the parser
def build_parser():
    parser = _Parser(
        prog="fastbp",
        description="Train fully-connected networks by backpropagation on the CPU, with "
                    "Numba kernels and a NumPy reference that give the same numbers.",
        epilog="Run 'fastbp COMMAND --help' for the options of each command.")
    parser.add_argument("--version", action="version", version=f"fastbp {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    _cli_train.add_parser(sub)
    _cli_compare.add_parser(sub)
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
    p.add_argument("--seed", type=nonneg_int, default=demo.DEFAULT_SEED,
                   help="model seed (default: %(default)s, for which both the linear and "
                        "the XOR runs converge within 100,000 epochs)")
    p.add_argument("--numpy-steps", type=nonneg_int, metavar="N",
                   help="per-sample steps the NumPy reference may take in each seed-001 "
                        "backend comparison; it costs 300-400 us per step (default: 20000, "
                        "both runs cut short, about 15 s; 180000 covers the whole linear run "
                        "with the default seed, where both backends must stop at the same "
                        "epoch; 500 with --quick; 0: no cap, both full runs, several minutes)")
    p.set_defaults(func=cmd_demo)

    _cli_export.add_parser(sub)
    _cli_trace.add_parser(sub)
    _warmup.add_parser(sub)

    # ---------------------------------------------------------------- bench (listed here,
    # run by fastbp.bench, which parses its own options)
    sub.add_parser("bench", help="time fastbp against the NumPy reference, PyTorch and "
                                 "scikit-learn side by side (fastbp bench --help)")
    return parser


# --------------------------------------------------------------------------- demo
def cmd_demo(args):
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {args.out!r} exists and is not a folder")
    output_path(out / "x.png", "--out")
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
            raise CLIError("choose a command: train, compare, sweep, demo, export, trace, "
                           "warmup or bench (see 'fastbp --help')")
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
