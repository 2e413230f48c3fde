"""What ``fit`` does between kernel calls, as small objects.

Each callback may cap how many epochs the next kernel call runs
(``max_epochs``: validation needs every epoch, a print or checkpoint epoch
ends a call), acts after every call (``after_chunk``, which may return a
reason to stop: "accuracy", "early_stopping") and is closed when ``fit``
ends, however it ends (``close``). ``fit`` runs them in the order
:func:`make_callbacks` gives: validation, progress, checkpoint, accuracy
stop, early stopping.
"""
import math
import sys

from .plan import STATUS_ACCURACY


class Callback:
    def max_epochs(self, done):
        """The most epochs the next call may run, ``done`` epochs into fit (None: any)."""
        return None

    def after_chunk(self, hist, done, status):
        """Act after a kernel call that brought fit to ``done`` epochs; a stop reason or None."""
        return None

    def close(self):
        pass


def _until(every, done):
    return every - done % every


class Validation(Callback):
    """Evaluate (X_val, y_val) after every epoch into ``val_loss`` / ``val_accuracy``."""

    def __init__(self, model, X, y):
        self.model, self.X, self.y = model, X, y

    def max_epochs(self, done):
        return 1

    def after_chunk(self, hist, done, status):
        ev = self.model.evaluate(self.X, self.y)
        hist.val_loss.append(ev["loss"])
        hist.val_accuracy.append(ev["accuracy"])


class Progress(Callback):
    """A tqdm bar on a terminal (``verbose``) and a loss line every ``print_every`` epochs."""

    def __init__(self, total, verbose, print_every):
        self.print_every = print_every
        self.bar = None
        if verbose and sys.stderr.isatty():
            from tqdm.auto import tqdm
            self.bar = tqdm(total=total, unit="epoch", leave=True)
        self._shown = 0

    def max_epochs(self, done):
        return _until(self.print_every, done) if self.print_every else None

    def after_chunk(self, hist, done, status):
        ran, self._shown = len(hist.loss) - self._shown, len(hist.loss)
        if self.bar is not None and ran:
            self.bar.update(ran)
            self.bar.set_postfix(loss=f"{hist.loss[-1]:.4g}", acc=f"{hist.accuracy[-1]:.3f}")
        if self.print_every and done % self.print_every == 0 and hist.loss:
            print(f"epoch {done:6d}  loss {hist.loss[-1]:.6f}  accuracy {hist.accuracy[-1]:.4f}",
                  flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()


class Checkpoint(Callback):
    """Save the model (atomically) to ``path`` every ``every`` epochs."""

    def __init__(self, model, path, every):
        self.model, self.path, self.every = model, path, every

    def max_epochs(self, done):
        return _until(self.every, done)

    def after_chunk(self, hist, done, status):
        if done % self.every == 0:
            self.model.save(self.path)


class AccuracyStop(Callback):
    """Stop once the kernel reports every training point (``stop_correct`` of them) right."""

    def after_chunk(self, hist, done, status):
        return "accuracy" if status == STATUS_ACCURACY else None


class EarlyStopping(Callback):
    """Stop once the validation loss has not improved by ``min_delta`` for ``patience``
    epochs; then restore the best weights if asked."""

    def __init__(self, model, patience, min_delta, restore_best_weights):
        self.model, self.patience, self.min_delta = model, patience, min_delta
        self.restore = restore_best_weights
        self.best = (math.inf, None, None)

    def after_chunk(self, hist, done, status):
        vl = hist.val_loss[-1]
        if vl < self.best[0] - self.min_delta:
            self.best = (vl, self.model.params.copy(), self.model.state.copy())
            hist.best_epoch = done
        elif done - hist.best_epoch >= self.patience:
            if self.restore:
                self.model.params[...], self.model.state[...] = self.best[1], self.best[2]
            return "early_stopping"
        return None


def make_callbacks(model, s):
    """The callbacks for fit settings ``s`` (see ``_training.FitSettings``), in order."""
    cbs = []
    if s.val is not None:
        cbs.append(Validation(model, *s.val))
    cbs.append(Progress(s.epochs, s.verbose, s.print_every))
    if s.checkpoint is not None:
        cbs.append(Checkpoint(model, s.checkpoint, s.checkpoint_every))
    cbs.append(AccuracyStop())
    if s.patience is not None:
        cbs.append(EarlyStopping(model, s.patience, s.min_delta, s.restore_best_weights))
    return cbs
