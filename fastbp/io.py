"""save / load: one .npz per model, never pickle, written atomically.

This module knows the file format only: it writes the state a model gives
(:meth:`fastbp.Sequential.state_dict`) and hands what it reads back to the
model type registered for it (:meth:`fastbp.Sequential.from_state`). It
imports nothing of the model.

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
Targets follow ``cp``'s conventions: an existing target must be a regular
file (FIFOs, sockets and device nodes are refused, never replaced); a
symbolic link is followed and the file it points to is replaced (the link
stays; a dangling link is refused); a write-protected file is refused
(``PermissionError``) unless the user may write it anyway (root).

Reading never unpickles and never trusts a size it has not checked: only a
regular file is opened for reading (a FIFO or device is refused before
anything is read), every member must be stored uncompressed, the members
together cannot claim more bytes than the file holds, each ``.npy`` header
must describe exactly the bytes its member holds, and the digest must match,
before a model is built; a description nested more than ``_MAX_DEPTH``
deep is refused. Anything else (truncated, corrupted, foreign, newer format, arrays
that disagree with the architecture) raises ``ValueError``; a missing file
raises ``FileNotFoundError``.
"""
import hashlib
import json
import math
import os
import stat
import tempfile
import zipfile

import numpy as np

from ._validate import check_path
from .backend import get_backend

FORMAT = "fastbp-model"
VERSION = 2              # 2: adds the digest; version-1 files (no digest) still load
_ARRAYS = ("params", "state", "opt_a", "opt_b", "counters")
_MAX_META_CHARS = 1 << 22
_MAX_DEPTH = 32         # nesting of the JSON description (fastbp writes 3)
_OPTIMIZERS = {"SGD": (0, 1), "Adam": (2,)}     # kind -> allowed buffer counts
_MODEL_TYPES = {}       # name -> from_state(state, backend)


def register_model(name, from_state):
    """Let :func:`load` build models of type ``name`` with ``from_state(state, backend)``."""
    _MODEL_TYPES[name] = from_state


# --------------------------------------------------------------------------- paths
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
    if os.path.islink(path):            # replace the file the link points to; keep the link
        path = os.path.realpath(path)
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
    """Write ``model`` to ``path`` (an .npz file; the name is used as given), atomically.

    ``model`` is anything with a ``state_dict()`` (a fastbp model); the state
    is taken once, so the file is one consistent snapshot. ``path``: see the
    module docstring for which existing targets are replaced or refused.
    """
    if not callable(getattr(model, "state_dict", None)):
        raise TypeError(f"model must be a fastbp model, got {type(model).__name__}")
    path = check_path(path)
    state = model.state_dict()
    write_state(path, type(model).__name__, state["description"], state["arrays"])


def write_state(path, model_type, description, arrays):
    """Write a model's description (JSON-able dict) and arrays as a model file, atomically."""
    meta = {"format": FORMAT, "version": VERSION, **description}
    if model_type != "Sequential":
        meta["model"] = model_type
    meta_text = json.dumps(meta)
    arrays = {k: np.ascontiguousarray(arrays[k]) for k in _ARRAYS}
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


def _open_regular(path):
    """``path`` opened for reading, refusing anything but a regular file before reading it."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))   # a FIFO cannot block
    except FileNotFoundError:
        raise FileNotFoundError(f"no such model file: {path!r}") from None
    except OSError as exc:
        raise _Bad(f"{type(exc).__name__}: {exc}") from None
    st = os.fstat(fd)
    if stat.S_ISREG(st.st_mode):
        return os.fdopen(fd, "rb"), st.st_size
    os.close(fd)
    if stat.S_ISDIR(st.st_mode):
        raise ValueError(f"path {path!r} is a folder, not a model file")
    raise _Bad("it is not a regular file (a FIFO, socket or device); fastbp reads model "
               "files only from regular files")


def _read(f, file_size):
    """The members of a model file, as {name: array}; raises _Bad."""
    with zipfile.ZipFile(f) as zf:
        names = set(zf.namelist())
        claimed = sum(info.file_size for info in zf.infolist())
        if claimed > file_size:
            raise _Bad(f"its members claim {claimed} bytes, more than the whole file "
                       f"({file_size})")
        meta = _read_member(zf, "meta", file_size)
        if meta.dtype.kind != "U" or meta.shape != () or meta.dtype.itemsize > 4 * _MAX_META_CHARS:
            raise _Bad("it has no fastbp model description")
        data = {"meta": meta}
        for key in _ARRAYS:
            data[key] = _read_member(zf, key, file_size)
        if "digest.npy" in names:
            data["digest"] = _read_member(zf, "digest", file_size)
    return data


def _depth(value):
    """How deeply lists and dicts nest in ``value`` (iteratively: no recursion limit)."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        v, d = todo.pop()
        if isinstance(v, (list, dict)):
            deepest = max(deepest, d)
            todo.extend((x, d + 1) for x in (v.values() if isinstance(v, dict) else v))
    return deepest


def _parse_meta(meta_text):
    try:
        meta = json.loads(meta_text)
    except RecursionError:
        raise _Bad(f"its description nests deeper than {_MAX_DEPTH} levels") from None
    except ValueError as exc:
        raise _Bad(f"its description is not JSON ({exc})") from None
    if _depth(meta) > _MAX_DEPTH:
        raise _Bad(f"its description nests deeper than {_MAX_DEPTH} levels")
    return meta


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


def read_state(path):
    """(model type, description, arrays) from a model file, verified; raises ValueError.

    The description is the model's (the format and version keys removed).
    """
    try:
        f, file_size = _open_regular(path)
    except _Bad as exc:
        raise _bad(path, exc) from None
    try:
        with f:
            data = _read(f, file_size)
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
        meta = _parse_meta(meta_text)
        version = _check_meta(meta)
        if version >= 2 and "digest" not in data:
            raise _Bad("it has no checksum")
    except _Bad as exc:
        raise _bad(path, exc) from None
    description = {k: v for k, v in meta.items() if k not in ("format", "version", "model")}
    return meta.get("model", "Sequential"), description, {k: data[k] for k in _ARRAYS}


def load(path, backend=None):
    """Read a model written by :meth:`Sequential.save`; ``backend`` overrides the saved one.

    Raises FileNotFoundError for a missing file, TypeError for a path or
    backend of the wrong type, and ValueError for anything truncated,
    corrupted, foreign, not a regular file, from a newer format version, or
    whose arrays disagree with its architecture. Nothing half-built is
    returned.
    """
    if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file path (str or os.PathLike), "
                        f"got {type(path).__name__} {path!r}")
    path = os.fspath(path)
    if backend is not None:
        get_backend(backend)           # ValueError naming the backend
    model_type, description, arrays = read_state(path)
    from_state = _MODEL_TYPES.get(model_type)
    if from_state is None:
        raise _bad(path, f"unknown model type {model_type!r}")
    try:
        return from_state({"description": description, "arrays": arrays}, backend)
    except (KeyError, TypeError, ValueError) as exc:
        raise _bad(path, exc) from None
