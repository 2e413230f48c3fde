"""``scripts/perf-compare BASE [HEAD]``: did HEAD make fastbp slower than BASE?

Exports both commits (``commits.export``), then, round after round, starts a
fresh worker process per commit on HEAD's benchmark suite, sets every gated
benchmark up in both, and takes samples of BASE and HEAD in turns (ABAB...,
the first alternating per round). Prints one row per benchmark and exits 1
when any is slower than ``--factor`` with significance (``stats.summarize``),
2 when a benchmark or a commit cannot run, 0 otherwise.
"""
import argparse
import json
import math
import os
import re
import sys
import time

from . import commits, stats

# rounds (fresh process pairs), sample pairs per benchmark per round, seconds per sample
MODES = {"quick": dict(rounds=3, samples=8, sample_s=0.04),
         "full": dict(rounds=5, samples=12, sample_s=0.1)}


def build_parser():
    p = argparse.ArgumentParser(
        prog="scripts/perf-compare",
        description="Benchmark two commits of fastbp side by side on this machine; exit 1 "
                    "if HEAD is significantly slower than BASE by more than --factor.")
    p.add_argument("base", metavar="BASE", help="the commit to compare against (e.g. main)")
    p.add_argument("head", metavar="HEAD", nargs="?", default="HEAD",
                   help="the commit under test (default HEAD: commit your changes first)")
    p.add_argument("--quick", action="store_true",
                   help="per-sample and mini-batch benchmarks only, fewer samples "
                        "(catches 1.5x; a few minutes)")
    p.add_argument("--factor", type=float, default=1.2,
                   help="fail when a benchmark is this many times slower (default 1.2)")
    p.add_argument("--bench", metavar="REGEX", default=None,
                   help="only the gated benchmarks whose id matches REGEX")
    p.add_argument("--rounds", type=int, default=None, help="rounds of fresh processes")
    p.add_argument("--samples", type=int, default=None, help="sample pairs per round")
    p.add_argument("--threads", choices=["1", "default"], default="1",
                   help="BLAS/OpenMP threads in the benchmark processes (default 1: less "
                        "noise on a shared machine)")
    p.add_argument("--repo", default=".", help="the git repository (default: here)")
    p.add_argument("--workdir", default=None,
                   help=f"where commits are exported and kept (default "
                        f"{commits.default_workdir()})")
    p.add_argument("--fresh", action="store_true", help="export again (empty Numba caches)")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    p.add_argument("--log", metavar="PATH", help="the workers' stderr (default: discarded)")
    return p


def _ids(worker, quick, pattern):
    gates = worker.ask(op="list")["ids"]
    wanted = ("quick",) if quick else ("quick", "full")
    rx = re.compile(pattern) if pattern else None
    return [i for i, g in gates.items() if g in wanted and (rx is None or rx.search(i))]


def _setup(workers, ids, failed):
    """Set ``ids`` up in every worker, all at once (setup is not timed, and compiling in
    parallel takes a larger share of a busy machine); a failure leaves the benchmark
    out, noted per side."""
    for w in workers.values():
        w.send(op="setup", ids=ids)
    live = list(ids)
    for side, w in workers.items():
        ans = w.receive()
        for i, tb in ans["errors"].items():
            failed.setdefault(i, {})[side] = tb.strip().splitlines()[-1]
        live = [i for i in live if i in ans["ok"]]
    return live


def _calibrate(worker, ids, sample_s):
    """Calls per sample so that one sample lasts about ``sample_s`` (from BASE's timing)."""
    out = {}
    for i in ids:
        t = worker.ask(op="time", id=i, number=1)["seconds"]
        out[i] = max(1, math.ceil(sample_s / max(t, 1e-9)))
    return out


