"""Where a sweep's runs execute: this process, a local process pool, or a Dask cluster.

The sweep drives every executor through the same four calls, so resuming,
retrying, progress and results are one code path:

- ``start(source, runs)``: start the workers (for ``runs`` runs) and hand
  them the data source;
- ``submit(task)``: queue one run (any number may be queued);
- ``done(timeout)``: the runs finished within ``timeout`` seconds, as
  ``(task, record)`` pairs; ``record`` is :data:`LOST` when the worker
  running the task died (the sweep resubmits it);
- ``close(cancel)``: stop the workers (at once with ``cancel``).

Every run calls :func:`fastbp._sweep_run.run_task`, with BLAS held to one
thread, whichever executor runs it: the same settings give the same bits.
"""
import collections
import multiprocessing as mp
import os
import sys
import threading
import uuid
from multiprocessing.connection import wait as _wait_conns

from ._sweep_run import _Fixed, run_task, warm_worker

LOST = "lost"
_WARM_ROWS = 64


class SweepError(RuntimeError):
    """The sweep could not go on (its executor failed, not one of its runs)."""


def default_workers():
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:       # not Linux
        return os.cpu_count() or 1


def make_executor(scheduler=None, workers=None, start_method=None):
    """The executor for these arguments (see :func:`fastbp.sweep`)."""
    if scheduler is not None:
        if workers is not None:
            raise ValueError("workers goes with the local executor; a Dask cluster has its "
                             "own workers (start more with 'dask worker ADDRESS')")
        return DaskExecutor(scheduler)
    if workers is None:
        workers = default_workers()
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ValueError(f"workers must be an integer >= 0 (0: run in this process), "
                         f"got {workers!r}")
    return SerialExecutor() if workers == 0 else LocalExecutor(workers, start_method)


# --------------------------------------------------------------------------- in this process
class SerialExecutor:
    """One run after another in this process (``workers=0``)."""

    n_workers = 1

    def __init__(self):
        self.queue = collections.deque()
        self.source = None

    def describe(self):
        return "this process, one run after another"

    def start(self, source, runs=None):
        self.source = source

    def warm(self, configs):
        return {}

    def submit(self, task):
        self.queue.append(task)

    def done(self, timeout):
        if not self.queue:
            return []
        task = self.queue.popleft()
        return [(task, run_task(self.source, task))]

    def close(self, cancel=False):
        self.queue.clear()


# --------------------------------------------------------------------------- local pool
def _default_start_method():
    """fork on Linux when no other thread runs (the workers inherit the warmed
    kernels); otherwise forkserver or spawn (the workers load the warmed cache)."""
    methods = mp.get_all_start_methods()
    if sys.platform.startswith("linux") and "fork" in methods \
            and threading.active_count() == 1:
        return "fork"
    return "forkserver" if "forkserver" in methods else "spawn"


def _worker_main(conn, source):
    """A pool worker: run the tasks that come down ``conn`` until None or EOF."""
    if hasattr(os, "setpgrp"):
        os.setpgrp()     # Ctrl-C at the terminal reaches the sweep only; it stops the workers
    parent = os.getppid()
    while True:
        if not conn.poll(1.0):
            if os.getppid() != parent:      # the sweep's process is gone
                return
            continue
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        if isinstance(task, tuple):         # ("warm", data, configs)
            conn.send(warm_worker(task[1], task[2]))
            continue
        conn.send(run_task(source, task))


class _Worker:
    def __init__(self, process, conn):
        self.process, self.conn, self.task = process, conn, None


class LocalExecutor:
    """A pool of ``n`` worker processes on this machine, one run at a time each.

    A worker that dies (killed, out of memory, a crash) is replaced, and the
    run it held comes back as :data:`LOST`.
    """

    def __init__(self, n, start_method=None):
        self.n_workers = n
        self.method = start_method or _default_start_method()
        if self.method not in mp.get_all_start_methods():
            raise ValueError(f"start_method {self.method!r} is not available here; expected "
                             f"one of {', '.join(mp.get_all_start_methods())}")
        self.workers, self.queue = [], collections.deque()

    def describe(self):
        return (f"local process pool, {self.n_workers} worker process"
                f"{'es' if self.n_workers > 1 else ''} ({self.method}), one BLAS thread each")

    def start(self, source, runs=None):
        if runs is not None:                # no more workers than runs
            self.n_workers = max(1, min(self.n_workers, runs))
        self.ctx = mp.get_context(self.method)
        self.source = source
        self.workers = []
        for _ in range(self.n_workers):     # one by one: close() stops those started
            self.workers.append(self._spawn())

    def warm(self, configs):
        """Forked workers inherit the kernels this process warmed; the others load
        them from the cache now, before any run. ``{worker: compilations}``."""
        if self.method == "fork":
            return {}
        small = _Fixed(self.source.load().head(_WARM_ROWS))
        for w in self.workers:
            w.conn.send(("warm", small, configs))
        counts = {}
        for w in self.workers:
            try:
                worker, compiles = w.conn.recv()
            except (EOFError, OSError):
                raise SweepError("a local worker process died while loading the kernels") \
                    from None
            counts[worker] = compiles
        return counts

    def _spawn(self):
        parent, child = self.ctx.Pipe()
        p = self.ctx.Process(target=_worker_main, args=(child, self.source), daemon=True,
                             name="fastbp-sweep-worker")
        p.start()
        child.close()
        return _Worker(p, parent)

    def pids(self):
        return [w.process.pid for w in self.workers]

    def submit(self, task):
        self.queue.append(task)
        self._dispatch()

    def _dispatch(self):
        for w in self.workers:
            if w.task is None and self.queue and w.process.is_alive():
                w.task = self.queue.popleft()
                try:
                    w.conn.send(w.task)
                except OSError:      # it died: done() sees it and hands the task back
                    pass

    def done(self, timeout):
        waitables = [w.conn for w in self.workers if w.task is not None]
        waitables += [w.process.sentinel for w in self.workers]
        ready = set(_wait_conns(waitables, timeout))
        out = []
        for i, w in enumerate(self.workers):
            if w.task is not None and w.conn in ready:
                try:
                    out.append((w.task, w.conn.recv()))
                    w.task = None
                    continue
                except (EOFError, OSError):
                    pass
            if w.process.sentinel in ready or not w.process.is_alive():
                w.process.join(0.1)
                if w.task is not None:
                    out.append((w.task, LOST))
                w.conn.close()
                self.workers[i] = self._spawn()
        self._dispatch()
        return out

    def close(self, cancel=False):
        self.queue.clear()
        for w in self.workers:
            if cancel:
                w.process.kill()
            else:
                try:
                    w.conn.send(None)
                except OSError:
                    pass
        for w in self.workers:
            w.process.join(None if cancel else 10)
            if w.process.is_alive():
                w.process.kill()
                w.process.join()
            w.conn.close()
        self.workers = []


