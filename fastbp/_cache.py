"""Where fastbp keeps its compiled kernels, and the one key that guards them.

Numba's own disk cache keys a compiled function on its own source file only,
unpickles whatever index it finds in the folder it picks (the package's
``__pycache__``, ``$NUMBA_CACHE_DIR``, ``~/.cache/numba``) and does not record
the compile flags. A kernel compiled against an older callee, an older
constant in ``plan.py`` / ``_config.py`` or with ``FASTBP_FASTMATH=1`` would
then keep running, and a folder another user can write would hand them the
victim's process. So fastbp never lets Numba choose:

- :func:`key` hashes every source the kernels are built from (``KEY_SOURCES``:
  all of ``fastbp/kernels``, the generated-source template included, plus
  ``plan.py``, ``_config.py``, ``_blas.py`` and this file), the compile flags,
  the Numba, llvmlite, NumPy and Python versions and which BLAS the kernels
  call (:func:`fastbp._blas.identity`). Everything cached lives in
  ``<private folder>/<key>/``: a change of any of them starts a new folder,
  and nothing compiled under another key is ever read.
- the private folder is the first of ``$FASTBP_CACHE_DIR``,
  ``$NUMBA_CACHE_DIR/fastbp-<uid>``, ``$XDG_CACHE_HOME/fastbp`` (else
  ``~/.cache/fastbp``) and ``$TMPDIR/fastbp-<uid>`` that is (or can be made) a
  real folder, not a symbolic link, owned by the current user, writable by
  no one else (created 0700), under parents no other user can rename it in.
  When none qualifies, kernels compile without a disk cache and one line on
  stderr says so.
- :func:`attach` gives each kernel a Numba ``FunctionCache`` whose locator
  points into that folder (replacing Numba's locator search, which would fall
  back to the unverified places above); loads and saves of one folder are
  serialised between processes with a file lock, and an entry whose
  signature is not the one asked for is ignored.
- :func:`load_generated` runs a generated kernel module from the text fastbp
  generated in this process; the copy on disk (which Numba's cache needs) is
  compared with that text and rewritten when it differs, and never executed.

The settings this module follows (``FASTBP_NUMBA_CACHE``, the compile flags,
``FASTBP_CACHE_DIR``, ``FASTBP_COMPILE_NOTICE``) are read by
:mod:`fastbp._config`, which hands them over through :func:`configure` when it
is imported; this module imports nothing else of fastbp but :mod:`fastbp._blas`.
"""
import functools
import glob
import hashlib
import inspect
import linecache
import os
import shutil
import stat
import sys
import tempfile
import threading
import time
import types
from contextlib import contextmanager

_PKG = os.path.dirname(os.path.abspath(__file__))
KEY_SOURCES = ("kernels/**/*.py", "plan.py", "_config.py", "_cache.py", "_blas.py")
_STALE_SECONDS = 7 * 24 * 3600      # other keys' folders unused this long are removed
_lock = threading.RLock()
_said = set()                       # one-line notices already printed
# Set by fastbp._config (see configure):
enabled = True                      # FASTBP_NUMBA_CACHE: False compiles without a disk cache
compile_flags = {}                  # the Numba compile flags, part of the key
cache_dir = None                    # reads FASTBP_CACHE_DIR (None when unset) at every use
quiet = False                       # no notices; FASTBP_COMPILE_NOTICE=0 and the CLI's --quiet


def configure(numba_cache, numba_flags, cache_dir_setting, compile_notice):
    """Take fastbp's settings from :mod:`fastbp._config`: whether kernels are cached,
    the compile flags, the function that reads ``$FASTBP_CACHE_DIR`` and whether
    compile notices are shown."""
    global enabled, compile_flags, cache_dir, quiet
    enabled, compile_flags, cache_dir = bool(numba_cache), numba_flags, cache_dir_setting
    quiet = not compile_notice


def say(tag, line):
    """Print ``fastbp: line`` on stderr once per process for each ``tag``."""
    with _lock:
        if tag in _said or quiet:
            return
        _said.add(tag)
    try:
        print(f"fastbp: {line}", file=sys.stderr, flush=True)
    except (OSError, ValueError):       # stderr closed: nothing to tell
        pass


