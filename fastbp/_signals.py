"""Ctrl-C and SIGTERM in ``fastbp train``: stop, keep what was trained, exit 130 / 143.

The contract (README, "Reliability" / "Signals"):

- Ctrl-C (SIGINT) and SIGTERM mean the same: stop. During ``fit`` the model's
  own handler stops training after the current step (SIGTERM is handed to
  it); before training (loading or compiling the kernels) the command stops
  at once; after training, the reporting and plotting are cut short.
- Whatever was trained is saved when ``--save`` was given, and the exit
  status is 128 + the signal's number: 130 for Ctrl-C, 143 for SIGTERM.
- While the model is being saved, further signals only are noted: the save
  always finishes (a second Ctrl-C waits for it), then the command exits.
"""
import signal
import sys
import threading
from contextlib import contextmanager

NAMES = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated"}


class TrainSignals:
    """Context manager owning SIGINT and SIGTERM for one ``train`` command.

    Outside the main thread (where Python cannot install handlers) it does
    nothing and :meth:`run` calls its function directly.
    """

    def __init__(self):
        self.signum = None          # the first signal received, if any
        self._saving = False
        self._old = {}
        self._handle = self._handler      # one bound method, comparable with `is`

    # ------------------------------------------------------------------ state
    @property
    def exit_code(self):
        """128 + the signal's number (130 for Ctrl-C when fit handled it alone)."""
        return 128 + int(self.signum or signal.SIGINT)

    @property
    def word(self):
        return NAMES.get(self.signum, "interrupted")

    # ------------------------------------------------------------------ handlers
    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in NAMES:
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old = {}
        return False

    def _handler(self, signum, frame):
        if self.signum is None:
            self.signum = signum
        if self._saving:                    # noted; the save finishes first
            return
        if signum == signal.SIGTERM:
            during_fit = signal.getsignal(signal.SIGINT)
            if during_fit is not self._handle and callable(during_fit):
                during_fit(signal.SIGINT, frame)      # fit stops after the current step
                return
        raise KeyboardInterrupt

    @contextmanager
    def saving(self):
        """Signals arriving inside this block are noted, not raised."""
        self._saving = True
        try:
            yield
        finally:
            self._saving = False

    # ------------------------------------------------------------------ work
    def run(self, fn, *args):
        """``fn(*args)`` in a worker thread, the main thread free to take signals.

        Compiling a kernel can keep Python from running a signal handler for
        tens of seconds when it happens in the main thread; here a signal ends
        the wait at once (KeyboardInterrupt), and the worker (a daemon thread)
        is abandoned.
        """
        if not self._old:
            return fn(*args)
        from ._training import in_worker
        return in_worker(fn, args, "fastbp-warm-up")


def note(sig, text):
    """``fastbp: <interrupted|terminated> <text>`` on stderr."""
    sys.stdout.flush()
    print(f"fastbp: {sig.word} {text}", file=sys.stderr, flush=True)
