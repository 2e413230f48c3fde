"""save / load: one .npz per model, never pickle, written atomically.

The file is an uncompressed zip of ``.npy`` members (what ``numpy.savez``
writes):

- ``meta``: a JSON description (format name and version, layers and their
  arguments, loss, dtype, backend, seed, optimizer kind, the shuffle
  generator's state, epochs trained, train/eval mode);
- ``params`` (P,), ``state`` (BatchNorm running statistics), ``opt_a`` /
  ``opt_b`` (momentum buffer or Adam moments), ``counters`` (dropout step,
  optimizer step), in the model's dtype (counters int64);
- ``digest``: SHA-256 over the description and every array (name, dtype,
  shape, bytes), so a flipped byte anywhere that matters is caught on load.

A model loaded from the file continues training bit-for-bit as if it had
never stopped.

Writing: to a temporary file in the target's folder, flushed and fsynced,
then renamed over the target with ``os.replace`` (atomic on POSIX and
Windows): a crash or kill mid-save leaves the previous file intact (and at
worst a stray ``.<name>.*.tmp`` beside it), never a half-written target.

Reading never unpickles and never trusts a size it has not checked: every
member must be stored uncompressed, its ``.npy`` header must describe exactly
the bytes the member holds, and the digest must match, before a model is
built. Anything else (truncated, corrupted, foreign, newer format, arrays
that disagree with the architecture) raises ``ValueError``; a missing file
raises ``FileNotFoundError``.
"""
import hashlib
import json
import math
import os
import tempfile
import zipfile

import numpy as np

FORMAT = "fastbp-model"
VERSION = 2              # 2: adds the digest; version-1 files (no digest) still load
_ARRAYS = ("params", "state", "opt_a", "opt_b", "counters")
_MAX_META_CHARS = 1 << 22
_OPTIMIZERS = {"SGD": (0, 1), "Adam": (2,)}     # kind -> allowed buffer counts


# --------------------------------------------------------------------------- paths
def check_path(path, name="path"):
    """``path`` as a str after checking it can be written: a str or os.PathLike
    naming a file (not a folder) in a folder that exists.

    Raises TypeError (wrong type), FileNotFoundError (the folder does not
    exist) or ValueError (empty, or a folder); every message names ``name``.
    """
    if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a file path (str or os.PathLike), "
                        f"got {type(path).__name__} {path!r}")
    path = os.fspath(path)
    if not isinstance(path, str):
        raise TypeError(f"{name} must be a text file path, got {path!r}")
    if not path or path.endswith(("/", os.sep)):
        raise ValueError(f"{name} must name a file, got {path!r}")
    if os.path.isdir(path):
        raise ValueError(f"{name} {path!r} is a folder; give a file name such as "
                         f"{os.path.join(path, 'model.npz')!r}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot write {name} {path!r}: folder {folder!r} does not exist")
    return path


def _umask():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)      # no way to read it without setting it
    os.umask(mask)
    return mask


def atomic_write(path, write):
    """Call ``write(fileobj)`` on a temporary file beside ``path``, then rename it into place.

    The target is either left as it was or replaced by the complete new file.
    The new file gets the permissions an ordinary ``open(path, "wb")`` would
    give (an existing target keeps its mode).
    """
    path = check_path(path)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        mode = os.stat(path).st_mode & 0o777
    except OSError:
        mode = 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            if hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), mode)
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


# --------------------------------------------------------------------------- save
def _digest(meta_text, arrays):
    h = hashlib.sha256()
    h.update(FORMAT.encode())
    h.update(meta_text.encode("utf-8"))
    for key in _ARRAYS:
        a = np.ascontiguousarray(arrays[key])
        h.update(f"\0{key}\0{a.dtype.str}\0{a.shape}\0".encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def save(model, path):
    """Write ``model`` to ``path`` (an .npz file; the name is used as given), atomically."""
    from .model import Sequential

    if not isinstance(model, Sequential):
        raise TypeError(f"model must be a fastbp Sequential, got {type(model).__name__}")
    path = check_path(path)
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
        "epochs_trained": int(model.epochs_trained),
        "training": bool(model.training),
    }
    meta_text = json.dumps(meta)
    arrays = {"params": model.params, "state": model.state, "opt_a": model._opt_a,
              "opt_b": model._opt_b, "counters": model._counters}
    arrays = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    members = {"meta": np.array(meta_text), **arrays,
               "digest": np.array(_digest(meta_text, arrays))}
    atomic_write(path, lambda f: np.savez(f, **members))