# --------------------------------------------------------------------------- the key
@functools.lru_cache(maxsize=None)
def key():
    """16 hex digits naming this build of the kernels (sources, flags, versions)."""
    import llvmlite
    import numba
    import numpy

    from . import _blas

    digest = hashlib.sha256()
    files = sorted({p for pattern in KEY_SOURCES
                    for p in glob.glob(os.path.join(_PKG, pattern), recursive=True)})
    for path in files:
        digest.update(os.path.relpath(path, _PKG).encode() + b"\0")
        with open(path, "rb") as f:
            digest.update(f.read() + b"\0")
    flags = sorted((k, repr(v)) for k, v in compile_flags.items() if k != "cache")
    digest.update(repr(flags).encode())
    digest.update(f"numba {numba.__version__} llvmlite {llvmlite.__version__} "
                  f"numpy {numpy.__version__} python {sys.version} "
                  f"blas {_blas.identity()}".encode())
    return digest.hexdigest()[:16]


# --------------------------------------------------------------------------- the folder
def _uid():
    return os.geteuid() if hasattr(os, "geteuid") else None


def _safe_parents(path):
    """True when no other user can rename or replace ``path`` through its parents."""
    uid = _uid()
    if uid is None:
        return True
    cur = os.path.realpath(os.path.dirname(os.path.abspath(path)))
    while True:
        st = os.stat(cur)
        if st.st_uid not in (uid, 0):
            return False
        if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
            return False
        parent = os.path.dirname(cur)
        if parent == cur:
            return True
        cur = parent


def private_dir(path):
    """Create ``path`` (mode 0700) if missing; return None if it is safe to use, else why not.

    Safe: a real folder (a symbolic link is not followed), owned by the
    current user, writable by no one else, under parents no other user can
    rename it in. A folder of the user's that others could write is closed
    (chmod 0700) first; what others could have put in it is in a subfolder
    that is checked in turn before use.
    """
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        st = os.lstat(path)
        if not stat.S_ISDIR(st.st_mode):
            return "it is not a folder (symbolic links are not followed)"
        uid = _uid()
        if uid is not None:
            if st.st_uid != uid:
                return f"it belongs to another user (uid {st.st_uid})"
            if stat.S_IMODE(st.st_mode) & 0o077:
                os.chmod(path, 0o700)
            if not _safe_parents(path):
                return "another user can rename it (a parent folder is theirs or writable)"
        if not os.access(path, os.W_OK | os.X_OK):
            return "it is not writable"
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def _candidates():
    from numba.core import config

    uid = _uid()
    tag = "" if uid is None else f"-{uid}"
    explicit = cache_dir() if cache_dir is not None else None
    if explicit:
        yield explicit
    if config.CACHE_DIR:
        yield os.path.join(config.CACHE_DIR, f"fastbp{tag}")
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    yield os.path.join(xdg, "fastbp")
    yield os.path.join(tempfile.gettempdir(), f"fastbp{tag}")


def folder():
    """This key's private cache folder, or None when kernels compile without a disk cache."""
    if not enabled:
        return None
    with _lock:
        return _resolve(tuple(_candidates()), key())


@functools.lru_cache(maxsize=8)
def _resolve(candidates, k):
    refused = []
    for base in candidates:
        why = private_dir(base)
        if why is None:
            here = os.path.join(base, k)
            fresh = not os.path.lexists(here)
            why = private_dir(here)
            if why is None:
                if fresh:
                    _prune(base, k)
                else:
                    _touch(here)
                if refused:
                    say("cache-moved", f"not caching kernels in {refused[0][0]} ({refused[0][1]}); "
                                       f"using {base}")
                return here
        refused.append((base, why))
    say("no-cache", "no private, writable folder for compiled kernels ("
        + "; ".join(f"{b}: {w}" for b, w in refused)
        + "); compiling without a disk cache (set FASTBP_CACHE_DIR to a folder of yours)")
    return None


def _touch(path):
    try:
        os.utime(path)
    except OSError:
        pass


def _prune(base, keep):
    """Remove other keys' folders that no process has used for a week."""
    now = time.time()
    for entry in os.scandir(base):
        if entry.name == keep or len(entry.name) != 16 or not entry.is_dir(follow_symlinks=False):
            continue
        try:
            int(entry.name, 16)
            if now - entry.stat(follow_symlinks=False).st_mtime > _STALE_SECONDS:
                shutil.rmtree(entry.path, ignore_errors=True)
        except (ValueError, OSError):
            continue


