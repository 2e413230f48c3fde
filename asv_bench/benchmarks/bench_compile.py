"""Cold start, each figure in a fresh process (``STARTUP_CHILD`` of the workloads).

For each kind of first fit (per-sample [2,4,4,1] sigmoid; mini-batch digits
64-128-64-10 ReLU): one process with an empty ``NUMBA_CACHE_DIR`` (everything
compiles), then processes on the cache it filled (everything loads). Each
process reports ``import fastbp``, the model's construction + its first fit,
and predict + evaluate + loss_and_grads after that fit; the parent times the
whole process too. ``setup_cache`` runs the processes once for all the
figures below.
"""
from .common import workloads


class ColdStart:
    """Seconds, whole-process figures of a first fit from an empty and from a warm cache."""

    params = list(workloads.STARTUP_KINDS)
    param_names = ["kind"]
    unit = "seconds"
    timeout = 1800

    def setup_cache(self):
        return workloads.measure_cold_start()

    def track_first_fit_cold(self, cache, kind):
        """Construction + first fit, empty cache (the compile)."""
        return cache[kind]["cold"]["first_fit_s"]

    def track_after_fit_cold(self, cache, kind):
        """predict + evaluate + loss_and_grads after that first fit, empty cache."""
        return cache[kind]["cold"]["after_fit_s"]

    def track_process_cold(self, cache, kind):
        """The whole process (interpreter, import, first fit, the calls after it), empty cache."""
        return cache[kind]["cold"]["process_s"]

    def track_first_fit_warm(self, cache, kind):
        """Construction + first fit, warm cache (beyond import fastbp; median of 3)."""
        return cache[kind]["warm"]["first_fit_s"]

    def track_process_warm(self, cache, kind):
        """The whole process, warm cache (median of 3)."""
        return cache[kind]["warm"]["process_s"]


class Import:
    """Seconds of ``import fastbp`` in a fresh process (median of 3)."""

    unit = "seconds"
    timeout = 120

    def track_import(self):
        return workloads.measure_import(3)
