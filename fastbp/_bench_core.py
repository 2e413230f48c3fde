"""The machinery of ``fastbp bench``: settings, timing, thread limits and the report.

A workload is a function ``workload_X(S, rep)`` taking the :class:`Settings`
and adding to the :class:`Report`; ``fastbp.bench.REGISTRY`` lists them.
"""
import contextlib
import math
import os
import time

import numpy as np

TOL64 = 1e-10

FASTBP = "fastbp (numba)"
REFERENCE = "reference (numpy)"
TORCH = "torch eager"
SKLEARN = "sklearn MLPClassifier"
GEMMS = "its GEMMs alone (np.matmul)"
GEMMS_OWN = "its GEMMs alone (the BLAS its kernels call)"
FASTBP_ONE_CALL = "fastbp (numba), 1 epoch per fit call"

ONE_THREAD = "1 thread per pool (threadpoolctl limits=1, torch.set_num_threads(1))"
DEFAULT_THREADS = "default thread counts, one implementation per block after a warm-up"
# the bound of a training step or epoch: its matrix products alone (the yardstick's bound)
BOUND = GEMMS


# --------------------------------------------------------------------------- settings
class Settings:
    """How hard to measure: --quick trades precision for time."""

    def __init__(self, quick):
        self.quick = quick
        self.repeat = 3 if quick else 7          # timed runs of fast things (median)
        self.slow_repeat = 1 if quick else 3     # timed runs of slow things (0.1 s and up)
        self.call_seconds = 0.05 if quick else 0.2   # length of one timed fastbp call in A
        self.torch_samples = 50 if quick else 250   # per-sample torch loop, scaled to 500
        self.c_batches = 1 if quick else 2       # batches of 256 per timed run in C
        self.c_rounds = 1 if quick else 5
        self.warmup = 0 if quick else 1          # untimed runs before timing (after checks)
        self.cliff_runs = 3                      # timed runs per block (after a warm-up)
        self.cliff_rounds = 2 if quick else 8    # rounds of alone / alone / alternating
        self.import_runs = 1 if quick else 3


# --------------------------------------------------------------------------- helpers
def perf_times(fn, repeat, number=1, warmup=1):
    """Seconds per call of ``fn`` for ``repeat`` runs of ``number`` calls."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        out.append((time.perf_counter() - t0) / number)
    return out


def torch_module():
    try:
        import torch
    except Exception:
        return None
    return torch


def sklearn_mlp():
    try:
        from sklearn.neural_network import MLPClassifier
    except Exception:
        return None
    return MLPClassifier


def interleave(fns, rounds, warmup=1):
    """{name: fn} -> {name: [seconds of each call]}: the calls take turns, round by
    round, so a change in the machine's load falls on every implementation alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    out = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            out[k].append(time.perf_counter() - t0)
    return out


@contextlib.contextmanager
def one_thread():
    """Every BLAS/OpenMP pool loaded so far, and PyTorch's, limited to one thread."""
    from threadpoolctl import threadpool_limits

    torch = torch_module()
    saved = torch.get_num_threads() if torch is not None else None
    with threadpool_limits(limits=1):
        if torch is not None:
            torch.set_num_threads(1)
        try:
            yield
        finally:
            if torch is not None:
                torch.set_num_threads(saved)


def load_pools():
    """Load the BLAS libraries (NumPy's, and SciPy's that scikit-learn and Numba's
    ``np.dot`` use) and PyTorch before any thread limit is set, so threadpoolctl sees
    all of them."""
    import scipy.linalg  # noqa: F401  (SciPy's OpenBLAS)

    import fastbp.kernels  # noqa: F401
    torch_module()


def pools():
    from threadpoolctl import threadpool_info

    return [dict(library=os.path.basename(p.get("filepath", "?")), api=p.get("user_api"),
                 threads=p.get("num_threads")) for p in threadpool_info()]


def max_diff(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def weights_diff(wa, wb):
    return max(max_diff(x, y) for x, y in zip(wa, wb))


def _short(workload):
    """A workload's label for the chart: its key and what distinguishes it."""
    short = workload.split(" (")[0]
    for long, brief in (("per-sample ", ""), ("digits 64-128-64-10 ReLU", "digits"),
                        ("CIFAR-shaped 3072-1024-512-10 ReLU, batch 256", "CIFAR-shaped"),
                        (" +BatchNorm +Dropout(0.2)", " BN+dropout"), ("softmax-CE", "CE")):
        short = short.replace(long, brief)
    unit = workload.rsplit("(", 1)[-1].split(",")[0].rstrip(")")
    return f"{short} [{unit}]"


class Report:
    """Collects timing rows, other figures and target checks."""

    def __init__(self):
        self.rows, self.figures, self.targets, self.notes = [], [], [], []

    def time(self, group, workload, impl, times, unit, threads, agreement=None,
             agreement_with=None, note=""):
        row = dict(group=group, workload=workload, short=_short(workload), impl=impl,
                   time_s=float(np.median(times)),
                   times_s=[float(t) for t in times], unit=unit, threads=threads,
                   agreement=None if agreement is None else float(agreement),
                   agreement_with=agreement_with, note=note)
        self.rows.append(row)
        return row

    def skip(self, group, workload, impl, why):
        self.rows.append(dict(group=group, workload=workload, impl=impl, time_s=None,
                              times_s=[], unit=None, threads=None, agreement=None,
                              agreement_with=None, note=why))

    def figure(self, group, name, value, unit, note=""):
        self.figures.append(dict(group=group, name=name, value=value, unit=unit, note=note))

    def target(self, group, name, value, op, goal, unit=""):
        """Record ``value op goal`` (op ">=" or "<="); value None = not measured."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            met, margin = None, None
        elif op == ">=":
            met = value >= goal
            margin = value / goal if goal else math.inf
        else:
            met = value <= goal
            margin = (goal / value if value > 0 else math.inf)
        self.targets.append(dict(group=group, name=name, value=value, op=op, target=goal,
                                 unit=unit, met=met, margin=margin))

    def ratios(self):
        """On every row: ratio_to_fastbp (time / fastbp's time in the same workload) and
        ratio_to_bound (time / the time of the workload's :data:`BOUND` row, if any)."""
        for key, impl in (("ratio_to_fastbp", FASTBP), ("ratio_to_bound", BOUND)):
            base = {r["workload"]: r["time_s"] for r in self.rows
                    if r["impl"] == impl and r["time_s"]}
            for r in self.rows:
                b = base.get(r["workload"])
                r[key] = (r["time_s"] / b) if (b and r["time_s"]) else None


# --------------------------------------------------------------------------- formatting
def fmt_time(t):
    if t is None:
        return "—"
    if t >= 1:
        return f"{t:.3g} s"
    if t >= 1e-3:
        return f"{t * 1e3:.3g} ms"
    return f"{t * 1e6:.3g} µs"


def fmt_num(v, unit=""):
    if v is None:
        return "—"
    if unit == "s":
        return fmt_time(v)
    if unit == "B":
        a = abs(v)
        if a >= 2**20:
            return f"{v / 2**20:.1f} MiB"
        if a >= 2**10:
            return f"{v / 2**10:.1f} KiB"
        return f"{v:.4g} B"
    if unit == "x":
        return f"{v:,.0f}×" if abs(v) >= 100 else f"{v:.3g}×"
    if isinstance(v, float) and v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5):
        return f"{v:.2g}"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def fmt_diff(d):
    return "—" if d is None else f"{d:.1e}"
