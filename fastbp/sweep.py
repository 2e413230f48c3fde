"""Sweeps: many small trainings over a grid of settings, on this machine or a Dask cluster.

``fastbp.sweep(grid={"lr": [0.05, 0.1, 0.2], "seed": [0, 1, 2]}, data="xor")``
trains one network per point of the grid (the product of its axes) and
returns one record per run. The same function drives three executors, with
one code path for resuming, retrying, progress and results:

- ``workers=N`` (default: one per core): a local pool of worker processes,
  each with one BLAS thread; ``workers=0`` runs in this process;
- ``scheduler="tcp://host:8786"`` or a ``distributed.Client``: a Dask cluster
  (``pip install 'fastbp[dask]'``).

Every run builds its model with :func:`fastbp.MLP` and trains it with
``fit``, with BLAS held to one thread, so a configuration gives the same
bits on any executor and alone with ``fit``. With ``out=FILE`` every finished
run is appended to FILE as one JSON line (one ``write``, then ``fsync``); a
sweep started again with the same file skips the runs already there, so
Ctrl-C, a crash or a lost cluster costs only the runs in flight. A run that
diverges or raises is recorded with ``status="failed"`` and its error; a run
whose worker dies is run again elsewhere (``max_attempts`` times in all).

Before the runs fan out, this process trains each distinct network
configuration for one epoch on a few rows (:func:`fastbp._sweep_run.warm`):
every kernel the runs need is then compiled once and in Numba's disk cache.
Local workers are forked afterwards and inherit the compiled kernels (or, when
started by spawn/forkserver, load them from the cache); on Dask, one worker
per host warms first and the others load its cache. No two processes compile
the same kernel at the same time. Each record's ``compiles`` counts the Numba
compilations its worker made during the run (0 when the warm-up held).
"""
import itertools
import json
import os
import time
from pathlib import Path

from ._sweep_exec import LOST, SweepError, make_executor
from ._sweep_report import Reporter, format_summary, summarize
from ._sweep_run import PARAMS, DataSource, coerce, resolve, run_key, warm

__all__ = ["sweep", "load_results", "summarize", "format_summary", "SweepInterrupted",
           "SweepError", "PARAMS"]


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped the sweep. ``.records``: the runs finished (and kept) so far."""

    def __init__(self, message, records):
        super().__init__(message)
        self.records = records


def _silent(line):
    pass


# --------------------------------------------------------------------------- results file
class ResultsFile:
    """A JSON-lines results file: one finished run per line, appended whole."""

    def __init__(self, path):
        self.path = Path(path)
        if self.path.is_dir():
            raise ValueError(f"out {str(path)!r} is a folder; give a file name such as "
                             f"results.jsonl")
        self.fd = None

    def load(self):
        """``{key: record}`` of the runs in the file (a later line wins).

        A last line cut short (a crash in the middle of a write) is dropped
        from the file; its run will run again.
        """
        if not self.path.exists():
            return {}
        raw = self.path.read_bytes()
        lines = raw.split(b"\n")
        tail = lines.pop()
        if tail:
            try:
                self._parse(tail, len(lines) + 1)
                with open(self.path, "ab") as f:
                    f.write(b"\n")
                lines.append(tail)
            except ValueError:
                os.truncate(self.path, len(raw) - len(tail))
        records = {}
        for i, line in enumerate(lines, 1):
            if line.strip():
                rec = self._parse(line, i)
                records[rec["key"]] = rec
        return records

    def _parse(self, line, number):
        try:
            rec = json.loads(line)
        except ValueError:
            rec = None
        if not isinstance(rec, dict) or "key" not in rec or "status" not in rec:
            raise ValueError(f"{self.path}, line {number}: not a fastbp sweep record; is this "
                             f"the results file of a sweep?")
        return rec

    def append(self, record):
        line = (json.dumps(record, allow_nan=False, separators=(",", ":")) + "\n").encode()
        if self.fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        view = memoryview(line)
        while view:
            view = view[os.write(self.fd, view):]
        os.fsync(self.fd)

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def load_results(path):
    """The records of a sweep's results file, in the order they finished."""
    return list(ResultsFile(path).load().values())


# --------------------------------------------------------------------------- the grid
def _axis_name(name):
    if not isinstance(name, str):
        raise TypeError(f"grid keys must be parameter names, got {name!r}")
    return name.replace("-", "_")


def _check_grid(grid):
    if grid is None:
        return {}
    if not isinstance(grid, dict):
        raise TypeError(f"grid must be a dict {{parameter: [values]}}, got "
                        f"{type(grid).__name__}")
    axes = {}
    for name, values in grid.items():
        name = _axis_name(name)
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            raise ValueError(f"grid[{name!r}] must be a list of values, got {values!r}")
        values = [coerce(name, v) for v in values]
        if not values:
            raise ValueError(f"grid[{name!r}] is empty")
        axes[name] = values
    return axes


