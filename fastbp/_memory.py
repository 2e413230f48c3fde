"""The memory budget: ``fit`` refuses, up front, a data set it could only train on by swapping.

``fit`` needs the training data as a C-contiguous array of the model's dtype
(a converted copy when the caller's array is another dtype or layout), the
targets, and its working buffers (one batch of activations and gradients,
the shuffled orders, parameters, gradients, optimizer buffers and their
snapshot). :func:`check_fit` estimates that from the arrays' shapes alone,
before anything is converted or copied, and raises :class:`MemoryBudgetError`
when it exceeds the budget.

The budget
----------
``FASTBP_MEMORY_BUDGET`` (read at every ``fit``): bytes as an integer or with
a binary suffix (``"512M"``, ``"16G"``, ``"1.5T"``), or a percentage of the
machine's physical memory (``"50%"``); ``"off"`` (or ``"0"``) disables the
check. With a budget set, everything ``fit`` uses counts, the data set
included, even when it is already in memory.

Default (unset): what ``fit`` can use without swapping, i.e. 80% of the
memory available now (``MemAvailable`` in ``/proc/meminfo``, else the free
pages from ``os.sysconf``) plus the caller's data array when ``fit`` uses it
as it is (it is resident already, so it costs nothing new). If the available
memory cannot be read, no default check is made; nor is one made for a run
that needs under 4 MiB of new memory (not worth reading /proc/meminfo per call).
"""
import os

import numpy as np

from ._config import MEMORY_BUDGET_ENV as ENV
from ._config import memory_budget_env
from ._config import parse_size as _parse_size
from ._engine import workspace_bytes

DEFAULT_FRACTION = 0.8
_ALWAYS_FITS = 4 << 20      # new bytes the default budget takes without looking


class MemoryBudgetError(MemoryError, ValueError):
    """The data set (with fit's buffers) does not fit in the memory budget.

    A MemoryError raised before anything is allocated; also a ValueError,
    since it is the size of the input that is refused.
    """


def _meminfo(field):
    """A field of /proc/meminfo in bytes, or None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def total_memory():
    """Physical memory in bytes, or None if it cannot be read."""
    total = _meminfo("MemTotal")
    if total is None:
        try:
            total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None
    return total


def available_memory():
    """Memory available to new allocations without swapping, in bytes, or None."""
    avail = _meminfo("MemAvailable")
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None
    return avail


def parse_size(text, name=ENV):
    """Bytes from ``"123"``, ``"512M"``, ``"1.5G"``, ``"50%"`` (of physical memory);
    None for ``"off"``/``"0"``/``"none"``. ValueError naming ``name`` otherwise."""
    return _parse_size(text, total_memory() if str(text).strip().endswith("%") else None, name)


def budget(resident=0):
    """(budget in bytes or None for no limit, a description of where it came from).

    resident: bytes of the caller's data that fit uses in place (credited to
    the default budget, which measures new allocations).
    """
    env = memory_budget_env()
    if env is not None:
        return parse_size(env), f"{ENV}={env}"
    avail = available_memory()
    if avail is None:
        return None, "no limit (available memory unknown)"
    return (int(DEFAULT_FRACTION * avail) + resident,
            f"{int(DEFAULT_FRACTION * 100)}% of the {_fmt(avail)} available now"
            + (f" plus the {_fmt(resident)} X already holds" if resident else ""))


def _fmt(nbytes):
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if nbytes >= size:
            return f"{nbytes / size:.1f} {unit}"
    return f"{int(nbytes)} B"


def fit_footprint(model, X, batch_size, epochs=1, validation_data=None,
                  max_order_elements=1 << 22):
    """(bytes fit needs, bytes of that already resident in X, a function returning an
    itemised description).

    Estimated from shapes only: X (n, d) as the model's dtype (plus nothing if
    it is used in place), targets, the batch workspace, shuffled orders,
    parameters with gradients, optimizer buffers, the two snapshots of them
    that Rollback keeps, and a converted copy of validation X.
    """
    dt = model.dtype
    item = dt.itemsize
    n, d = X.shape
    in_place = X.dtype == dt and X.flags.c_contiguous
    data = n * d * item
    k = model.n_outputs
    targets = 2 * n * max(k * item, 8)               # y as given and as converted
    try:
        b = max(1, min(int(batch_size), n))
    except (TypeError, ValueError, OverflowError):
        b = min(32, n)
    work = workspace_bytes(model._net, b, dt)   # the buffers fit allocates
    try:
        e = max(1, int(epochs))
    except (TypeError, ValueError, OverflowError):
        e = 1
    orders = 2 * 8 * n * max(1, min(e, max_order_elements // max(n, 1)))   # shuffled epochs
    params = model.n_params * item * (2 + 2 * 3)    # params, grads, 2 opt buffers, snapshots
    val = 0
    if validation_data is not None:
        try:
            Xv = validation_data[0]
            if isinstance(Xv, np.ndarray) and Xv.ndim == 2:
                val = Xv.shape[0] * Xv.shape[1] * item * (
                    0 if Xv.dtype == dt and Xv.flags.c_contiguous else 1)
        except (TypeError, IndexError, KeyError):
            pass
    need = data + targets + work + orders + params + val

    def parts():
        return (f"X {_fmt(data)} as {dt.name}" + ("" if in_place else " (a converted copy)")
                + f", targets {_fmt(targets)}, buffers {_fmt(work + orders + params + val)}")
    return need, (data if in_place else 0), parts


def check_fit(model, X, batch_size, epochs=1, validation_data=None):
    """Raise :class:`MemoryBudgetError` if ``fit(X, ...)`` would need more than the budget.

    Looks only at the shape, dtype and layout of ``X`` (an ndarray; anything
    else is left for the normal validation, which reports what is wrong with
    it) and returns ``X`` untouched; nothing is copied.
    """
    if not isinstance(X, np.ndarray) or X.ndim != 2 or X.dtype.kind not in "biuf":
        return X
    need, resident, parts = fit_footprint(model, X, batch_size, epochs, validation_data)
    if need - resident <= _ALWAYS_FITS and memory_budget_env() is None:
        return X        # a few MiB of new buffers: not worth reading /proc/meminfo per call
    limit, source = budget(resident)
    if limit is not None and need > limit:
        raise MemoryBudgetError(
            f"X of shape {X.shape} ({X.dtype}) is too large for the memory budget: fit would "
            f"need about {_fmt(need)} ({parts()}) but the budget is {_fmt(limit)} ({source}). "
            f"Train on a subset or in float32, or set {ENV} (e.g. '16G', '90%', 'off').")
    return X