# --------------------------------------------------------------------------- load
class _Bad(Exception):
    """Internal: the file is not a valid model file, for the reason given."""


def _bad(path, why):
    return ValueError(f"{path!r} is not a readable fastbp model file: {why}")


def _read_member(zf, name, file_size):
    """One ``.npy`` member, after checking its header against the bytes it holds."""
    try:
        info = zf.getinfo(name + ".npy")
    except KeyError:
        raise _Bad(f"it has no {name!r} array") from None
    if info.compress_type != zipfile.ZIP_STORED:
        raise _Bad(f"array {name!r} is compressed; fastbp writes uncompressed members")
    if info.file_size > file_size:
        raise _Bad(f"array {name!r} claims {info.file_size} bytes, more than the whole file")
    with zf.open(info) as fp:
        version = np.lib.format.read_magic(fp)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
        else:
            raise _Bad(f"array {name!r} has .npy version {version}")
        if dtype.hasobject or dtype.kind not in "biufU":
            raise _Bad(f"array {name!r} has dtype {dtype}, which fastbp never writes")
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes != info.file_size - fp.tell():
            raise _Bad(f"array {name!r} header describes {nbytes} bytes but the member holds "
                       f"{info.file_size - fp.tell()}")
        data = fp.read(nbytes)
        if len(data) != nbytes or fp.read(1):   # reading to the end checks the zip CRC
            raise _Bad(f"array {name!r} is truncated")
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C").copy()


def _read(path):
    """The members of a model file, as {name: array}; raises _Bad."""
    file_size = os.path.getsize(path)
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        meta = _read_member(zf, "meta", file_size)
        if meta.dtype.kind != "U" or meta.shape != () or meta.dtype.itemsize > 4 * _MAX_META_CHARS:
            raise _Bad("it has no fastbp model description")
        data = {"meta": meta}
        for key in _ARRAYS:
            data[key] = _read_member(zf, key, file_size)
        if "digest.npy" in names:
            data["digest"] = _read_member(zf, "digest", file_size)
    return data


def _check_meta(meta):
    """Type-check the description (the parts read before building the model)."""
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _Bad("it has no fastbp model description")
    version = meta.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise _Bad(f"bad format version {version!r}")
    if version > VERSION:
        raise _Bad(f"it is format version {version}, newer than this fastbp reads "
                   f"({VERSION}); upgrade fastbp")
    kinds = {"layers": list, "loss": dict, "dtype": str, "backend": str, "seed": int,
             "epochs_trained": int, "shuffle_rng": dict, "training": bool}
    for key, kind in kinds.items():
        value = meta.get(key)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise _Bad(f"its description has {key}={value!r}, expected a {kind.__name__}")
    if meta["epochs_trained"] < 0:
        raise _Bad(f"negative epochs_trained {meta['epochs_trained']}")
    if not meta["layers"] or not all(isinstance(c, dict) for c in meta["layers"]):
        raise _Bad("its layer list is empty or malformed")
    opt = meta.get("optimizer")
    if opt is not None:
        if (not isinstance(opt, list) or len(opt) != 2 or opt[0] not in _OPTIMIZERS
                or isinstance(opt[1], bool) or opt[1] not in _OPTIMIZERS[opt[0]]):
            raise _Bad(f"unknown optimizer state {opt!r}")
    return version


