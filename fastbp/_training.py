"""``fit``'s story: validate, run chunks of epochs, roll back on divergence, call back.

:func:`fit` checks every argument (:func:`settings`), then runs the epochs
in kernel calls sized to take about ``_TARGET_CALL_SECONDS`` each (so Ctrl-C
and progress lines come promptly), keeps a snapshot of the training state
per call for :class:`Rollback`, and hands each finished call to the
callbacks of :mod:`fastbp._callbacks`. Ctrl-C handling (:class:`CtrlC`,
:func:`interruptible`) lives here too.
"""
import _signal      # signal.signal without the enum conversions (a few us per fit)
import math
import signal
import threading
import time

import numpy as np

from . import _validate as V
from . import plan as P
from ._callbacks import make_callbacks
from .optim import get_optimizer, get_schedule

_MAX_ORDER_ELEMENTS = 1 << 22      # shuffled orders precomputed per kernel call
_TARGET_CALL_SECONDS = 0.1         # how long one kernel call may run (Ctrl-C latency)
_THREAD_SECONDS = _TARGET_CALL_SECONDS  # a call expected to run longer (one epoch longer
                                   # than a call's target) goes to a worker thread, so Ctrl-C
                                   # is seen mid-call; a shorter one runs inline: a thread
                                   # costs 0.1-1 ms to start, and a B32 fit(epochs=1) right
                                   # after a threaded fit took 0.3-0.5 ms longer than after
                                   # an inline one
_THREAD_WORK = 1 << 28             # samples x params x epochs standing in for 0.1 s
                                   # before a call of this shape has been timed


class TrainingDivergedError(FloatingPointError):
    """The loss or the weights became NaN or infinite; ``.history`` holds the epochs kept.

    The model keeps the last state that is finite and predicts finite outputs
    on the training data; the message says which one that is.
    """

    def __init__(self, message, history):
        super().__init__(message)
        self.history = history


class History:
    """What ``fit`` measured, one entry per completed epoch.

    loss / accuracy: read off the training batches as they were computed
    (before each step's update), as Keras reports them. val_loss /
    val_accuracy: an eval-mode pass over the validation data after each epoch.
    """

    def __init__(self):
        self.loss, self.accuracy, self.val_loss, self.val_accuracy, self.lr = [], [], [], [], []
        self.epochs_run = 0
        self.stopped_early = False
        self.stop_reason = None         # "accuracy", "early_stopping", "interrupted" or None
        self.interrupted = False
        self.best_epoch = None
        self.seconds = 0.0

    def __repr__(self):
        last = f", loss={self.loss[-1]:.6g}" if self.loss else ""
        return (f"History(epochs_run={self.epochs_run}{last}, stopped_early={self.stopped_early}, "
                f"stop_reason={self.stop_reason!r})")

    def record(self, losses, corrects, lrs, n, ran):
        for e in range(ran):
            self.loss.append(float(losses[e]))
            self.accuracy.append(corrects[e] / n)
            self.lr.append(float(lrs[e]))
        self.epochs_run += ran

    def forget(self, epochs):
        """Drop the last ``epochs`` epochs (their weights were rolled back)."""
        if epochs:
            for record in (self.loss, self.accuracy, self.lr):
                del record[-epochs:]
            self.epochs_run -= epochs

    def stop(self, reason):
        self.stopped_early, self.stop_reason = True, reason
        self.interrupted = reason == "interrupted"


