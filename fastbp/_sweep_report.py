"""What a sweep shows: one line per run, a progress bar with the best so far, the summary."""
import json
import sys

import numpy as np


def _value(v):
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return "-".join(_value(x) for x in v)
    return str(v)


def params_text(params):
    return " ".join(f"{k}={_value(v)}" for k, v in params.items()) or "(one run)"


def default_metric(records):
    """final_val_loss when the runs had validation data, else final_loss."""
    if any(r.get("final_val_loss") is not None for r in records):
        return "final_val_loss"
    return "final_loss"


def _higher_is_better(metric):
    return "accuracy" in metric


def run_line(rec, index, total):
    head = f"  [{index}/{total}] {params_text(rec['params'])}: "
    epochs = rec.get("epochs_run") or 0
    n = f"{epochs:,} epoch" + ("" if epochs == 1 else "s")
    if rec["status"] != "ok":
        return head + f"failed after {n} ({rec['error']})"
    loss = rec["loss"]
    first = f"{loss[0]:.6g}" if loss and loss[0] is not None else "n/a"
    line = head + f"first-epoch loss {first}, final loss {rec['final_loss']:.6g} after {n}"
    if rec.get("final_val_loss") is not None:
        line += f", validation loss {rec['final_val_loss']:.6g}"
    return line + f" ({rec['seconds']:.2f} s)"


class Reporter:
    """The running report: lines through ``log``, a tqdm bar on a terminal."""

    def __init__(self, total, earlier, progress, log, on_record):
        self.total, self.index, self.log, self.on_record = total, 0, log, on_record
        self.metric = default_metric(earlier)
        self.best = None
        for rec in earlier:
            self._consider(rec)
        if progress is None:
            progress = sys.stderr.isatty()
        self.bar = None
        if progress:
            from tqdm.auto import tqdm
            self.bar = tqdm(total=total, unit="run", leave=True)

    def params(self, task):
        return params_text(task["params"])

    def note(self, line):
        """One line of the report (above the bar, when there is one)."""
        if self.bar is None:
            self.log(line)
        else:
            with self.bar.external_write_mode():
                self.log(line)

    def _consider(self, rec):
        if rec["status"] != "ok":
            return
        if self.metric == "final_loss" and rec.get("final_val_loss") is not None:
            self.metric, self.best = "final_val_loss", None
        value = rec.get(self.metric)
        if value is None:
            return
        sign = -1 if _higher_is_better(self.metric) else 1
        if self.best is None or sign * value < sign * self.best[0]:
            self.best = (value, rec["params"])

    def record(self, rec):
        self.index += 1
        self._consider(rec)
        self.note(run_line(rec, self.index, self.total))
        if self.bar is not None:
            self.bar.update(1)
            if self.best is not None:
                self.bar.set_postfix_str(f"best {self.metric} {self.best[0]:.4g} "
                                         f"({params_text(self.best[1])})")
        if self.on_record is not None:
            self.on_record(rec)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


# --------------------------------------------------------------------------- summary
def summarize(records, metric=None):
    """Group the runs by their settings other than ``seed``; best group first.

    Returns a list of dicts: ``params`` (the group's grid values without the
    seed), ``runs``, ``ok``, ``seeds``, and over the group's finished runs the
    ``mean``, ``std`` (sample standard deviation; 0 for one run), ``min`` and
    ``max`` of ``metric`` (default: final_val_loss with validation data, else
    final_loss), None when no run of the group finished.
    """
    records = list(records)
    metric = metric or default_metric(records)
    groups = {}
    for r in records:
        p = {k: v for k, v in r["params"].items() if k != "seed"}
        groups.setdefault(json.dumps(p, sort_keys=True), (p, []))[1].append(r)
    rows = []
    for p, rs in groups.values():
        vals = np.array([r[metric] for r in rs if r["status"] == "ok"
                         and r.get(metric) is not None], dtype=np.float64)
        stats = dict(mean=None, std=None, min=None, max=None)
        if vals.size:
            stats = dict(mean=float(vals.mean()),
                         std=float(vals.std(ddof=1)) if vals.size > 1 else 0.0,
                         min=float(vals.min()), max=float(vals.max()))
        rows.append(dict(params=p, metric=metric, runs=len(rs),
                         ok=sum(r["status"] == "ok" for r in rs),
                         seeds=[r["params"]["seed"] for r in rs if "seed" in r["params"]],
                         **stats))
    sign = -1 if _higher_is_better(metric) else 1
    rows.sort(key=lambda r: (r["mean"] is None, 0 if r["mean"] is None else sign * r["mean"]))
    return rows


def format_summary(rows, top=10):
    """The summary as a text table (the ``top`` best groups)."""
    if not rows:
        return "no runs"
    metric = rows[0]["metric"]
    names = list(rows[0]["params"])
    repeats = max(r["runs"] for r in rows)
    over = (f"mean ± std over {repeats} seeds" if any(r["seeds"] for r in rows) and repeats > 1
            else "one run each")
    spread = repeats > 1
    head = ["rank"] + names + [f"{metric} ({over})"] + (["min", "max"] if spread else []) \
        + ["ok/runs"]
    table = []
    for i, r in enumerate(rows[:top], 1):
        if r["mean"] is None:
            stats = ["failed"] + (["", ""] if spread else [])
        else:
            pm = f" ± {r['std']:.3g}" if r["runs"] > 1 else ""
            stats = [f"{r['mean']:.6g}{pm}"] + ([f"{r['min']:.6g}", f"{r['max']:.6g}"]
                                                 if spread else [])
        table.append([str(i)] + [_value(r["params"][n]) for n in names] + stats
                     + [f"{r['ok']}/{r['runs']}"])
    widths = [max(len(row[j]) for row in [head] + table) for j in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()
             for row in [head] + table]
    if len(rows) > top:
        lines.append(f"... and {len(rows) - top} more configurations")
    return "\n".join(lines)
