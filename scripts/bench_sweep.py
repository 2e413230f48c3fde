#!/usr/bin/env python3
"""Benchmark fastbp.sweep's executors on a 40-run grid.

The grid: 10 learning rates (0.02, 0.04, ..., 0.2) x 4 model seeds on seed 001's
network and data: the [2, 4, 4, 1] sigmoid network, weights uniform in [0, 1),
per-sample SGD without shuffling on the 500 linear points, for a fixed number
of epochs (no early stop). The same 40 runs go

- one after another in this process (``workers=0``), the baseline;
- through the local process pool (``workers=2`` by default);
- through a Dask ``LocalCluster`` with 2 worker processes of one thread each
  (started before the clock starts; its start-up is reported apart).

Each executor is timed end to end (``fastbp.sweep`` from call to return:
starting workers, warming the kernels, the runs, collecting the records).
Each of ``--rounds`` rounds times the serial baseline and one executor in
turn, so that the machine's load drifts over both alike; a speedup is the
median over rounds of (the round's serial time / the executor's time). The
Dask cluster runs only during its own rounds: its threads in this process
would make the local pool spawn its workers instead of forking them.
The overhead per run is
the worker time not spent inside the runs: (workers x wall - sum of the runs'
own seconds) / runs, and separately the wall time per run of 40 one-epoch
runs on the XOR points. Every executor must give the same weights, bit for bit.

A control shows what the machine allows at the moment: the same 40 trainings as
plain ``fit`` loops in N bare forked processes (no sweep machinery), against
the same loop in this process, timed in the local pool's rounds. On a busy machine the executors can only come
as close to N times as this ceiling does.

    python scripts/bench_sweep.py [--epochs 2000] [--rounds 5] [--workers 2] [--json PATH]
"""
import argparse
import json
import os
import sys
import time

import fastbp as fb

LRS = [round(0.02 * k, 2) for k in range(1, 11)]
SEEDS = [0, 1, 2, 3]
TARGETS = {"local": 1.8, "dask": 1.6}


def timed(grid, settings, **how):
    t0 = time.perf_counter()
    recs = fb.sweep(grid, **settings, **how)
    return time.perf_counter() - t0, recs


def measure(name, walls_recs, n_workers, results):
    """Record one executor's rounds: ``walls_recs`` is ``[(wall, records)]``."""
    walls = [wall for wall, _ in walls_recs]
    best, recs = min(walls_recs, key=lambda r: r[0])
    inside = sum(r["seconds"] for r in recs)      # the runs' own time in the best round
    results[name] = {"walls_s": walls, "wall_s": best, "runs": len(recs),
                     "sum_run_s": inside, "workers": n_workers,
                     "overhead_per_run_s": (n_workers * best - inside) / len(recs),
                     "weights": [r["weights_sha256"] for r in recs]}


def rounds(executors, grid, settings, n, control=None):
    """``{name: [(wall, records)] * n}``, the executors taking turns in every round;
    with ``control=(workers, epochs)`` also the bare loops' walls, in the same turns
    (``"bare"``: in this process, ``"bare pool"``: in the worker processes)."""
    out = {name: [] for name in executors}
    for _ in range(n):
        for name, how in executors.items():
            out[name].append(timed(grid, settings, **how))
        if control is not None:
            out.setdefault("bare", []).append(_bare(0, control[1]))
            out.setdefault("bare pool", []).append(_bare(*control))
    return out


def _plain(runs, epochs):
    X, y = fb.datasets.generate_linear(500, seed=0)
    for lr, seed in runs:
        fb.MLP([2, 4, 4, 1], init="uniform", seed=seed).fit(
            X, y, epochs=epochs, lr=lr, batch_size=1, shuffle=False)


