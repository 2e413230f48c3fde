"""Which module of ops a model runs on: the Numba kernels or the NumPy reference."""
import importlib

BACKENDS = {"numba": "fastbp.kernels", "numpy": "fastbp.reference"}


def get_backend(name):
    """The ops module for ``name`` ("numba" or "numpy"), imported on first use."""
    if not isinstance(name, str) or name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; expected 'numba' or 'numpy'")
    return importlib.import_module(BACKENDS[name])
