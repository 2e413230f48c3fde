"""One large-batch training step: CIFAR-10's shape, 3072-1024-512-10 ReLU, batch 256."""
import numpy as np

from .common import (CIFAR_BATCH, CIFAR_LR, CIFAR_NET, check_matches_reference, cifar_shaped,
                     median_time, mlp)


class StepGemms:
    """The matrix products of one training step of CIFAR_NET, alone.

    Forward: x W1, h1 W2, h2 W3. Backward: dW3 = h2' d3, dh2 = d3 W3',
    dW2 = h1' d2, dh1 = d2 W2', dW1 = x' d1 (no gradient for the input).
    ``np.matmul`` into preallocated outputs, so nothing but the GEMMs is timed
    (``np.dot(out=)`` takes a slow non-BLAS path for some transposed operands,
    e.g. (256, 10) @ (10, 512)').
    """

    def __init__(self, dtype, batch=CIFAR_BATCH):
        g = np.random.default_rng(0)
        sizes = CIFAR_NET["sizes"]

        def a(*shape):
            return g.standard_normal(shape).astype(dtype)

        self.x = a(batch, sizes[0])
        self.W = [a(sizes[i], sizes[i + 1]) for i in range(len(sizes) - 1)]
        self.h = [a(batch, n) for n in sizes[1:]]          # layer outputs
        self.d = [a(batch, n) for n in sizes[1:]]          # their gradients
        self.dW = [np.empty_like(W) for W in self.W]
        self.dh = [np.empty((batch, n), dtype) for n in sizes[1:-1]]

    def __call__(self):
        x, W, h, d, dW, dh = self.x, self.W, self.h, self.d, self.dW, self.dh
        inp = [x] + h[:-1]
        for i in range(len(W)):
            np.matmul(inp[i], W[i], out=h[i])
        for i in range(len(W) - 1, -1, -1):
            np.matmul(inp[i].T, d[i], out=dW[i])
            if i > 0:
                np.matmul(d[i], W[i].T, out=dh[i - 1])


class LargeBatchStep:
    """One SGD step on 256 CIFAR-shaped rows, each backend and dtype."""

    params = (["float32", "float64"], ["numba", "numpy"])
    param_names = ["dtype", "backend"]
    timeout = 600

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
        self.gemms = StepGemms(dtype)
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
        self.gemms = StepGemms(dtype)

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
