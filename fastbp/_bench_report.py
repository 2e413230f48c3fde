"""fastbp bench's output: the printed tables, the environment, the JSON and the bar chart."""
import math
import os
import platform

import numpy as np

from ._bench_core import FASTBP, SKLEARN, TORCH, fmt_diff, fmt_num, fmt_time, pools, torch_module
from ._version import __version__


GROUPS = {"A": "A. Per-sample SGD (one update per sample)",
          "B": "B. Mini-batch SGD on the digits, lr 0.05, one epoch",
          "C": "C. Large batch: one training step",
          "K": "K. scikit-learn estimators (fastbp.sklearn vs sklearn.neural_network), fit"}
FIGURE_GROUPS = {"C": "C. Other figures", "T": "T. Thread pools (default thread counts)",
                 "M": "M. Memory", "S": "S. Start-up (subprocesses)"}


def _ratio(v):
    return "—" if v is None else (f"{v:.3g}" if v < 100 else f"{v:,.0f}")


def _format_rows(rows, title, add):
    """One table of timing rows: median, × fastbp, × bound, agreement, note."""
    threads = sorted({r["threads"] for r in rows if r["threads"]})
    add("")
    add(f"{title}   [threads: {'; '.join(threads)}]")
    add(f"  {'implementation':<44}{'median':>11}{'× fastbp':>10}{'× bound':>9}  "
        f"{'agreement':>9}  note")
    last = None
    for r in rows:
        if r["workload"] != last:
            add(f" {r['workload']}")
            last = r["workload"]
        note = r["note"]
        if r["agreement_with"] and r["impl"] != FASTBP:
            note = (note + "; " if note else "") + f"agreement vs {r['agreement_with']}"
        add(f"  {r['impl']:<44}{fmt_time(r['time_s']):>11}"
            f"{_ratio(r.get('ratio_to_fastbp')):>10}{_ratio(r.get('ratio_to_bound')):>9}  "
            f"{fmt_diff(r['agreement']):>9}  {note}")


def _target_status(t):
    if t["met"] is None:
        return "not measured"
    if t["met"]:
        return "met" + (f" ({t['margin']:.3g}× margin)"
                        if t["margin"] not in (None, math.inf) else "")
    if t["op"] == ">=":
        return f"NOT MET (needs {1 / t['margin']:.3g}× more)"
    if t["target"] > 0:
        return f"NOT MET ({t['value'] / t['target']:.3g}× over)"
    return f"NOT MET ({fmt_num(t['value'], t['unit'])} over)"


def format_report(rep, meta):
    """The printed report: the environment, one table per group, figures, targets."""
    lines = []
    add = lines.append
    add(f"fastbp bench ({meta['command']})")
    env = meta["environment"]
    add("  " + ", ".join(f"{k} {v}" for k, v in env["versions"].items())
        + f"; {env['cpus']} CPUs; {env['platform']}")
    add("  time = median of the runs; × fastbp = time / fastbp's time (above 1: fastbp is "
        "faster);")
    add("  × bound = time / the time of the same work's matrix products alone (1 is the bound);")
    add("  agreement = max |weight difference| vs fastbp after the same work from the same "
        "weights.")
    for g, title in GROUPS.items():
        rows = [r for r in rep.rows if r["group"] == g]
        if rows:
            _format_rows(rows, title, add)
    for g, title in FIGURE_GROUPS.items():
        figs = [f for f in rep.figures if f["group"] == g]
        if figs:
            add("")
            add(title)
            for f in figs:
                add(f"  {f['name']:<74}{fmt_num(f['value'], f['unit']):>12}  {f['note']}")
    if rep.targets:
        add("")
        add("Targets")
        for t in rep.targets:
            if t["unit"] == "diff":
                goal, val = f"{t['op']} {t['target']:.0e}", fmt_diff(t["value"])
            else:
                goal = f"{t['op']} {fmt_num(t['target'], t['unit'])}"
                val = fmt_num(t["value"], t["unit"])
            add(f"  {t['name']:<66}{val:>11}  {goal:<10} {_target_status(t)}")
    for n in rep.notes:
        add(f"  note: {n}")
    return "\n".join(lines)


def environment():
    import numba
    import scipy

    versions = {"fastbp": __version__, "numpy": np.__version__,
                "numba": numba.__version__, "scipy": scipy.__version__}
    torch = torch_module()
    if torch is not None:
        versions["torch"] = torch.__version__
    try:
        import sklearn
        versions["scikit-learn"] = sklearn.__version__
    except Exception:
        pass
    return dict(versions=versions, cpus=os.cpu_count(), python=platform.python_version(),
                platform=platform.platform(terse=True), pools=pools())


def plot_rows(rep):
    short_impl = {TORCH: "torch eager", SKLEARN: "sklearn MLPClassifier"}
    out = []
    for r in rep.rows:
        if r["time_s"] and r["group"] in ("A", "B", "C"):
            impl = next((v for k, v in short_impl.items() if r["impl"].startswith(k)), r["impl"])
            out.append({"workload": r["short"], "impl": impl, "time_s": r["time_s"]})
    return out


def plot(rows, path):
    from .plot import plot_benchmark

    n_w = len({r["workload"] for r in rows})
    height = max(4.0, 1.4 + 0.3 * len(rows) + 0.35 * n_w)
    return plot_benchmark(rows, path, title="fastbp bench: median time per epoch or step "
                                            "(log scale; × = time / fastbp's)",
                          figsize=(13.0, height), baseline=FASTBP)


def json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.bool_):
        return bool(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
