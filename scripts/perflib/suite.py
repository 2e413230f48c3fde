"""The asv suite without asv: find its benchmarks and run them (setup, calls, teardown).

A benchmark is a method named ``time_*`` or ``track_*`` of a class in a
``bench_*.py`` module of the benchmark folder, with one combination of the
class's ``params``; its id is asv's name, e.g.
``bench_online.OnlineEpochs.time_epochs('sigmoid-2-4-4-1-mse')``. A class's
``gate`` attribute says which of its benchmarks ``perf-compare`` times:
"quick" (also with --quick) or "full"; combinations whose ``backend`` param is
not "numba" are never gated (they time the reference).
"""
import importlib
import itertools
import math
import os
import sys

PREFIXES = ("time_", "track_")


class Benchmark:
    """One method of one class with one combination of params."""

    def __init__(self, module, cls, method, params):
        self.module, self.cls, self.method, self.params = module, cls, method, params
        args = ", ".join(repr(p) for p in params)
        self.id = f"{module}.{cls.__name__}.{method}" + (f"({args})" if params else "")
        self.kind = method.split("_", 1)[0]
        names = list(getattr(cls, "param_names", []))
        self.param_dict = dict(zip(names, params))

    def gate(self):
        """"quick", "full" or None: when perf-compare times this benchmark."""
        if self.kind != "time" or self.param_dict.get("backend", "numba") != "numba":
            return None
        return getattr(self.cls, "gate", None)


def _combinations(cls):
    params = getattr(cls, "params", None)
    if not params:
        return [()]
    multi = isinstance(params, tuple) or all(isinstance(p, (list, tuple)) for p in params)
    return list(itertools.product(*params)) if multi else [(p,) for p in params]


def discover(bench_dir):
    """Every benchmark of the asv suite in ``bench_dir`` (imported as a package)."""
    bench_dir = os.path.abspath(bench_dir)
    parent, package = os.path.split(bench_dir)
    if parent not in sys.path:
        sys.path.insert(0, parent)
    out = []
    for name in sorted(os.listdir(bench_dir)):
        if not (name.startswith("bench_") and name.endswith(".py")):
            continue
        modname = name[:-3]
        module = importlib.import_module(f"{package}.{modname}")
        for cls in vars(module).values():
            if not isinstance(cls, type) or cls.__module__ != module.__name__:
                continue
            for method in sorted(dir(cls)):
                if method.startswith(PREFIXES) and callable(getattr(cls, method)):
                    out += [Benchmark(modname, cls, method, p) for p in _combinations(cls)]
    return out


class Instance:
    """A benchmark set up and ready to call (``setup_cache`` once per class, then ``setup``)."""

    _caches = {}

    def __init__(self, bench):
        self.bench = bench
        self.obj = bench.cls()
        args = tuple(bench.params)
        if hasattr(bench.cls, "setup_cache"):
            key = (bench.module, bench.cls.__name__)
            if key not in Instance._caches:
                Instance._caches[key] = bench.cls().setup_cache()
            args = (Instance._caches[key],) + args
        self.args = args
        if hasattr(self.obj, "setup"):
            self.obj.setup(*args)
        self.fn = getattr(self.obj, bench.method)

    def call(self):
        """One call; a track_ benchmark's value must be a finite number."""
        value = self.fn(*self.args)
        if self.bench.kind == "track":
            if not isinstance(value, (int, float)) or not math.isfinite(float(value)):
                raise AssertionError(f"{self.bench.id} returned {value!r}, not a finite number")
        return value

    def teardown(self):
        if hasattr(self.obj, "teardown"):
            self.obj.teardown(*self.args)
