"""fastbp's benchmark: fastbp against its NumPy reference, PyTorch and scikit-learn.

One command (``scripts/bench`` or ``fastbp bench``) runs the workloads below,
prints a table of median times, ratios to fastbp and the agreement of the
results, checks every figure against its target, and writes the numbers as
JSON and the times as a bar chart.

Workloads (float64 unless noted)
--------------------------------
Every workload's data, networks and bounds are defined once, in
``fastbp._bench_workloads``, which the asv suite (``asv_bench/``) also uses.

A  per-sample SGD (batch 1, one update per sample), time per epoch of 500
   samples: [2,4,4,1] sigmoid + MSE and [2,8,8,1] tanh + MSE on
   ``generate_linear``, [4,16,16,3] ReLU + softmax cross-entropy on Gaussian
   blobs. fastbp runs many epochs per ``fit`` call (time divided); the
   reference runs whole epochs; PyTorch eager runs a plain per-sample loop on
   a prefix of the data, scaled to 500 samples.
B  mini-batch SGD on the digits (1438 x 64), 64-128-64-10 ReLU, softmax
   cross-entropy, lr 0.05, one epoch: batch 32 and 256, against the
   reference, PyTorch eager and scikit-learn's MLPClassifier; and with
   BatchNorm and Dropout(0.2) after each hidden Dense (batch 32). The bound
   ("x bound"): the epoch's matrix products alone.
C  one training step of 3072-1024-512-10 ReLU on a batch of 256 random
   CIFAR-10-shaped rows, float32 and float64, against the same step's eight
   matrix products alone (into preallocated arrays, on SciPy's BLAS, which
   Numba's np.dot calls, taking turns with fastbp; and with np.matmul), the
   reference and PyTorch.
T  thread pools: a fastbp epoch (digits, batch 32, BLAS on the hot path)
   alternating with a 512x512 NumPy matrix product, each against itself alone.
M  memory: allocations per steady-state step (tracemalloc and Numba's
   allocation counters), and the peak memory of workload C's training beyond
   its data set, relative to parameters + one batch of activations.
S  start-up, whole processes: ``import fastbp``; building a model and its first
   ``fit`` (per-sample and mini-batch) with an empty Numba cache directory
   (cold), then ``predict`` + ``evaluate`` + ``loss_and_grads`` after it; the
   same first fit with that cache filled (warm); each process's wall time.

Threads: A and B run every implementation with one thread per pool
(threadpoolctl for the BLAS and OpenMP pools, ``torch.set_num_threads(1)``),
taking turns round by round; C runs each implementation in its own block with
the machine's default thread counts, after an untimed warm-up (only fastbp
and the same products on its own BLAS take turns); T uses the default thread
counts on purpose (that is where pools collide). Each table says which.

Agreement: fastbp vs the reference is the largest |weight difference| after
the same training from the same weights (the reference is the specification:
float64 must agree within 1e-10). PyTorch and scikit-learn start from
fastbp's initial weights and train on the same samples in the same order;
with dropout, PyTorch is given fastbp's own masks for the comparison.
"""
import argparse
import importlib
import json
import os
import sys
import time

from ._bench_core import (DEFAULT_THREADS, FASTBP, ONE_THREAD, REFERENCE, Report, Settings,
                          load_pools)
from ._bench_report import environment, format_report, json_default, plot, plot_rows

__all__ = ["main", "run", "parse_workloads", "REGISTRY", "WORKLOADS", "FASTBP", "REFERENCE"]

DEFAULT_JSON = os.path.join("fastbp-out", "bench.json")
DEFAULT_PLOT = os.path.join("fastbp-out", "bench.png")

