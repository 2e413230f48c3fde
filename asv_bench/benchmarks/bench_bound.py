"""fastbp's training time over its bound: the same steps' matrix products alone.

The yardstick's B32, C32 and D32 (``BOUND_WORKLOADS``): one epoch of fastbp
and one epoch of the bound (``EpochGemms``: every step's products through
NumPy's BLAS into preallocated arrays), one BLAS thread, taking turns; the
ratio of the medians. 1.0 is the bound; lower is better. Both are measured in
the same process side by side, so the machine's load cancels out of the ratio.
"""
import numpy as np

from .common import (BOUND_LR, BOUND_WORKLOADS, EpochGemms, bound_spec, check_matches_reference,
                     normal_rows, mlp)


def interleaved_medians(fns, rounds):
    """Median seconds of each of ``fns`` (a list), calling them in turns (one warm-up each)."""
    import time

    for fn in fns:
        fn()
    times = [[] for _ in fns]
    for _ in range(rounds):
        for fn, out in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
    return [float(np.median(t)) for t in times]


class BoundRatio:
    """fastbp epoch time / its matrix products' time (one BLAS thread)."""

    params = list(BOUND_WORKLOADS)
    param_names = ["workload"]
    unit = "fastbp time / bound time"
    timeout = 600

    def setup(self, workload):
        sizes, n, batch, dtype = BOUND_WORKLOADS[workload]
        X, y = normal_rows(n, sizes[0], sizes[-1], dtype=dtype)

        def epoch(model, rows=n):
            model.fit(X[:rows], y[:rows], epochs=1, lr=BOUND_LR, batch_size=batch,
                      shuffle=False)

        fast = check_matches_reference(lambda be: mlp(bound_spec(sizes), be, dtype),
                                       lambda m: epoch(m, batch), dtype=dtype,
                                       what=f"{workload} one step")
        self.fast = lambda: epoch(fast)
        self.bound = EpochGemms(sizes, n, batch, dtype)

    def track_fastbp_over_bound(self, workload):
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1):
            fast, bound = interleaved_medians([self.fast, self.bound], rounds=5)
        return fast / bound
