"""One line on stderr the first time a compile takes over a second.

Numba announces every compilation as a ``"numba:compile"`` event
(:mod:`numba.core.event`). When the outermost one of a process has run for
:data:`DELAY` seconds, a timer prints what is compiling and whether it is
cached afterwards, once per process, only when stderr is a terminal (never
into a pipe or a log file), and never with ``FASTBP_COMPILE_NOTICE=0`` or the
CLI's ``--quiet``. Compiles that finish sooner print nothing.
"""
import sys
import threading

from . import _cache

DELAY = 1.0
_installed = False
_state = {"depth": 0, "timer": None, "shown": False}
_guard = threading.Lock()


def _describe(event):
    data = event.data or {}
    disp = data.get("dispatcher")
    name = getattr(getattr(disp, "py_func", None), "__name__", "kernels")
    if name.startswith("train_epochs_online"):
        name = "the per-sample training kernel"
    # the data's dtype: from the arrays passed, or inside the records (fastbp.plan) passed
    found = {str(getattr(t, "dtype", "")) for a in data.get("args", ())
             for t in (getattr(a, "types", None) or (a,))}
    dtypes = sorted(found & {"float32", "float64"})
    return name + (f" ({', '.join(dtypes)})" if dtypes else "")


def _show(what):
    with _guard:
        if _state["shown"] or _state["depth"] == 0:
            return
        _state["shown"] = True
    root = _cache.folder()
    after = (f"cached in {root} for later runs" if root is not None
             else "not cached: no private cache folder")
    _cache.say("compile", f"compiling {what} on first use ({after}) ...")


def _wanted():
    try:
        return not _cache.quiet and sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _on_start(event):
    with _guard:
        _state["depth"] += 1
        if _state["depth"] != 1 or _state["shown"] or not _wanted():
            return
        timer = threading.Timer(DELAY, _show, (_describe(event),))
        timer.daemon = True
        _state["timer"] = timer
    timer.start()


def _on_end(event):
    with _guard:
        _state["depth"] = max(0, _state["depth"] - 1)
        timer = _state["timer"] if _state["depth"] == 0 else None
        if timer is not None:
            _state["timer"] = None
    if timer is not None:
        timer.cancel()


def install():
    """Listen to Numba's compile events (once per process)."""
    global _installed
    if _installed:
        return
    from numba.core import event

    class Listener(event.Listener):
        def on_start(self, ev):
            _on_start(ev)

        def on_end(self, ev):
            _on_end(ev)

    event.register("numba:compile", Listener())
    _installed = True