# The workloads, in the order they run: key -> ("module:function", what it is, threads).
# A workload is a function ``workload_X(S, rep)`` (S: Settings, rep: Report); to add
# one, write it in a module of its own and add its line here.
REGISTRY = {
    "A": ("fastbp._bench_train:workload_A", "per-sample", ONE_THREAD),
    "B": ("fastbp._bench_train:workload_B", "mini-batch", ONE_THREAD),
    "C": ("fastbp._bench_system:workload_C", "large batch", DEFAULT_THREADS),
    "T": ("fastbp._bench_system:workload_T", "thread pools",
          "default thread counts (and a 1-thread diagnostic)"),
    "M": ("fastbp._bench_system:workload_M", "memory", "default"),
    "S": ("fastbp._bench_system:workload_S", "start-up", "default"),
    "K": ("fastbp._sklearn_bench:workload_K", "scikit-learn estimators",
          "1 BLAS thread, then default thread counts"),
}
WORKLOADS = tuple(REGISTRY)
ALIASES = {"threads": "T", "memory": "M", "startup": "S", "start-up": "S", "sklearn": "K"}


def workload_function(key):
    """The function of workload ``key`` (imported on first use)."""
    module, _, name = REGISTRY[key][0].partition(":")
    return getattr(importlib.import_module(module), name)


# --------------------------------------------------------------------------- main
def parse_workloads(text):
    if not text:
        return list(WORKLOADS)
    out = []
    for part in text.split(","):
        p = part.strip()
        if not p:
            continue
        key = ALIASES.get(p.lower(), p.upper())
        if key not in WORKLOADS:
            raise ValueError(f"unknown workload {p!r}; choose from {', '.join(WORKLOADS)} "
                             f"(or {', '.join(ALIASES)})")
        if key not in out:
            out.append(key)
    return out


def build_parser():
    p = argparse.ArgumentParser(
        prog="fastbp bench",
        description="Time fastbp against its NumPy reference, PyTorch eager and scikit-learn; "
                    "print a table, write JSON and a bar chart.")
    p.add_argument("--quick", action="store_true",
                   help="few repeats and smaller samples (a smoke run, well under a minute "
                        "for one workload)")
    p.add_argument("--json", default=DEFAULT_JSON, metavar="PATH",
                   help=f"where to write the results (default {DEFAULT_JSON})")
    p.add_argument("--plot", default=DEFAULT_PLOT, metavar="PATH",
                   help=f"where to draw the bar chart of times (default {DEFAULT_PLOT})")
    p.add_argument("--workloads", default=None, metavar="A,B,...",
                   help="which workloads to run: "
                        + ", ".join(f"{k} {v[1]}" for k, v in REGISTRY.items())
                        + "; default all")
    return p


def run(workloads, quick=False, command="fastbp bench"):
    """Run ``workloads``; returns (Report, metadata dict)."""
    S = Settings(quick)
    load_pools()
    rep = Report()
    t0 = time.perf_counter()
    seconds = {}
    for w in workloads:
        t = time.perf_counter()
        workload_function(w)(S, rep)
        seconds[w] = time.perf_counter() - t
    rep.ratios()
    meta = dict(command=command, quick=quick, workloads=list(workloads),
                environment=environment(), seconds=seconds,
                total_seconds=time.perf_counter() - t0,
                threads={w: REGISTRY[w][2] for w in workloads})
    return rep, meta


def main(argv=None):
    """Entry point of ``fastbp bench`` and ``scripts/bench``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        workloads = parse_workloads(args.workloads)
    except ValueError as exc:
        parser.error(str(exc))
    command = " ".join(["fastbp bench"] + list(sys.argv[1:] if argv is None else argv))
    rep, meta = run(workloads, quick=args.quick, command=command)
    text = format_report(rep, meta)
    print(text, flush=True)
    result = dict(meta, rows=rep.rows, figures=rep.figures, targets=rep.targets,
                  notes=rep.notes, json=args.json, plot=args.plot)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1, default=json_default)
        print(f"\nwrote {args.json}")
    rows = plot_rows(rep)
    if args.plot and rows:
        plot(rows, args.plot)
        print(f"wrote {args.plot}")
    return 0



if __name__ == "__main__":
    sys.exit(main())