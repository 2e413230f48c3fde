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
starting workers, warming the kernels, the runs, collecting the records),
``--rounds`` times in turns; the best round counts. The overhead per run is
the worker time not spent inside the runs: (workers x wall - sum of the runs'
own seconds) / runs, and separately the wall time per run of 40 one-epoch
runs on the XOR points. Every executor must give the same weights, bit for bit.

A control shows what the machine allows at the moment: the same 40 trainings as
plain ``fit`` loops in N bare forked processes (no sweep machinery), against
the same loop in this process. On a busy machine the executors can only come
as close to N times as this ceiling does.

    python scripts/bench_sweep.py [--epochs 2000] [--rounds 2] [--workers 2] [--json PATH]
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


def measure(name, grid, settings, n_workers, rounds, results, **how):
    rounds = [timed(grid, settings, **how) for _ in range(rounds)]
    walls = [wall for wall, _ in rounds]
    best, recs = min(rounds, key=lambda r: r[0])
    inside = sum(r["seconds"] for r in recs)      # the runs' own time in the best round
    results[name] = {"walls_s": walls, "wall_s": best, "runs": len(recs),
                     "sum_run_s": inside, "workers": n_workers,
                     "overhead_per_run_s": (n_workers * best - inside) / len(recs),
                     "weights": [r["weights_sha256"] for r in recs]}


def _plain(runs, epochs):
    X, y = fb.datasets.generate_linear(500, seed=0)
    for lr, seed in runs:
        fb.MLP([2, 4, 4, 1], init="uniform", seed=seed).fit(
            X, y, epochs=epochs, lr=lr, batch_size=1, shuffle=False)


def control(n_workers, epochs, rounds):
    """Best-of-rounds wall time of the bare loops: (in this process, in n processes)."""
    import multiprocessing as mp
    runs = [(lr, seed) for lr in LRS for seed in SEEDS]
    ctx = mp.get_context("fork")
    one, many = [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        _plain(runs, epochs)
        one.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        procs = [ctx.Process(target=_plain, args=(runs[i::n_workers], epochs))
                 for i in range(n_workers)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        many.append(time.perf_counter() - t0)
    return min(one), min(many)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=2000, help="epochs per run (default 2000)")
    p.add_argument("--rounds", type=int, default=2, help="timed rounds per executor")
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
    measure("serial", grid, settings, 1, args.rounds, res, workers=0)
    measure("local", grid, settings, args.workers, args.rounds, res, workers=args.workers)
    ctl = control(args.workers, args.epochs, args.rounds)
    measure("serial", grid, tiny, 1, 1, over, workers=0)
    measure("local", grid, tiny, args.workers, 1, over, workers=args.workers)
    if not args.no_dask:
        from distributed import LocalCluster
        t0 = time.perf_counter()
        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        res["dask_cluster_start_s"] = time.perf_counter() - t0
        try:
            measure("dask", grid, settings, args.workers, args.rounds, res,
                    scheduler=cluster.scheduler_address)
            measure("dask", grid, tiny, args.workers, 1, over,
                    scheduler=cluster.scheduler_address)
        finally:
            cluster.close()
    base = res["serial"]["wall_s"]
    ok = True
    print(f"{'executor':<8} {'wall (best)':>12} {'rounds':>18} {'speedup':>8} {'target':>7} "
          f"{'overhead/run':>13} {'tiny run':>9}")
    for name in ("serial", "local", "dask"):
        if name not in res:
            continue
        r = res[name]
        r["speedup"] = base / r["wall_s"]
        r["tiny_wall_per_run_s"] = over[name]["wall_s"] / over[name]["runs"]
        same = r["weights"] == res["serial"]["weights"]
        target = TARGETS.get(name)
        met = target is None or r["speedup"] >= target
        ok &= same
        print(f"{name:<8} {r['wall_s']:>10.2f} s {', '.join(f'{w:.2f}' for w in r['walls_s']):>18} "
              f"{r['speedup']:>7.2f}x {(f'{target}x' if target else ''):>7} "
              f"{1e3 * r['overhead_per_run_s']:>10.1f} ms {1e3 * r['tiny_wall_per_run_s']:>6.1f} ms"
              f"  {'' if target is None else ('met' if met else 'NOT MET')}"
              f"{'' if same else '  WEIGHTS DIFFER'}")
    if "dask_cluster_start_s" in res:
        print(f"(Dask LocalCluster start-up, not timed above: {res['dask_cluster_start_s']:.1f} s)")
    print(f"control, bare fit loops: {ctl[0]:.2f} s in this process, {ctl[1]:.2f} s in "
          f"{args.workers} processes: the machine allows {ctl[0] / ctl[1]:.2f}x now")
    res["control"] = {"one_process_s": ctl[0], "processes_s": ctl[1],
                      "ceiling": ctl[0] / ctl[1]}
    print(f"sum of the runs' own time: serial {res['serial']['sum_run_s']:.2f} s; every "
          f"executor gave the same weights: {'yes' if ok else 'NO'}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"results": res, "tiny": over, "epochs": args.epochs,
                       "load": os.getloadavg()}, f, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