class FitSettings:
    """fit's arguments, checked (see :func:`settings`)."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


def settings(model, X, y, epochs, lr, batch_size, shuffle, optimizer, momentum, nesterov,
             weight_decay, betas, eps, lr_schedule, validation_data, patience, min_delta,
             restore_best_weights, stop_at_accuracy, verbose, print_every, checkpoint,
             checkpoint_every, sample_weight=None, l2=0.0):
    """Check every fit argument (in the order fit always has) into a :class:`FitSettings`."""
    X = model._check_X(X)
    Yf, Yi = model._check_y(y, X.shape[0])
    n = X.shape[0]
    for flag, value in (("shuffle", shuffle), ("nesterov", nesterov),
                        ("restore_best_weights", restore_best_weights)):
        V.check_bool(value, flag)
    epochs = V.check_int(epochs, "epochs")
    lr = V.check_float(lr, "lr", 0.0, None, low_open=True)
    batch = min(V.check_int(batch_size, "batch_size"), n)
    opt = get_optimizer(optimizer, momentum, nesterov, weight_decay, betas, eps)
    schedule = get_schedule(lr_schedule)
    l2 = V.check_float(l2, "l2", 0.0)
    sw = V.check_sample_weight(sample_weight, n, model.dtype)
    if model._net.has(P.BATCHNORM) and (batch == 1 or n % batch == 1):
        raise ValueError(
            f"BatchNorm needs at least 2 samples per training batch, but batch_size={batch} "
            f"with {n} samples leaves a batch of 1; choose a batch_size >= 2 that does not "
            f"leave one sample over (n % batch_size != 1)")
    if stop_at_accuracy is not None:
        stop_at_accuracy = V.check_float(stop_at_accuracy, "stop_at_accuracy", 0.0, 1.0,
                                         low_open=True)
    val = None
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise ValueError("validation_data must be a pair (X_val, y_val)")
        Xv = model._check_X(validation_data[0], "validation_data X")
        val = (Xv, validation_data[1])
        model._check_y(val[1], Xv.shape[0], "validation_data y")
    if patience is not None:
        patience = V.check_int(patience, "patience")
        if val is None:
            raise ValueError("patience (early stopping) needs validation_data")
    if print_every is not None:
        print_every = V.check_int(print_every, "print_every")
    if checkpoint is not None:
        checkpoint_every = V.check_int(checkpoint_every, "checkpoint_every")
        checkpoint = V.check_path(checkpoint, "checkpoint")
    stop_correct = 0 if stop_at_accuracy is None else max(1, math.ceil(stop_at_accuracy * n - 1e-9))
    return FitSettings(X=X, Yf=Yf, Yi=Yi, n=n, epochs=epochs, lr=lr, batch=batch,
                       shuffle=bool(shuffle), opt=opt, schedule=schedule, val=val,
                       patience=patience, min_delta=min_delta,
                       restore_best_weights=restore_best_weights, stop_correct=stop_correct,
                       verbose=verbose, print_every=print_every, checkpoint=checkpoint,
                       checkpoint_every=checkpoint_every, sw=sw, l2=l2)


def fit(model, s):
    """Run fit with settings ``s`` on ``model``; returns the :class:`History`."""
    model._prepare_optimizer_state(s.opt)
    hist, callbacks = History(), make_callbacks(model, s)
    t = P.Tensors(model.params, model.grads, model.state, model._opt_a, model._opt_b,
                model._counters)
    rollback = Rollback(model, s, hist)
    stop_flag = np.zeros(1, dtype=np.int64)
    timing = model.__dict__.setdefault("_epoch_seconds", {})    # (batch, n) -> s per epoch
    per_epoch = timing.get((s.batch, s.n))
    chunk = 1 if per_epoch is None else _chunk(per_epoch, 1 << 30)
    t_start = time.perf_counter()
    try:
        with CtrlC(stop_flag):
            while hist.epochs_run < s.epochs:
                rollback.begin_chunk()
                todo, order, lrs = _next_call(model, s, callbacks, chunk, hist.epochs_run)
                threaded = model.backend == "numpy" or (
                    per_epoch * todo > _THREAD_SECONDS if per_epoch is not None
                    else s.n * model.n_params * todo >= _THREAD_WORK)
                t0 = time.perf_counter()
                ran, status, losses, corrects = model._engine.run_epochs(
                    s.opt, t, s.X, s.Yf, s.Yi, order, lrs, s.stop_correct, s.batch, stop_flag,
                    sw=s.sw, l2=s.l2, call=lambda fn, *args: interruptible(fn, stop_flag, threaded, *args))
                elapsed = time.perf_counter() - t0
                rollback.check(status, ran, losses, corrects, lrs)      # raises if diverged
                hist.record(losses, corrects, lrs, s.n, ran)
                model.epochs_trained += ran
                if status == P.STATUS_INTERRUPTED:
                    hist.stop("interrupted")
                    break
                reason = _call_back(callbacks, hist, status)
                if reason or stop_flag[0]:
                    hist.stop(reason or "interrupted")
                    break
                if ran:   # size the next call to run about _TARGET_CALL_SECONDS
                    per_epoch = timing[(s.batch, s.n)] = elapsed / ran
                    chunk = _chunk(per_epoch, chunk * 4)
    finally:
        for cb in callbacks:
            cb.close()
        hist.seconds = time.perf_counter() - t_start
    return hist


def _chunk(per_epoch, most):
    """Epochs for a call of about ``_TARGET_CALL_SECONDS`` (1 to ``most``)."""
    return int(max(1, min(most, _TARGET_CALL_SECONDS / max(per_epoch, 1e-9))))


def _next_call(model, s, callbacks, chunk, done):
    """(epochs the next kernel call runs, their sample orders, their learning rates)."""
    todo = min(chunk, s.epochs - done)
    for cb in callbacks:
        cap = cb.max_epochs(done)
        if cap is not None:
            todo = min(todo, cap)
    if s.shuffle:
        todo = max(1, min(todo, _MAX_ORDER_ELEMENTS // s.n))
        order = np.stack([model._shuffle_rng.permutation(s.n) for _ in range(todo)])
    else:
        order = np.arange(s.n, dtype=np.int64)[None, :]
    lrs = np.array([s.lr * s.schedule.factor(model.epochs_trained + e) for e in range(todo)],
                   dtype=np.float64)
    return todo, order, lrs


def _call_back(callbacks, hist, status):
    for cb in callbacks:
        reason = cb.after_chunk(hist, hist.epochs_run, status)
        if reason:
            return reason
    return None


class Rollback:
    """Snapshots of the training state, and the one place that handles divergence.

    When a kernel call ends with a non-finite loss, or with non-finite
    weights or BatchNorm statistics, the model keeps the most recent of these
    that is finite and usable (its eval-mode output on the training data is
    finite): the weights after the last step whose loss was finite, else the
    state at the start of that kernel call, else the state fit started from.
    The History and ``epochs_trained`` roll back with it, and
    :class:`TrainingDivergedError` says which state was kept. The snapshots go
    into buffers the model keeps between fits (:meth:`_take`).
    """

    def __init__(self, model, s, hist):
        self.model, self.s, self.hist = model, s, hist
        self.start = self._take(0)
        self.chunk = None

    def _take(self, slot):
        """The training state, copied into the model's snapshot buffers ``slot`` (0: where
        fit started, 1: where the kernel call started), allocated on first use and kept:
        memory the process has not touched before costs a page fault per page (see
        README, Divergence)."""
        m = self.model
        arrays = (m.params, m.state, m._opt_a, m._opt_b, m._counters)
        kept = m.__dict__.setdefault("_snapshots", [None, None])
        bufs = kept[slot]
        if bufs is None or bufs[2].size != m._opt_a.size or bufs[3].size != m._opt_b.size:
            bufs = kept[slot] = tuple(np.empty_like(a) for a in arrays)  # or a new optimizer
        for buf, a in zip(bufs, arrays):
            np.copyto(buf, a)
        rng = m._shuffle_rng.bit_generator.state if self.s.shuffle else None  # else not drawn
        return bufs + (rng, m.epochs_trained, self.hist.epochs_run)

    def _restore(self, snap):
        m = self.model
        m.params[...], m.state[...], m._opt_a[...], m._opt_b[...], m._counters[...] = snap[:5]
        if snap[5] is not None:
            m._shuffle_rng.bit_generator.state = snap[5]
        m.epochs_trained = snap[6]
        self.hist.forget(self.hist.epochs_run - snap[7])

    def begin_chunk(self):
        # the first chunk starts where fit started: the same snapshot serves both
        self.chunk = self.start if self.chunk is None else self._take(1)

    def _finite(self):
        m = self.model
        return bool(np.isfinite(m.params).all()
                    and (m.state.size == 0 or np.isfinite(m.state).all()))

    def _usable(self):
        m, X = self.model, self.s.X
        if not self._finite():
            return False
        out = m._engine.predict(m.params, m.state, X, min(1024, X.shape[0]))
        return V.all_finite(out)

    def check(self, status, ran, losses, corrects, lrs):
        """Return if the call ended finite; otherwise restore and raise."""
        if status != P.STATUS_DIVERGED and self._finite():
            return
        m, hist, s = self.model, self.hist, self.s
        before = m.epochs_trained + 1                       # the first epoch of this call
        if status == P.STATUS_DIVERGED and self._usable():
            hist.record(losses, corrects, lrs, s.n, ran)
            m.epochs_trained += ran
            kept = (f"the weights after the last step whose loss was finite (in epoch "
                    f"{before + ran})")
        else:
            self._restore(self.chunk)
            kept = f"the weights from before epoch {before}"
            if not self._usable():
                self._restore(self.start)
                kept = f"the weights it had before this fit call (epoch {m.epochs_trained})"
                if not self._usable():
                    kept += ", although they too overflow on this X"
        if status == P.STATUS_DIVERGED:
            what = f"the training loss became {losses[ran]} in epoch {before + ran}"
            hint = f"Try a smaller lr (now {s.lr})."
        else:
            what = f"the weights overflowed to inf/NaN in epoch {before} or shortly after"
            big = float(max(abs(s.X.max()), abs(s.X.min())))
            hint = f"Try a smaller lr (now {s.lr}) or scale the inputs (largest |X| {big:.3g})."
        raise TrainingDivergedError(f"{what}; stopped, and the model keeps {kept}, the last "
                                    f"that is finite and predicts finite values on the "
                                    f"training data. {hint}", hist)


# --------------------------------------------------------------------------- Ctrl-C
class CtrlC:
    """During fit, Ctrl-C sets a flag the training loops check after every step."""

    def __init__(self, flag):
        self.flag = flag
        self.old = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.old = _signal.signal(signal.SIGINT, self._handler)
        return self

    def _handler(self, signum, frame):
        if self.flag[0]:            # a second Ctrl-C: give up at once
            raise KeyboardInterrupt
        self.flag[0] = 1

    def __exit__(self, *exc):
        if self.old is not None:
            _signal.signal(signal.SIGINT, self.old)
        return False


def interruptible(fn, flag, threaded, *args):
    """``fn(*args)``, in a worker thread if ``threaded`` and called from the main thread.

    Python runs signal handlers in the main thread between bytecodes only, so
    a Numba kernel running a whole epoch would hold Ctrl-C off until it
    returns. Here the kernel (compiled with nogil) runs in a worker while the
    main thread waits; the handler sets ``flag``, which the kernel reads after
    every step. A second Ctrl-C (KeyboardInterrupt) is raised only once the
    worker has finished its current step, so no update is ever half-applied
    (the NumPy reference, whose steps are Python code, always runs this way).
    Calls expected to take at most ``_THREAD_SECONDS`` (every call but a single
    epoch longer than that) skip the thread: Ctrl-C is then seen when the call
    returns, within about 0.1 s.
    """
    if not threaded or threading.current_thread() is not threading.main_thread():
        return fn(*args)

    def stop_after_this_step():
        flag[0] = 1

    return in_worker(fn, args, "fastbp-train", on_interrupt=stop_after_this_step)


def in_worker(fn, args, name, on_interrupt=None):
    """``fn(*args)`` in a daemon worker thread while this thread waits, free to take signals.

    A KeyboardInterrupt during the wait propagates at once when ``on_interrupt``
    is None (the worker is abandoned); otherwise ``on_interrupt()`` is called,
    the wait goes on, and the interrupt is raised once the worker has finished.
    """
    box = []

    def work():
        try:
            box.append((True, fn(*args)))
        except BaseException as exc:   # handed to the caller below
            box.append((False, exc))

    worker = threading.Thread(target=work, name=name, daemon=True)
    worker.start()
    pending = None
    while worker.is_alive():
        try:
            worker.join(0.05)
        except KeyboardInterrupt as exc:
            if on_interrupt is None:
                raise
            on_interrupt()
            pending = exc
    ok, value = box[0]
    if not ok:
        raise value
    if pending is not None:
        raise pending
    return value