@contextmanager
def _file_lock(path, exclusive):
    """An flock on ``path/.lock`` (shared or exclusive) between processes."""
    try:
        import fcntl
    except ImportError:                         # no flock here: Numba's atomic renames only
        yield
        return
    try:
        fd = os.open(os.path.join(path, ".lock"), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- Numba's side
@functools.lru_cache(maxsize=256)
def _file_hash(path, mtime_ns, size):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _make_cache_class():
    from numba.core import sigutils
    from numba.core.caching import CompileResultCacheImpl, FunctionCache, _CacheLocator

    class Locator(_CacheLocator):
        """Numba cache locator: ``<private folder>/<key>/<the source's folder in fastbp>``."""

        def __init__(self, py_func, py_file, root):
            self._py_file = py_file
            self._lineno = py_func.__code__.co_firstlineno
            self._root = root
            real = os.path.realpath(py_file)
            if os.path.dirname(real) == os.path.join(root, "generated"):
                sub = "generated"
            elif real.startswith(_PKG + os.sep):
                sub = os.path.relpath(os.path.dirname(real), _PKG).replace(os.sep, "_")
            else:
                sub = self.get_suitable_cache_subpath(py_file)
            self._path = os.path.join(root, sub)

        def ensure_cache_path(self):
            os.makedirs(self._path, mode=0o700, exist_ok=True)

        def get_cache_path(self):
            return self._path

        def get_source_stamp(self):
            st = os.stat(self._py_file)
            return _file_hash(self._py_file, st.st_mtime_ns, st.st_size)

        def get_disambiguator(self):
            return str(self._lineno)

    class Impl(CompileResultCacheImpl):
        def __init__(self, py_func):    # CacheImpl.__init__ without Numba's locator search
            self._lineno = py_func.__code__.co_firstlineno
            qualname = getattr(py_func, "__qualname__", py_func.__name__)
            source = inspect.getfile(py_func)
            self._locator = Locator(py_func, source, py_func.__fastbp_cache_root__)
            modname = os.path.splitext(os.path.basename(source))[0]
            self._filename_base = self.get_filename_base(f"{modname}.{qualname}",
                                                         getattr(sys, "abiflags", ""))

    class KernelCache(FunctionCache):
        """Numba's FunctionCache in fastbp's folder, locked between processes."""
        _impl_class = Impl

        def __init__(self, py_func, root):
            self._root = root
            py_func.__fastbp_cache_root__ = root
            super().__init__(py_func)

        def load_overload(self, sig, target_context):
            with _file_lock(self._root, exclusive=False):
                cres = super().load_overload(sig, target_context)
            args, _ = sigutils.normalize_signature(sig)
            if cres is not None and tuple(cres.signature.args) != tuple(args):
                return None         # never run another signature's code
            return cres

        def save_overload(self, sig, data):
            try:
                with _file_lock(self._root, exclusive=True):
                    super().save_overload(sig, data)
            except OSError as exc:      # a full disk: this kernel just stays uncached
                say("save-failed", f"could not cache a compiled kernel in {self._root} "
                                   f"({exc.strerror or exc})")

    return KernelCache


_kernel_cache_class = functools.lru_cache(maxsize=1)(_make_cache_class)


def attach(dispatcher):
    """Cache ``dispatcher``'s machine code in fastbp's folder (or nowhere); return it."""
    root = folder()
    if root is not None and os.path.isfile(inspect.getfile(dispatcher.py_func)):
        dispatcher._cache = _kernel_cache_class()(dispatcher.py_func, root)
    return dispatcher


# --------------------------------------------------------------------------- generated source
def _read_exact(path):
    """The file's text, or None when it is missing, a link, not a file or unreadable."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return None
        try:
            return f.read().decode("utf-8")
        except UnicodeDecodeError:
            return None


def _store(folder_path, name, text):
    """``folder_path/name`` holding exactly ``text`` (rewritten atomically if not); its path."""
    os.makedirs(folder_path, mode=0o700, exist_ok=True)
    path = os.path.join(folder_path, name)
    if _read_exact(path) != text:
        fd, tmp = tempfile.mkstemp(dir=folder_path, prefix=name + ".", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
    return path


def load_generated(name, text):
    """Import ``text`` as module ``name``, its kernels cached like fastbp's own.

    The module runs the ``text`` given here, never bytes read back from disk;
    the file in the private folder only lets Numba cache (and show) it.
    """
    root = folder()
    path = None
    if root is not None:
        try:
            path = _store(os.path.join(root, "generated"), name + ".py", text)
        except OSError:
            path = None
    filename = path or f"<fastbp generated {name}>"
    if path is None:                    # tracebacks can still show the lines
        linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    module = types.ModuleType(name)
    module.__file__ = filename
    code = compile(text, filename, "exec")
    sys.modules[name] = module
    try:
        exec(code, module.__dict__)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module