def _check_settings(settings, axes):
    fixed = {}
    for name, value in settings.items():
        if name not in PARAMS:
            raise TypeError(f"sweep() got an unexpected keyword argument {name!r}; the run "
                            f"settings are {', '.join(PARAMS)}")
        if name in axes:
            raise ValueError(f"{name} is both a grid axis and a fixed setting; give it once")
        fixed[name] = coerce(name, value)
    given = set(fixed) | set(axes)
    if {"sizes", "hidden"} <= given:
        raise ValueError("sizes fixes every layer, hidden only the hidden ones; give one of "
                         "them")
    return fixed


def _tasks(axes, fixed, source):
    desc = source.describe()
    tasks, seen = [], {}
    names = list(axes)
    for values in itertools.product(*(axes[n] for n in names)):
        point = dict(zip(names, values))
        config = resolve(point, fixed, source)
        key = run_key(config, desc)
        if key in seen:
            raise ValueError(f"the grid gives the same run twice: {seen[key]} and {point}")
        seen[key] = point
        tasks.append({"key": key, "params": point, "config": config, "data": desc,
                      "attempt": 1})
    return tasks


# --------------------------------------------------------------------------- the sweep
def sweep(grid, data="linear", out=None, scheduler=None, workers=None, *, data_options=None,
          retry_failed=False, max_attempts=3, progress=None, log=None, on_record=None,
          start_method=None, **settings):
    """Train one network per point of ``grid``; return one record per run.

    Parameters
    ----------
    grid : dict {parameter: list of values}
        The axes; the runs are their product, in order (the last axis varies
        fastest). Parameters: the model's (``sizes``, ``hidden``,
        ``activation``, ``output_activation``, ``loss``, ``reduction``,
        ``init``, ``batchnorm``, ``dropout``, ``bias``, ``dtype``,
        ``backend``, ``seed``) and ``fit``'s (``lr``, ``epochs``,
        ``batch_size``, ``shuffle``, ``optimizer``, ``momentum``,
        ``nesterov``, ``weight_decay``, ``betas``, ``eps``, ``lr_decay``,
        ``stop_at_accuracy``, ``patience``, ``min_delta``). Repeats over seeds
        are a ``seed`` axis.
    data : str, tuple or callable
        "linear", "xor", "digits" (its test split is the validation data), a
        CIFAR-10 batch file or folder, ``(X, y)`` or ``(X, y, X_val, y_val)``,
        or a picklable callable returning such a tuple (each worker calls it
        once; it must return the same data every time). Integer labels ``y``
        (n,) are turned into what each model needs (a 0/1 column, one-hot, or
        labels for cross-entropy); a 2-D ``y`` is used as given.
    out : path, optional
        The JSON-lines results file: appended to, and read first to skip the
        runs it already holds.
    scheduler : str or distributed.Client, optional
        Run on this Dask cluster instead of locally.
    workers : int, optional
        Local worker processes (default: one per core; 0: this process).
    data_options : dict, optional
        ``n`` and ``data_seed`` of the named data sets, ``max_records`` of CIFAR-10.
    retry_failed : bool
        Run again the failed runs found in ``out`` (default: skip them too).
    max_attempts : int
        Runs of one configuration whose worker died before it is recorded as
        failed (default 3).
    progress : bool, optional
        A progress bar over the runs with the best result so far (default:
        when stderr is a terminal).
    log : callable, optional
        Called with each line of the running report (one line per run).
    on_record : callable, optional
        Called with each record as its run finishes.
    start_method : str, optional
        The local pool's ``multiprocessing`` start method (default: fork on
        Linux when this process runs no other thread, else forkserver/spawn).
    **settings
        Fixed settings of every run, by the same names as the grid's axes
        (e.g. ``epochs=1000, batch_size=1, sizes=[2, 4, 4, 1]``). The
        defaults: seed 000's 2-4-1 sigmoid network, squared error, weights
        uniform in [0, 1), full-batch SGD at lr 0.1 for 1,000 epochs, model
        seed 39, for the 2-D sets and arrays (init: the layer default for
        arrays); the seed-003 network (128-64 ReLU, cross-entropy, 30
        epochs) for digits and CIFAR-10.

    Returns
    -------
    list of dict
        One record per run, in grid order: ``key``, ``params`` (its grid
        values), ``config`` (every setting), ``data``, ``status`` ("ok" or
        "failed"), ``error`` (None when ok), ``loss`` and ``accuracy`` (per
        epoch; ``val_loss``/``val_accuracy`` with validation data),
        ``final_loss`` (and ``final_*`` of the others), ``epochs_run``,
        ``stop_reason``, ``seconds``, ``weights_sha256`` (of the trained
        weights), ``attempts``, ``worker`` and ``compiles``. Non-finite
        numbers are written as None.

    Raises
    ------
    SweepInterrupted
        On Ctrl-C, once the workers are stopped; its message says how to
        resume, its ``records`` hold the finished runs.
    """
    log = log or _silent
    if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
        raise ValueError(f"max_attempts must be an integer >= 1, got {max_attempts!r}")
    axes = _check_grid(grid)
    fixed = _check_settings(settings, axes)
    executor = make_executor(scheduler, workers, start_method)
    source = data if isinstance(data, DataSource) else DataSource(
        data, data_options, dtype=fixed.get("dtype", "float64"))
    tasks = _tasks(axes, fixed, source)
    results = ResultsFile(out) if out is not None else None
    done, todo = _split(tasks, results, retry_failed)
    shape = " x ".join(f"{n} ({len(v)})" for n, v in axes.items()) or "no axes"
    log(f"grid:     {shape} = {_runs(len(tasks))}")
    if results is not None:
        log(f"results:  {out}: {_runs(len(done))} already there, {len(todo)} to run")
    t0 = time.perf_counter()
    try:
        if todo:
            _execute(executor, todo, source, results, done, max_attempts,
                     Reporter(len(todo), list(done.values()), progress, log, on_record))
    except KeyboardInterrupt:
        raise _interrupted(tasks, done, out) from None
    finally:
        if results is not None:
            results.close()
    records = [done[t["key"]] for t in tasks]
    failed = sum(r["status"] != "ok" for r in records)
    log(f"done:     {_runs(len(records))} ({len(records) - failed} ok, {failed} failed), "
        f"{time.perf_counter() - t0:.1f} s")
    return records


