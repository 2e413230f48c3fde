"""Paired comparison of two commits' timings.

Each sample of BASE is taken right next to one of HEAD (same round, same
benchmark, the order alternating), so the machine's load at that moment falls
on both: the statistic is the ratio HEAD/BASE of each pair. The estimate is
the median of these ratios; a change is *significant* when the Wilcoxon
signed-rank test on their logarithms gives p < ALPHA and every round (a fresh
pair of processes) moves the same way -- a difference that one pair of
processes happens to show is not enough.
"""
import math

import numpy as np

ALPHA = 0.01


def summarize(pairs_by_round, factor):
    """{ratio, lo, hi, p, significant, verdict, before, after} of one benchmark.

    pairs_by_round: [[(base_seconds, head_seconds), ...] per round]. lo / hi:
    the smallest and largest per-round median ratio. verdict: "slower" (ratio
    above ``factor``, significant), "faster" (below 1/factor, significant),
    or "same".
    """
    from scipy.stats import wilcoxon

    pairs = [p for r in pairs_by_round for p in r]
    base = np.array([p[0] for p in pairs])
    head = np.array([p[1] for p in pairs])
    logs = np.log(head / base)
    ratio = float(np.exp(np.median(logs)))
    per_round = [float(np.exp(np.median(np.log([h / b for b, h in r]))))
                 for r in pairs_by_round if r]
    if len(logs) >= 6 and np.any(logs != 0):
        p = float(wilcoxon(logs).pvalue)
    else:
        p = 1.0
    same_way = all(r > 1 for r in per_round) or all(r < 1 for r in per_round)
    significant = bool(p < ALPHA and same_way)
    verdict = "same"
    if significant and ratio > factor:
        verdict = "slower"
    elif significant and ratio < 1 / factor:
        verdict = "faster"
    return dict(ratio=ratio, lo=min(per_round), hi=max(per_round), p=p,
                significant=significant, verdict=verdict, n=len(pairs),
                before=float(np.median(base)), after=float(np.median(head)))


def fmt_time(t):
    if t is None or not math.isfinite(t):
        return "—"
    for scale, unit in ((1, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if t >= scale:
            return f"{t / scale:.3g} {unit}"
    return f"{t * 1e9:.3g} ns"
