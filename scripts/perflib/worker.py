"""A benchmark worker: times the benchmarks of one suite against one commit's fastbp.

Started by ``commits.Worker`` with ``PYTHONPATH`` set to a commit's export, it
reads one JSON request per line on stdin and answers one JSON line each:

    {"op": "list"}                     -> {"ids": {id: gate}}
    {"op": "setup", "ids": [...]}      -> {"ok": [...], "errors": {id: traceback}}
    {"op": "time", "id": I, "number": N} -> {"seconds": per call}
    {"op": "quit"}

Anything the benchmarks print goes to stderr; stdout carries only the answers.
"""
import gc
import json
import os
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from perflib.suite import Instance, discover  # noqa: E402


def check_source(expected):
    """Raise unless ``import fastbp`` finds the commit under test (not an installed copy)."""
    import fastbp

    where = os.path.realpath(os.path.dirname(fastbp.__file__))
    if expected and not where.startswith(os.path.realpath(expected) + os.sep):
        raise RuntimeError(f"fastbp imported from {where}, not from {expected}")
    return where


def time_calls(fn, number):
    """Seconds per call of ``number`` calls of ``fn``, the garbage collector paused."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        return (time.perf_counter() - t0) / number
    finally:
        if enabled:
            gc.enable()


def serve(bench_dir, inp, out):
    benches = {b.id: b for b in discover(bench_dir)}
    ready = {}
    for line in inp:
        req = json.loads(line)
        op = req["op"]
        if op == "quit":
            break
        if op == "list":
            answer = {"ids": {i: b.gate() for i, b in benches.items()}}
        elif op == "setup":
            ok, errors = [], {}
            for i in req["ids"]:
                try:
                    ready[i] = Instance(benches[i])
                    ok.append(i)
                except Exception:
                    errors[i] = traceback.format_exc(limit=-4)
            answer = {"ok": ok, "errors": errors}
        elif op == "time":
            answer = {"seconds": time_calls(ready[req["id"]].call, int(req["number"]))}
        else:
            answer = {"error": f"unknown op {op!r}"}
        out.write(json.dumps(answer) + "\n")
        out.flush()
    for inst in ready.values():
        inst.teardown()


def main():
    bench_dir = sys.argv[1]
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())      # benchmark output -> stderr
    check_source(os.environ.get("FASTBP_PERF_SOURCE"))
    serve(bench_dir, sys.stdin, answers)


if __name__ == "__main__":
    main()
