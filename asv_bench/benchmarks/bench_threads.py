"""Thread pools: fastbp training alternating with NumPy work, against each alone.

Numba's ``np.dot`` calls SciPy's OpenBLAS while NumPy calls its own; if both
pools spin on the same cores, every switch between them can cost
milliseconds. These track the slowdown from alternating (1.0 = none), with
the thread counts the process starts with.
"""
import time

import numpy as np

from .common import DIGITS_LR, DIGITS_NET, check_matches_reference, digits, median_time, mlp


class AlternatingWithNumPy:
    """A digits epoch (batch 32) and a 512x512 NumPy matrix product, in turns."""

    unit = "alternating time / time alone"
    timeout = 300

    def setup(self):
        X, y = digits()

        def epoch(m):
            m.fit(X, y, epochs=1, lr=DIGITS_LR, batch_size=32, shuffle=False)

        self.model = check_matches_reference(lambda be: mlp(DIGITS_NET, be), epoch,
                                             what="digits batch 32")
        self.epoch = lambda: epoch(self.model)
        g = np.random.default_rng(0)
        A, B = g.random((512, 512)), g.random((512, 512))
        C = np.empty_like(A)
        self.matmul = lambda: np.dot(A, B, out=C)
        self.epoch()
        self.matmul()

    def _ratios(self, n=15):
        alone_fit = median_time(self.epoch, n)
        alone_mm = median_time(self.matmul, n)
        fit_t, mm_t = [], []
        for _ in range(n):
            t0 = time.perf_counter()
            self.epoch()
            t1 = time.perf_counter()
            self.matmul()
            t2 = time.perf_counter()
            fit_t.append(t1 - t0)
            mm_t.append(t2 - t1)
        return np.median(fit_t) / alone_fit, np.median(mm_t) / alone_mm

    def track_fastbp_epoch(self):
        return float(self._ratios()[0])

    def track_numpy_matmul(self):
        return float(self._ratios()[1])
