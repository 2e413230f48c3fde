"""Single ops, each backend: the kernels of fastbp.kernels against fastbp.reference.

Each case builds its arguments from a seeded generator; ``setup`` runs the
Numba kernel and the NumPy reference on identical copies and compares every
array argument afterwards (outputs and in-place updates) before timing.
"""
import numpy as np

from .common import TOL64

ACT = {"identity": 0, "sigmoid": 1, "relu": 2, "tanh": 3}


def _normal(g, *shape):
    return g.standard_normal(shape)


def _dense_forward(g, n, i, o):
    return [_normal(g, n, i), _normal(g, i, o) / np.sqrt(i), _normal(g, o), np.zeros((n, o))]


def _dense_backward(g, n, i, o):
    return [_normal(g, n, o), _normal(g, n, i), _normal(g, i, o) / np.sqrt(i), np.zeros((n, i)),
            np.zeros((i, o)), np.zeros(o)]


def _batchnorm_train(g, n, d):
    return [_normal(g, n, d), 1 + 0.1 * _normal(g, d), 0.1 * _normal(g, d), np.zeros(d),
            np.ones(d), 0.1, 1e-5, np.zeros((n, d)), np.zeros(d), np.zeros((n, d))]


def _batchnorm_backward(g, n, d):
    return [_normal(g, n, d), _normal(g, n, d), 1 + g.random(d), 1 + 0.1 * _normal(g, d),
            np.zeros((n, d)), np.zeros(d), np.zeros(d)]


def _softmax_ce(g, n, k):
    return [_normal(g, n, k), g.integers(0, k, n).astype(np.int64), np.zeros((n, k)),
            np.zeros((n, k))]


def _mse(g, n, k):
    return [_normal(g, n, k), _normal(g, n, k), False, False, np.zeros((n, k))]


def _sgd(g, p):
    return [_normal(g, p), _normal(g, p), np.zeros(p), 0.01, 0.9, 1e-4, False]


def _adam(g, p):
    return [_normal(g, p), _normal(g, p), np.zeros(p), np.zeros(p), 1, 1e-3, 0.9, 0.999, 1e-8,
            0.0]


# case name -> (op name, argument builder); only ever append.
CASES = {
    "dense_forward 1x4x4": ("dense_forward", lambda g: _dense_forward(g, 1, 4, 4)),
    "dense_forward 32x64x128": ("dense_forward", lambda g: _dense_forward(g, 32, 64, 128)),
    "dense_forward 256x1024x512": ("dense_forward", lambda g: _dense_forward(g, 256, 1024, 512)),
    "dense_backward 1x4x4": ("dense_backward", lambda g: _dense_backward(g, 1, 4, 4)),
    "dense_backward 32x64x128": ("dense_backward", lambda g: _dense_backward(g, 32, 64, 128)),
    "dense_backward 256x1024x512": ("dense_backward",
                                    lambda g: _dense_backward(g, 256, 1024, 512)),
    "bias_act_forward relu 256x1024": (
        "bias_act_forward", lambda g: [_normal(g, 256, 1024), _normal(g, 1024), ACT["relu"],
                                       np.zeros((256, 1024))]),
    "bias_act_forward sigmoid 256x1024": (
        "bias_act_forward", lambda g: [_normal(g, 256, 1024), _normal(g, 1024), ACT["sigmoid"],
                                       np.zeros((256, 1024))]),
    "bias_act_forward tanh 256x1024": (
        "bias_act_forward", lambda g: [_normal(g, 256, 1024), _normal(g, 1024), ACT["tanh"],
                                       np.zeros((256, 1024))]),
    "act_backward relu 256x1024": (
        "act_backward", lambda g: [_normal(g, 256, 1024), np.abs(_normal(g, 256, 1024)),
                                   ACT["relu"], np.zeros((256, 1024))]),
    "act_backward sigmoid 256x1024": (
        "act_backward", lambda g: [_normal(g, 256, 1024), g.random((256, 1024)),
                                   ACT["sigmoid"], np.zeros((256, 1024))]),
    "softmax_cross_entropy 256x10": ("softmax_cross_entropy", lambda g: _softmax_ce(g, 256, 10)),
    "mse_loss 256x10": ("mse_loss", lambda g: _mse(g, 256, 10)),
    "batchnorm_forward_train 256x512": ("batchnorm_forward_train",
                                        lambda g: _batchnorm_train(g, 256, 512)),
    "batchnorm_backward 256x512": ("batchnorm_backward",
                                   lambda g: _batchnorm_backward(g, 256, 512)),
    "dropout_mask 256x512": ("dropout_mask", lambda g: [12345, 7, 0.2, np.zeros((256, 512))]),
    "sgd_update 3.7M": ("sgd_update", lambda g: _sgd(g, 3_676_682)),
    "adam_update 3.7M": ("adam_update", lambda g: _adam(g, 3_676_682)),
}


def _arrays(args):
    return [a for a in args if isinstance(a, np.ndarray)]


class Kernel:
    """One call of one op, float64."""

    params = (list(CASES), ["numba", "numpy"])
    param_names = ["case", "backend"]
    timeout = 300
    gate = "full"          # scripts/perf-compare times it (numba) without --quick

    def setup(self, case, backend):
        import fastbp.kernels as kernels
        import fastbp.reference as reference

        name, build = CASES[case]
        fast_args = build(np.random.default_rng(0))
        ref_args = build(np.random.default_rng(0))
        getattr(kernels, name)(*fast_args)          # compiles here, never in the timed body
        getattr(reference, name)(*ref_args)
        for a, b in zip(_arrays(fast_args), _arrays(ref_args)):
            diff = float(np.max(np.abs(a - b))) if a.size else 0.0
            if not diff <= TOL64:
                raise AssertionError(f"{case}: kernel differs from the reference by {diff:.3g}")
        self.fn = getattr(kernels if backend == "numba" else reference, name)
        self.args = fast_args if backend == "numba" else ref_args

    def time_op(self, case, backend):
        self.fn(*self.args)
