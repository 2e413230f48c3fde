"""One large-batch training step: CIFAR-10's shape, 3072-1024-512-10 ReLU, batch 256."""
from .common import (CIFAR_BATCH, CIFAR_LR, CIFAR_NET, StepGemms, check_matches_reference,
                     cifar_shaped, median_time, mlp)


class LargeBatchStep:
    """One SGD step on 256 CIFAR-shaped rows, each backend and dtype."""

    params = (["float32", "float64"], ["numba", "numpy"])
    param_names = ["dtype", "backend"]
    timeout = 600
    gate = "full"          # scripts/perf-compare times it (numba) without --quick

    def setup(self, dtype, backend):
        self.X, self.y = cifar_shaped(CIFAR_BATCH, dtype=dtype)
        fast = check_matches_reference(lambda be: mlp(CIFAR_NET, be, dtype), self.step,
                                       dtype=dtype, what=f"cifar-shaped step {dtype}")
        self.model = fast if backend == "numba" else mlp(CIFAR_NET, backend, dtype)
        self.step(self.model)

    def step(self, model):
        model.fit(self.X, self.y, epochs=1, lr=CIFAR_LR, batch_size=CIFAR_BATCH, shuffle=False)

    def time_step(self, dtype, backend):
        self.step(self.model)


class LargeBatchGemms:
    """The same step's GEMMs alone (np.matmul into preallocated arrays)."""

    params = ["float32", "float64"]
    param_names = ["dtype"]

    def setup(self, dtype):
        # The GEMMs need no check; the step they bound is checked in LargeBatchStep.
        self.gemms = StepGemms(CIFAR_NET["sizes"], CIFAR_BATCH, dtype)
        self.gemms()

    def time_gemms(self, dtype):
        self.gemms()


class LargeBatchRatio:
    """Step time over its GEMMs' time, and over the reference's step (lower is better)."""

    params = ["float32", "float64"]
    param_names = ["dtype"]
    unit = "ratio"
    timeout = 600

    def setup(self, dtype):
        self.X, self.y = cifar_shaped(CIFAR_BATCH, dtype=dtype)
        self.fast = check_matches_reference(lambda be: mlp(CIFAR_NET, be, dtype), self.step,
                                            dtype=dtype, what=f"cifar-shaped step {dtype}")
        self.gemms = StepGemms(CIFAR_NET["sizes"], CIFAR_BATCH, dtype)

    def step(self, model):
        model.fit(self.X, self.y, epochs=1, lr=CIFAR_LR, batch_size=CIFAR_BATCH, shuffle=False)

    def track_step_over_gemms(self, dtype):
        return (median_time(lambda: self.step(self.fast), repeat=5)
                / median_time(self.gemms, repeat=5))

    track_step_over_gemms.unit = "fastbp step time / its GEMMs' time"

    def track_time_ratio_vs_reference(self, dtype):
        ref = mlp(CIFAR_NET, "numpy", dtype)
        return (median_time(lambda: self.step(self.fast), repeat=5)
                / median_time(lambda: self.step(ref), repeat=3))

    track_time_ratio_vs_reference.unit = "fastbp time / reference time"