def load(path, backend=None):
    """Read a model written by :meth:`Sequential.save`; ``backend`` overrides the saved one.

    Raises FileNotFoundError for a missing file, TypeError for a path or
    backend of the wrong type, and ValueError for anything truncated,
    corrupted, foreign, from a newer format version, or whose arrays disagree
    with its architecture. Nothing half-built is returned.
    """
    from .backend import get_backend
    from .layers import BatchNorm, Dense, layer_from_config
    from .losses import loss_from_config
    from .model import Sequential

    if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file path (str or os.PathLike), "
                        f"got {type(path).__name__} {path!r}")
    path = os.fspath(path)
    if backend is not None:
        get_backend(backend)           # ValueError naming the backend
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such model file: {path!r}")
    if os.path.isdir(path):
        raise ValueError(f"path {path!r} is a folder, not a model file")
    try:
        data = _read(path)
    except _Bad as exc:
        raise _bad(path, exc) from None
    except MemoryError:
        raise
    except zipfile.BadZipFile as exc:
        raise _bad(path, f"not a valid .npz (zip) file ({exc})") from None
    except Exception as exc:       # OSError, EOFError, struct/zlib errors, bad headers...
        raise _bad(path, f"{type(exc).__name__}: {exc}") from None

    try:
        meta_text = str(data["meta"])
        if "digest" in data:
            stored = data["digest"]
            if stored.dtype.kind != "U" or stored.shape != () or \
                    str(stored) != _digest(meta_text, data):
                raise _Bad("its checksum does not match (the file is corrupted)")
        try:
            meta = json.loads(meta_text)
        except ValueError as exc:
            raise _Bad(f"its description is not JSON ({exc})") from None
        version = _check_meta(meta)
        if version >= 2 and "digest" not in data:
            raise _Bad("it has no checksum")
        try:
            layers = [layer_from_config(c) for c in meta["layers"]]
            loss = loss_from_config(meta["loss"])
        except (KeyError, TypeError, ValueError) as exc:
            raise _Bad(f"its architecture does not build ({exc})") from None
        # Check the parameter count before building, so a damaged description
        # can never make the model allocate more than the file holds.
        n_params = sum(layer.n_params() if isinstance(layer, Dense) else
                       2 * layer.num_features if isinstance(layer, BatchNorm) else 0
                       for layer in layers)
        if n_params != data["params"].size:
            raise _Bad(f"its layers have {n_params} parameters but array 'params' holds "
                       f"{data['params'].size}")
        try:
            model = Sequential(layers, loss=loss, backend=backend or meta["backend"],
                               dtype=meta["dtype"], seed=meta["seed"])
        except (KeyError, TypeError, ValueError) as exc:
            raise _Bad(f"its architecture does not build ({exc})") from None
        opt = meta.get("optimizer")
        nbuf = int(opt[1]) if opt else 0
        expect = {"params": ((model.n_params,), model.dtype),
                  "state": (model.state.shape, model.dtype),
                  "opt_a": ((model.n_params if nbuf >= 1 else 0,), model.dtype),
                  "opt_b": ((model.n_params if nbuf >= 2 else 0,), model.dtype),
                  "counters": ((2,), np.dtype(np.int64))}
        for key, (shape, dtype) in expect.items():
            a = data[key]
            if a.shape != shape or a.dtype != dtype:
                raise _Bad(f"array {key!r} is {a.dtype}{a.shape}, the architecture needs "
                           f"{np.dtype(dtype)}{shape}")
        for key in ("params", "state", "opt_a", "opt_b"):
            if not np.isfinite(data[key]).all():
                raise _Bad(f"array {key!r} holds NaN or infinite values")
        if (data["counters"] < 0).any():
            raise _Bad("negative step counters")
        try:
            model._shuffle_rng.bit_generator.state = meta["shuffle_rng"]
        except (KeyError, TypeError, ValueError) as exc:
            raise _Bad(f"bad shuffle generator state ({exc})") from None
    except _Bad as exc:
        raise _bad(path, exc) from None
    model.epochs_trained = meta["epochs_trained"]
    model.training = meta["training"]
    model.params[...] = data["params"]
    model.state[...] = data["state"]
    model._opt_kind = (opt[0], int(opt[1])) if opt else None
    model._opt_a = data["opt_a"].copy()
    model._opt_b = data["opt_b"].copy()
    model._counters[...] = data["counters"]
    return model
