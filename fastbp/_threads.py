"""How many BLAS threads fastbp's calls use.

fastbp's kernels call NumPy's OpenBLAS (or SciPy's, see :mod:`fastbp._blas`),
whose pool of threads spins for a while after each product. For the small
products of a small network, threads cost more than they save, and on a
shared or busy machine a spinning pool competing for cores is a cliff:
measured here on 2 cores, a 64-128-64-10 epoch took 30 ms with one BLAS
thread and 90-400 ms with two while other work ran. So each fastbp call
sizes its pool from its own work: one thread below ``SMALL_STEP``
multiply-adds per step, the library's default above it (large batches of
wide layers, where threads pay). The limit holds only during the call and
is restored after, so the user's own NumPy work keeps its threads.

BLAS pools are process-wide, so calls running at the same time in several
threads (separate models may train in parallel) share one limit: the first
call to enter saves the pools' sizes and sets the limit, later ones only
count themselves in (and may lower it), and the last to leave puts back the
saved size of each pool the limit changed, whatever order they finish in. A
pool already at or below the limit is neither changed nor touched on leaving,
so a call inside the user's own smaller limit costs one query per pool.

``FASTBP_BLAS_THREADS=N`` fixes the count for every call (0: never limit).
"""
import os
import threading

from . import _config
from . import plan as P

SMALL_STEP = 1 << 25        # multiply-adds per batch step below which BLAS gets one thread
_pools = None              # [(get, set) thread-count functions of a BLAS], see _blas
_lock = threading.Lock()
_users = 0                  # calls inside limit() now
_held = None                # ([((get, set), the pool's size before)], n in force,
                            #  indices of the pools the limit set)


def step_macs(plan, batch):
    """Multiply-adds of the Dense products in one forward pass of ``batch`` rows."""
    return int(batch) * P.dense_macs(plan)


def threads_for(macs, batch):
    """The BLAS thread count for a call on ``batch`` rows whose steps take ``macs``
    multiply-adds (:func:`step_macs`), or None to leave the pools alone."""
    n = _config.blas_threads()
    if n is not None:
        return n if n > 0 else None
    if batch == 1:          # the per-sample kernels call no BLAS
        return None
    return 1 if macs < SMALL_STEP else None


class limit:
    """Hold the BLAS fastbp calls (:func:`_blas`) to ``n`` threads inside the ``with``
    block (None: no change)."""

    __slots__ = ("n",)

    def __init__(self, n):
        self.n = n

    def __enter__(self):
        if self.n is not None:
            _enter(self.n)
        return self

    def __exit__(self, *exc):
        if self.n is not None:
            _leave()
        return False


def _blas():
    """(get, set) thread-count functions of each BLAS pool fastbp's calls use (found once).

    Where the kernels call NumPy's OpenBLAS (:func:`fastbp._blas.cblas`), that
    one pool: it serves the kernels and the NumPy reference alike. Another BLAS
    loaded in the process (SciPy's own OpenBLAS, say) does no work in
    fastbp's calls, so its pool is left as the user set it, and it makes no
    difference whether it was loaded before fastbp's first call or after.
    Where the kernels call SciPy's BLAS instead, every BLAS loaded once SciPy's
    is (the reference still uses NumPy's).

    For OpenBLAS with its own threads these are its process-wide C calls
    ``openblas_get/set_num_threads``: a few hundred nanoseconds instead of
    threadpoolctl's few microseconds, and they act whichever Python thread
    calls them (the bookkeeping here holds its own lock). Any other library
    goes through its threadpoolctl controller.
    """
    global _pools
    if _pools is None:
        from threadpoolctl import ThreadpoolController

        from . import _blas
        found = _blas.cblas()
        if found is None:
            import scipy.linalg.cython_blas  # noqa: F401  (the BLAS the kernels call then)
        pools = ThreadpoolController().select(user_api="blas").lib_controllers
        if found is not None:
            ours = [lc for lc in pools if _same_file(lc.filepath, found["path"])]
            pools = ours or pools
        _pools = [_pool_fns(lc) for lc in pools]
    return _pools


def _same_file(a, b):
    try:
        return os.path.samefile(a, b)
    except (OSError, TypeError):
        return False


def _pool_fns(lc):
    if lc.internal_api == "openblas" and getattr(lc, "threading_layer", None) != "openmp":
        try:
            get = lc._get_symbol("openblas_get_num_threads")
            put = lc._get_symbol("openblas_set_num_threads")
        except AttributeError:          # a threadpoolctl without the symbol helper
            get = put = None
        if get is not None and put is not None:
            return get, put
    return lc.get_num_threads, lc.set_num_threads


def _enter(n):
    global _users, _held
    with _lock:
        if _held is None:
            saved = [(fns, fns[0]()) for fns in _blas()]      # each pool's size now
            _held = (saved, n, _lower(saved, n, [size for _, size in saved]))
        elif n < _held[1]:          # a smaller limit inside a larger one: lower it
            saved, _, changed = _held
            _held = (saved, n, changed | _lower(saved, n, [get() for (get, _), _ in saved]))
        _users += 1


def _lower(saved, n, sizes):
    """Set each pool whose size (in ``sizes``) is above n to n; the indices of those set."""
    changed = set()
    for i, (((_, put), _), size) in enumerate(zip(saved, sizes)):
        if size is None or size > n:
            put(n)
            changed.add(i)
    return changed


def _leave():
    global _users, _held
    with _lock:
        _users -= 1
        if _users == 0:
            saved, _, changed = _held
            for i in changed:       # only the pools the limit changed: no calls for the rest
                (_, put), size = saved[i]
                if size is not None:
                    put(size)
            _held = None