def _bare(n_workers, epochs):
    """The same 40 trainings as plain fit loops in ``n_workers`` forked processes
    (0: in this process); the wall time."""
    import multiprocessing as mp
    runs = [(lr, seed) for lr in LRS for seed in SEEDS]
    t0 = time.perf_counter()
    if n_workers == 0:
        _plain(runs, epochs)
    else:
        ctx = mp.get_context("fork")
        procs = [ctx.Process(target=_plain, args=(runs[i::n_workers], epochs))
                 for i in range(n_workers)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
    return time.perf_counter() - t0


def _median(xs):
    xs = sorted(xs)
    k = len(xs) // 2
    return xs[k] if len(xs) % 2 else (xs[k - 1] + xs[k]) / 2


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=2000, help="epochs per run (default 2000)")
    p.add_argument("--rounds", type=int, default=5, help="rounds; each times every executor once")
    p.add_argument("--workers", type=int, default=2, help="local pool and Dask workers")
    p.add_argument("--no-dask", action="store_true", help="skip the Dask cluster")
    p.add_argument("--json", metavar="PATH", help="write the figures as JSON")
    args = p.parse_args(argv)

    grid = {"lr": LRS, "seed": SEEDS}
    settings = dict(data="linear", sizes=[2, 4, 4, 1], activation="sigmoid", init="uniform",
                    batch_size=1, shuffle=False, epochs=args.epochs)
    tiny = dict(settings, data="xor", epochs=1)
    print(f"40 runs: lr {LRS[0]}..{LRS[-1]} x seeds {SEEDS}; [2, 4, 4, 1] sigmoid, uniform "
          f"init, per-sample SGD, 500 linear points, {args.epochs:,} epochs each; "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}", flush=True)
    fb.sweep({"lr": [0.1]}, workers=0, **dict(settings, epochs=1))     # kernels into memory
    res, over = {}, {}
    pairs = ["local"] + ([] if args.no_dask else ["dask"])
    serial = {}
    for name in pairs:
        cluster = None
        how = dict(workers=args.workers)
        if name == "dask":
            # Dask's threads in this process would make the local pool fork-unsafe (it
            # then spawns its workers), so the cluster lives only for its own rounds.
            from distributed import LocalCluster
            t0 = time.perf_counter()
            cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1,
                                   processes=True, dashboard_address=None)
            res["dask_cluster_start_s"] = time.perf_counter() - t0
            how = dict(scheduler=cluster.scheduler_address)
        try:
            executors = {"serial": dict(workers=0), name: how}
            timed_rounds = rounds(executors, grid, settings, args.rounds,
                                  control=(args.workers, args.epochs) if name == "local" else None)
            tiny_rounds = rounds(executors, grid, tiny, 1)
        finally:
            if cluster is not None:
                cluster.close()
        measure(name, timed_rounds[name], args.workers, res)
        measure(name, tiny_rounds[name], args.workers, over)
        res[name]["round_speedups"] = [s_wall / e_wall for (s_wall, _), (e_wall, _)
                                       in zip(timed_rounds["serial"], timed_rounds[name])]
        serial.setdefault("timed", []).extend(timed_rounds["serial"])
        serial.setdefault("tiny", []).extend(tiny_rounds["serial"])
        if "bare" in timed_rounds:
            ctl = timed_rounds["bare"], timed_rounds["bare pool"]
    measure("serial", serial["timed"], 1, res)
    measure("serial", serial["tiny"], 1, over)
    res["serial"]["round_speedups"] = [1.0]
    ok = True
    print(f"{'executor':<8} {'wall (best)':>12} {'rounds':>30} {'speedup (median)':>17} {'target':>7} "
          f"{'overhead/run':>13} {'tiny run':>9}")
    for name in ("serial", "local", "dask"):
        if name not in res:
            continue
        r = res[name]
        r["speedup"] = _median(r["round_speedups"])
        r["tiny_wall_per_run_s"] = over[name]["wall_s"] / over[name]["runs"]
        same = r["weights"] == res["serial"]["weights"]
        target = TARGETS.get(name)
        met = target is None or r["speedup"] >= target
        ok &= same
        print(f"{name:<8} {r['wall_s']:>10.2f} s {', '.join(f'{w:.2f}' for w in r['walls_s']):>30} "
              f"{r['speedup']:>16.2f}x {(f'{target}x' if target else ''):>7} "
              f"{1e3 * r['overhead_per_run_s']:>10.1f} ms {1e3 * r['tiny_wall_per_run_s']:>6.1f} ms"
              f"  {'' if target is None else ('met' if met else 'NOT MET')}"
              f"{'' if same else '  WEIGHTS DIFFER'}")
    if "dask_cluster_start_s" in res:
        print(f"(Dask LocalCluster start-up, not timed above: {res['dask_cluster_start_s']:.1f} s)")
    ceiling = _median([a / b for a, b in zip(*ctl)])
    print(f"control, bare fit loops: {min(ctl[0]):.2f} s in this process, {min(ctl[1]):.2f} s "
          f"in {args.workers} processes (best rounds): the machine allows {ceiling:.2f}x now "
          f"(median of rounds)")
    share = _median([b / w for b, w in zip(ctl[1], res["local"]["walls_s"])])
    print(f"the local pool's wall against the bare processes' in the same round: "
          f"{share:.3f} (median; 1 = no cost for the sweep machinery)")
    res["control"] = {"one_process_s": ctl[0], "processes_s": ctl[1], "ceiling": ceiling,
                      "bare_over_local": share}
    print(f"sum of the runs' own time: serial {res['serial']['sum_run_s']:.2f} s; every "
          f"executor gave the same weights: {'yes' if ok else 'NO'}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"results": res, "tiny": over, "epochs": args.epochs,
                       "load": os.getloadavg()}, f, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