def measure(args, mode, sources, bench_dir, log, first="head"):
    """Time the gated benchmarks of every commit in ``sources`` ({side: export}) in turns.

    Returns ({id: {side: [[seconds per call, ...] per round]}}, {id: {side: error}},
    {id: calls per sample}). Benchmarks are listed by the ``first`` side's worker;
    calls per sample are calibrated on the other side's (BASE's) first worker.
    """
    samples, failed, numbers, ids = {}, {}, None, None
    sides = list(sources)
    for r in range(mode["rounds"]):
        order = sides if r % 2 == 0 else sides[::-1]
        workers = {}
        try:
            for side in order:
                workers[side] = commits.Worker(args.python, sources[side], bench_dir,
                                               args.threads == "1", log)
            if ids is None:
                ids = _ids(workers[first], args.quick, args.bench)
                print(f"{len(ids)} benchmarks, {mode['rounds']} rounds of {mode['samples']} "
                      f"samples", flush=True)
            live = _setup(workers, [i for i in ids if i not in failed], failed)
            if numbers is None:
                numbers = _calibrate(workers[sides[0]], live, mode["sample_s"])
            for i in live:
                got = samples.setdefault(i, {k: [] for k in sides})
                for k in sides:
                    got[k].append([])
                for s in range(mode["samples"]):
                    for k in (order if s % 2 == 0 else order[::-1]):
                        t = workers[k].ask(op="time", id=i, number=numbers[i])["seconds"]
                        got[k][-1].append(t)
        finally:
            for w in workers.values():
                w.close()
        print(f"  round {r + 1}/{mode['rounds']} done", flush=True)
    return samples, failed, numbers or {}


def paired(per_side):
    """[[(base, head), ...] per round] from {side: [[seconds, ...] per round]}."""
    return [list(zip(b, h)) for b, h in zip(per_side["base"], per_side["head"])]


def report(results, failed, factor):
    """The table, as lines."""
    width = max([len(i) for i in list(results) + list(failed)] + [9])
    lines = [f"{'benchmark':<{width}}  {'before':>9}  {'after':>9}  {'ratio':>6}  "
             f"{'rounds':>11}  {'p':>7}  significant  verdict"]
    for i, r in sorted(results.items(), key=lambda kv: -kv[1]["ratio"]):
        lines.append(f"{i:<{width}}  {stats.fmt_time(r['before']):>9}  "
                     f"{stats.fmt_time(r['after']):>9}  {r['ratio']:>6.3f}  "
                     f"{r['lo']:>5.2f}-{r['hi']:<5.2f}  {r['p']:>7.1e}  "
                     f"{'yes' if r['significant'] else 'no':<11}  "
                     + {"slower": f"SLOWER (> {factor:g}x)", "faster": "faster",
                        "same": "-"}[r["verdict"]])
    for i, sides in sorted(failed.items()):
        what = "; ".join(f"{k}: {v}" for k, v in sides.items())
        lines.append(f"{i:<{width}}  not compared ({what})")
    return lines


def run(args):
    t0 = time.perf_counter()
    mode = dict(MODES["quick" if args.quick else "full"])
    mode.update({k: getattr(args, k) for k in ("rounds", "samples") if getattr(args, k)})
    repo = commits.git(args.repo, "rev-parse", "--show-toplevel")
    shas = {"base": commits.resolve(repo, args.base), "head": commits.resolve(repo, args.head)}
    workdir = args.workdir or commits.default_workdir()
    sources = {k: commits.export(repo, sha, workdir, args.fresh) for k, sha in shas.items()}
    bench_dir = os.path.join(sources["head"], "asv_bench", "benchmarks")
    print(f"perf-compare {args.base} ({shas['base'][:10]}) -> {args.head} "
          f"({shas['head'][:10]}), {'quick' if args.quick else 'full'} mode, factor "
          f"{args.factor:g}; HEAD's benchmarks", flush=True)
    log = open(args.log, "a") if args.log else None
    try:
        samples, failed, numbers = measure(args, mode, sources, bench_dir, log)
    finally:
        if log:
            log.close()
    results = {i: stats.summarize(paired(s), args.factor) for i, s in samples.items()
               if i not in failed}
    print("\n".join(report(results, failed, args.factor)))
    slower = sorted(i for i, r in results.items() if r["verdict"] == "slower")
    broken = sorted(i for i, s in failed.items() if "head" in s and "base" not in s)
    seconds = time.perf_counter() - t0
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(base=shas["base"], head=shas["head"], mode=mode, factor=args.factor,
                           results=results, failed=failed, calls_per_sample=numbers,
                           slower=slower, broken=broken, seconds=seconds), f, indent=1)
    if slower:
        print(f"\nSLOWER by more than {args.factor:g}x: " + ", ".join(slower))
    if broken:
        print("\nBROKEN on HEAD (works on BASE): " + ", ".join(broken))
    if not slower and not broken:
        print(f"\nno benchmark slower by more than {args.factor:g}x")
    print(f"perf-compare took {seconds:.0f} s")
    return 1 if slower else (2 if broken else 0)


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.factor <= 1:
        parser.error("--factor must be above 1")
    args.python = commits.python_with_deps()
    try:
        return run(args)
    except RuntimeError as exc:
        print(f"perf-compare: {exc}", file=sys.stderr)
        return 2