def _runs(n):
    return f"{n} run{'s' if n != 1 else ''}"


def _split(tasks, results, retry_failed):
    """``({key: record} of the runs already in the results file, [tasks to run])``."""
    found = results.load() if results is not None else {}
    done, todo = {}, []
    for t in tasks:
        rec = found.get(t["key"])
        if rec is not None and not (retry_failed and rec["status"] == "failed"):
            done[t["key"]] = rec
        else:
            todo.append(t)
    return done, todo


def _interrupted(tasks, done, out):
    kept = [done[t["key"]] for t in tasks if t["key"] in done]
    left = len(tasks) - len(kept)
    where = (f"they are in {out}; run the same sweep with the same results file to do the "
             f"other {left}" if out is not None else
             "without a results file (out=... / --out FILE) none was kept")
    return SweepInterrupted(f"interrupted with {len(kept)} of {len(tasks)} runs finished; "
                            f"{where}", kept)


def _execute(executor, todo, source, results, done, max_attempts, report):
    """Warm the kernels, fan the runs out, collect them as they finish."""
    t0 = time.perf_counter()
    configs, compiles = warm(source, [t["config"] for t in todo])
    here = time.perf_counter() - t0
    try:
        executor.start(source, len(todo))
        report.note(f"executor: {executor.describe()}")
        workers = executor.warm([t["config"] for t in todo])
        report.note(f"kernels:  {configs} network configuration{'s' if configs != 1 else ''} "
                    f"warmed here in {here:.1f} s ({compiles} Numba compilation"
                    f"{'s' if compiles != 1 else ''})"
                    + (f"; then on {len(workers)} workers ({sum(workers.values())} "
                       f"compilations)" if workers else ""))
        for t in todo:
            executor.submit(t)
        left = len(todo)
        while left:
            for task, rec in executor.done(0.25):
                if isinstance(rec, str) and rec == LOST:
                    if task["attempt"] < max_attempts:
                        report.note(f"  (a worker died; running {report.params(task)} again)")
                        executor.submit(dict(task, attempt=task["attempt"] + 1))
                        continue
                    rec = _lost(task)
                elif rec.get("interrupted"):
                    raise KeyboardInterrupt
                left -= 1
                if results is not None:
                    results.append(rec)
                done[rec["key"]] = rec
                report.record(rec)
    except BaseException:
        executor.close(cancel=True)
        report.close()
        raise
    executor.close()
    report.close()


def _lost(task):
    return {"key": task["key"], "params": task["params"], "config": task["config"],
            "data": task["data"], "status": "failed", "loss": [], "final_loss": None,
            "epochs_run": 0, "stop_reason": None, "attempts": task["attempt"],
            "error": f"WorkerLost: the worker running it died {task['attempt']} times",
            "seconds": None, "worker": None, "compiles": None}
