"""How many BLAS threads fastbp's calls use.

Numba's ``np.dot`` calls SciPy's OpenBLAS; NumPy calls its own. Both keep a
pool of threads that spin for a while after each product. For the small
products of a small network, threads cost more than they save, and on a
shared or busy machine a spinning pool competing for cores is a cliff:
measured here on 2 cores, a 64-128-64-10 epoch took 30 ms with one BLAS
thread and 90-400 ms with two while other work ran. So each fastbp call
sizes its pool from its own work: one thread below ``SMALL_STEP``
multiply-adds per step, the library's default above it (large batches of
wide layers, where threads pay). The limit holds only during the call and
is restored after, so the user's own NumPy work keeps its threads.

``FASTBP_BLAS_THREADS=N`` fixes the count for every call (0: never limit).
"""
import contextlib
import os

import numpy as np

from . import plan as P

SMALL_STEP = 1 << 25        # multiply-adds per batch step below which BLAS gets one thread
_controller = None


def step_macs(plan, batch):
    """Multiply-adds of the Dense products in one forward pass of ``batch`` rows."""
    dense = plan[plan[:, P.KIND] == P.DENSE]
    return int(batch) * int(np.sum(dense[:, P.N_IN] * dense[:, P.N_OUT]))


def threads_for(plan, batch):
    """The BLAS thread count for a call on ``batch`` rows, or None to leave it alone."""
    env = os.environ.get("FASTBP_BLAS_THREADS")
    if env:
        n = int(env)
        return n if n > 0 else None
    if batch == 1:          # the per-sample kernels call no BLAS
        return None
    return 1 if step_macs(plan, batch) < SMALL_STEP else None


@contextlib.contextmanager
def limit(n):
    """Hold every loaded BLAS to ``n`` threads inside the block (None: no change)."""
    global _controller
    if n is None:
        yield
        return
    if _controller is None:
        import scipy.linalg.cython_blas  # noqa: F401  (the BLAS Numba's np.dot calls)
        from threadpoolctl import ThreadpoolController
        _controller = ThreadpoolController()
    with _controller.limit(limits=n, user_api="blas"):
        yield
