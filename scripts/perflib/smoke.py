"""Run every benchmark of the asv suite once: setup_cache, setup, one call, teardown.

    python scripts/perflib/smoke.py [asv_bench/benchmarks] [--match REGEX]

``asv check`` only imports the suite; this runs it, so a benchmark whose setup
or body is broken fails (exit 1, naming it and its error). Prints one line per
benchmark with the seconds its setup and call took.
"""
import argparse
import os
import re
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from perflib.suite import Instance, discover  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_one(bench):
    t0 = time.perf_counter()
    inst = Instance(bench)
    t1 = time.perf_counter()
    try:
        value = inst.call()
    finally:
        inst.teardown()
    return t1 - t0, time.perf_counter() - t1, value


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("bench_dir", nargs="?", default=os.path.join(ROOT, "asv_bench", "benchmarks"))
    p.add_argument("--match", default=None, help="only benchmarks whose id matches REGEX")
    args = p.parse_args(argv)
    rx = re.compile(args.match) if args.match else None
    benches = [b for b in discover(args.bench_dir) if rx is None or rx.search(b.id)]
    failed = []
    t_all = time.perf_counter()
    for b in benches:
        try:
            setup_s, call_s, value = run_one(b)
            shown = "" if b.kind == "time" else f" -> {value:.4g}"
            print(f"ok    {b.id}  (setup {setup_s:.2f} s, call {call_s:.3f} s){shown}",
                  flush=True)
        except Exception:
            failed.append(b.id)
            print(f"FAIL  {b.id}\n{traceback.format_exc()}", flush=True)
    print(f"{len(benches) - len(failed)} of {len(benches)} benchmarks ran "
          f"in {time.perf_counter() - t_all:.0f} s")
    if failed:
        print("broken: " + ", ".join(failed))
    return 1 if failed or not benches else 0


if __name__ == "__main__":
    sys.exit(main())
