"""Mini-batch SGD on the digits: 64-128-64-10 ReLU, softmax cross-entropy, one epoch."""
from .common import (DIGITS_ARCHS, DIGITS_LR, DIGITS_NET, check_matches_reference, digits,
                     median_time, mlp)


class MiniBatchEpoch:
    """One epoch over the 1438 training digits, each backend."""

    params = (list(DIGITS_ARCHS), [32, 256], ["numba", "numpy"])
    param_names = ["arch", "batch", "backend"]
    timeout = 300
    gate = "quick"         # scripts/perf-compare times it (numba), --quick included

    def setup(self, arch, batch, backend):
        self.X, self.y = digits()
        self.batch = batch
        extra = DIGITS_ARCHS[arch]
        fast = check_matches_reference(lambda be: mlp(DIGITS_NET, be, **extra), self.epoch,
                                       what=f"digits {arch} batch {batch}")
        self.model = fast if backend == "numba" else mlp(DIGITS_NET, backend, **extra)
        self.epoch(self.model)

    def epoch(self, model):
        model.fit(self.X, self.y, epochs=1, lr=DIGITS_LR, batch_size=self.batch, shuffle=False)

    def time_epoch(self, arch, batch, backend):
        self.epoch(self.model)


class MiniBatchRatio:
    """fastbp's time per digits epoch / the reference's (lower is better)."""

    params = (list(DIGITS_ARCHS), [32, 256])
    param_names = ["arch", "batch"]
    unit = "fastbp time / reference time"
    timeout = 300

    def setup(self, arch, batch):
        self.X, self.y = digits()
        self.batch = batch
        extra = DIGITS_ARCHS[arch]
        self.fast = check_matches_reference(lambda be: mlp(DIGITS_NET, be, **extra), self.epoch,
                                            what=f"digits {arch} batch {batch}")
        self.ref = mlp(DIGITS_NET, "numpy", **extra)

    def epoch(self, model):
        model.fit(self.X, self.y, epochs=1, lr=DIGITS_LR, batch_size=self.batch, shuffle=False)

    def track_time_ratio_vs_reference(self, arch, batch):
        return (median_time(lambda: self.epoch(self.fast), repeat=7)
                / median_time(lambda: self.epoch(self.ref), repeat=5))
