"""save / load: one .npz per model, never pickle, written atomically.

The file holds a JSON description (format version, layers and their
arguments, loss, dtype, backend, seed, optimizer kind, shuffle-generator state,
epochs trained) and the arrays: flat parameters, BatchNorm running
statistics, optimizer buffers, and the step counters. A model loaded from it
continues training bit-for-bit as if it had never stopped.

Writes go to a temporary file in the target's folder, are flushed and
fsynced, then renamed over the target with ``os.replace``: a crash mid-save
leaves the previous file intact.
"""
import json
import os
import tempfile
import zipfile

import numpy as np

FORMAT = "fastbp-model"
VERSION = 1
_ARRAYS = ("params", "state", "opt_a", "opt_b", "counters")


def atomic_write(path, write):
    """Call ``write(fileobj)`` on a temporary file beside ``path``, then rename it into place."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"cannot save to {path!r}: folder {folder!r} does not exist")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def save(model, path):
    """Write ``model`` to ``path`` (an .npz file; the name is used as given)."""
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "layers": [{"type": type(layer).__name__, **layer.get_config()} for layer in model.layers],
        "loss": {"type": type(model.loss).__name__, **model.loss.get_config()},
        "dtype": model.dtype.name,
        "backend": model.backend,
        "seed": model.seed,
        "optimizer": list(model._opt_kind) if model._opt_kind else None,
        "shuffle_rng": model._shuffle_rng.bit_generator.state,
        "epochs_trained": model.epochs_trained,
        "training": model.training,
    }
    arrays = {"meta": np.array(json.dumps(meta)), "params": model.params, "state": model.state,
              "opt_a": model._opt_a, "opt_b": model._opt_b, "counters": model._counters}
    atomic_write(path, lambda f: np.savez(f, **arrays))


def _bad(path, why):
    return ValueError(f"{os.fspath(path)!r} is not a readable fastbp model file: {why}")


def load(path, backend=None):
    """Read a model written by :meth:`Sequential.save`; ``backend`` overrides the saved one.

    Raises FileNotFoundError for a missing file and ValueError for anything
    truncated, corrupted, foreign, from a newer format version, or whose
    arrays disagree with its architecture. Nothing half-built is returned.
    """
    from .layers import layer_from_config
    from .losses import loss_from_config
    from .model import Sequential

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such model file: {path!r}")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in ("meta",) + _ARRAYS if k not in z.files]
            if missing:
                raise _bad(path, f"missing {', '.join(missing)}")
            data = {k: z[k] for k in ("meta",) + _ARRAYS}
    except ValueError as exc:
        if "fastbp model file" in str(exc):
            raise
        raise _bad(path, exc) from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise _bad(path, f"{type(exc).__name__}: {exc}") from None
    try:
        meta = json.loads(str(data["meta"]))
    except (ValueError, TypeError) as exc:
        raise _bad(path, f"its description is not JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _bad(path, "it has no fastbp model description")
    version = meta.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise _bad(path, f"format version {version!r} is newer than this fastbp reads "
                         f"({VERSION}); upgrade fastbp")
    try:
        layers = [layer_from_config(c) for c in meta["layers"]]
        loss = loss_from_config(meta["loss"])
        model = Sequential(layers, loss=loss, backend=backend or meta["backend"],
                           dtype=meta["dtype"], seed=meta["seed"])
    except (KeyError, TypeError, ValueError) as exc:
        raise _bad(path, f"its architecture does not build ({exc})") from None
    expect = {"params": (model.params.shape, model.dtype), "state": (model.state.shape, model.dtype),
              "counters": ((2,), np.dtype(np.int64))}
    opt = meta.get("optimizer")
    nbuf = int(opt[1]) if opt else 0
    expect["opt_a"] = ((model.n_params if nbuf >= 1 else 0,), model.dtype)
    expect["opt_b"] = ((model.n_params if nbuf >= 2 else 0,), model.dtype)
    for key, (shape, dtype) in expect.items():
        a = data[key]
        if a.shape != shape or a.dtype != dtype:
            raise _bad(path, f"array {key!r} is {a.dtype}{a.shape}, the architecture needs "
                             f"{np.dtype(dtype)}{shape}")
    for key in ("params", "state", "opt_a", "opt_b"):
        if not np.isfinite(data[key]).all():
            raise _bad(path, f"array {key!r} holds NaN or infinite values")
    if (data["counters"] < 0).any():
        raise _bad(path, "negative step counters")
    try:
        model._shuffle_rng.bit_generator.state = meta["shuffle_rng"]
        model.epochs_trained = int(meta["epochs_trained"])
        model.training = bool(meta.get("training", False))
    except (KeyError, TypeError, ValueError) as exc:
        raise _bad(path, f"bad generator state ({exc})") from None
    model.params[...] = data["params"]
    model.state[...] = data["state"]
    model._opt_kind = tuple(opt) if opt else None
    model._opt_a = data["opt_a"].copy()
    model._opt_b = data["opt_b"].copy()
    model._counters[...] = data["counters"]
    return model
