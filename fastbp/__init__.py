"""fastbp: fast backpropagation for fully-connected networks on the CPU.

Every op runs as a Numba kernel (``backend="numba"``, the default) and as a
plain-NumPy reference (``backend="numpy"``) that gives the same numbers.
"""
from . import datasets
from .io import load
from .layers import BatchNorm, Dense, Dropout, Identity, ReLU, Sigmoid, Tanh
from .losses import MSE, BinaryCrossEntropy, SoftmaxCrossEntropy
from ._memory import MemoryBudgetError
from .model import MLP, History, Sequential, TrainingDivergedError
from .optim import SGD, Adam, ExponentialLR, StepLR
from .sweep import load_results as load_sweep, sweep
from ._version import __version__

__all__ = ["Sequential", "MLP", "History", "TrainingDivergedError", "MemoryBudgetError", "Dense", "Sigmoid", "ReLU",
           "Tanh", "Identity", "BatchNorm", "Dropout", "MSE", "SoftmaxCrossEntropy",
           "BinaryCrossEntropy", "SGD", "Adam", "StepLR", "ExponentialLR", "load", "datasets",
           "from_torch", "sweep", "load_sweep", "__version__"]


def __getattr__(name):
    # fastbp.plot (matplotlib) and fastbp.bench load on first use, keeping `import fastbp` fast
    if name in ("plot", "bench"):
        import importlib
        return importlib.import_module(f".{name}", __name__)
    if name == "from_torch":    # torch itself is imported only when it is called
        from .interop import from_torch
        return from_torch
    raise AttributeError(f"module 'fastbp' has no attribute {name!r}")
