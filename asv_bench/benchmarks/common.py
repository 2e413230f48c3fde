r"""Shared definitions of fastbp's asv suite: the workloads of ``fastbp/_bench_workloads.py``.

The data, networks, bounds and start-up probe are defined once, in
``fastbp/_bench_workloads.py``, which ``fastbp bench`` also uses. This module
loads that file by its path in *this* checkout (the benchmarks' own commit),
not through ``import fastbp``: the benchmarks then keep their definitions when
they time another commit's fastbp (``scripts/perf-compare``, ``asv continuous``),
including commits older than the file. That file uses only fastbp's public API.

Every benchmark's ``setup`` trains the Numba model and the NumPy reference on
the same data from the same weights and calls :func:`check_matches_reference`
before anything is timed; that first call also compiles the kernels, so no
JIT time lands in a timed body. How to run the suite: the README's asv section.
"""
import importlib.util
import os
import sys

_NAME = "fastbp_bench_workloads"
_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir,
                     "fastbp", "_bench_workloads.py")


def _load():
    if _NAME in sys.modules:
        return sys.modules[_NAME]
    spec = importlib.util.spec_from_file_location(_NAME, os.path.normpath(_PATH))
    module = importlib.util.module_from_spec(spec)
    sys.modules[_NAME] = module
    spec.loader.exec_module(module)
    return module


workloads = _load()

SEED, TOL64, TOL32 = workloads.SEED, workloads.TOL64, workloads.TOL32
tolerance = workloads.tolerance
linear_points, blobs, digits = workloads.linear_points, workloads.blobs, workloads.digits
cifar_shaped, normal_rows = workloads.cifar_shaped, workloads.normal_rows
ONLINE_NETS, ONLINE_EPOCHS_PER_CALL = workloads.ONLINE_NETS, workloads.ONLINE_EPOCHS_PER_CALL
DIGITS_NET, DIGITS_LR, DIGITS_ARCHS = workloads.DIGITS_NET, workloads.DIGITS_LR, \
    workloads.DIGITS_ARCHS
CIFAR_NET, CIFAR_LR, CIFAR_BATCH = workloads.CIFAR_NET, workloads.CIFAR_LR, workloads.CIFAR_BATCH
BOUND_WORKLOADS, BOUND_LR, bound_spec = workloads.BOUND_WORKLOADS, workloads.BOUND_LR, \
    workloads.bound_spec
mlp, max_param_diff = workloads.mlp, workloads.max_param_diff
check_matches_reference, median_time = workloads.check_matches_reference, workloads.median_time
StepGemms, EpochGemms = workloads.StepGemms, workloads.EpochGemms