# --------------------------------------------------------------------------- Dask
def _distributed():
    try:
        import distributed
    except ImportError:
        raise ImportError("running a sweep on a Dask cluster needs dask.distributed: "
                          "pip install 'fastbp[dask]'") from None
    return distributed


def _host(address):
    rest = address.split("://", 1)[-1]
    return rest.rsplit(":", 1)[0]


class DaskExecutor:
    """The runs as tasks on a Dask distributed cluster.

    scheduler: the scheduler's address ("tcp://host:8786"; the client is
    opened and closed here) or a ``distributed.Client`` (left open). Dask
    reschedules the task of a worker that dies; a task whose workers keep
    dying (``KilledWorker``) comes back as :data:`LOST`.
    """

    def __init__(self, scheduler):
        distributed = _distributed()
        self.own = not isinstance(scheduler, distributed.Client)
        if self.own and not isinstance(scheduler, str):
            raise TypeError(f"scheduler must be an address such as 'tcp://host:8786' or a "
                            f"distributed.Client, got {type(scheduler).__name__}")
        self.scheduler = scheduler
        self.client = None if self.own else scheduler
        self.futures = {}
        self.n_workers = 0

    def describe(self):
        return (f"Dask cluster at {self.client.scheduler.address}, {self.n_workers} worker"
                f"{'s' if self.n_workers != 1 else ''}")

    def start(self, source, runs=None):
        distributed = _distributed()
        if self.client is None:
            try:
                self.client = distributed.Client(self.scheduler)
            except (OSError, TimeoutError) as exc:
                raise OSError(f"cannot reach the Dask scheduler at {self.scheduler!r}: "
                              f"{exc}") from None
        try:
            self.client.wait_for_workers(1, timeout=120)
        except TimeoutError:
            raise SweepError(f"no Dask worker joined the scheduler at "
                             f"{self.client.scheduler.address} within 120 s; start some with "
                             f"'dask worker {self.client.scheduler.address}'") from None
        self.n_workers = len(self.client.nthreads())
        self.source = source
        self.ref = (self.client.scatter(source, broadcast=True, hash=False)
                    if source.kind == "arrays" else source)

    def warm(self, configs):
        """Warm one worker per host first (it compiles where that host's cache is
        cold), then the rest (they load its cache). ``{worker: compilations}``."""
        addresses = sorted(self.client.nthreads())
        first, rest, hosts = [], [], set()
        for a in addresses:
            (rest if _host(a) in hosts else first).append(a)
            hosts.add(_host(a))
        small = _Fixed(self.source.load().head(_WARM_ROWS))
        counts = {}
        for group in (first, rest):
            futures = [self.client.submit(warm_worker, small, configs, workers=[a],
                                          allow_other_workers=False, pure=False)
                       for a in group]
            try:
                for worker, compiles in self.client.gather(futures):
                    counts[worker] = compiles
            except Exception as exc:
                raise SweepError(f"the Dask workers could not run fastbp: "
                                 f"{type(exc).__name__}: {exc}") from None
        return counts

    def submit(self, task):
        key = f"fastbp-run-{task['key']}-{task['attempt']}-{uuid.uuid4().hex[:8]}"
        f = self.client.submit(run_task, self.ref, task, key=key, pure=False)
        self.futures[f] = task

    def done(self, timeout):
        if not self.futures:
            return []
        distributed = _distributed()
        try:
            finished = distributed.wait(list(self.futures), timeout=timeout,
                                        return_when="FIRST_COMPLETED").done
        except TimeoutError:
            return []
        out = []
        for f in finished:
            task = self.futures.pop(f)
            if f.status == "finished":
                out.append((task, f.result()))
            elif f.status == "cancelled" or isinstance(f.exception(), distributed.KilledWorker):
                out.append((task, LOST))
            else:
                exc = f.exception()
                raise SweepError(f"a Dask worker could not run a sweep task: "
                                 f"{type(exc).__name__}: {exc}")
            f.release()
        return out

    def close(self, cancel=False):
        if self.client is None:
            return
        if self.futures:
            self.client.cancel(list(self.futures))
            self.futures.clear()
        if self.own:
            self.client.close()
            self.client = None
