"""Start-up: ``import fastbp`` and the first ``fit`` call, each in a fresh subprocess.

The first fit compiles the kernels it needs. "no-cache" sets
FASTBP_NUMBA_CACHE=0 (compile from scratch, nothing read or written on disk);
"warm-cache" points NUMBA_CACHE_DIR at a folder that a first subprocess filled
in ``setup``, so the timed subprocess only loads compiled code.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

from .common import DIGITS_LR, DIGITS_NET, ONLINE_NETS, check_matches_reference, digits, mlp

# Runs in the subprocess: prints {"import_s": ..., "first_fit_s": ...}.
_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import fastbp as fb
t1 = time.perf_counter()
kind = sys.argv[1]
if kind == "import":
    print(json.dumps({"import_s": t1 - t0}))
    raise SystemExit
if kind == "per-sample":
    X, y = fb.datasets.generate_linear(n=500, seed=0)
    model = fb.MLP([2, 4, 4, 1], activation="sigmoid", output_activation="sigmoid", loss="mse")
    kw = dict(batch_size=1, lr=0.1)
else:
    X, _, y, _ = fb.datasets.load_digits()
    model = fb.MLP([64, 128, 64, 10], activation="relu", output_activation="identity",
                   loss="cross_entropy")
    kw = dict(batch_size=32, lr=0.05)
t2 = time.perf_counter()
model.fit(X, y, epochs=1, shuffle=False, **kw)
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "first_fit_s": t3 - t2}))
"""


def run_child(kind, env_extra):
    env = dict(os.environ)
    env.update(env_extra)
    out = subprocess.run([sys.executable, "-c", _CHILD, kind], env=env, check=True,
                         capture_output=True, text=True, timeout=600).stdout
    return json.loads(out.strip().splitlines()[-1])


class FirstFit:
    """Seconds of the first fit call in a fresh process (import excluded)."""

    params = (["per-sample", "mini-batch"], ["no-cache", "warm-cache"])
    param_names = ["kind", "cache"]
    unit = "seconds"
    timeout = 600

    def setup(self, kind, cache):
        if kind == "per-sample":
            spec, data, lr = ONLINE_NETS["sigmoid-2-4-4-1-mse"]
            X, y = data()
            kw = dict(batch_size=1, lr=lr)
        else:
            spec, lr = DIGITS_NET, DIGITS_LR
            X, y = digits()
            kw = dict(batch_size=32, lr=lr)
        check_matches_reference(lambda be: mlp(spec, be),
                                lambda m: m.fit(X, y, epochs=1, shuffle=False, **kw),
                                what=f"first fit {kind}")
        self.tmp = None
        if cache == "no-cache":
            self.env = {"FASTBP_NUMBA_CACHE": "0"}
        else:
            self.tmp = tempfile.mkdtemp(prefix="fastbp-numba-cache-")
            self.env = {"NUMBA_CACHE_DIR": self.tmp, "FASTBP_NUMBA_CACHE": "1"}
            run_child(kind, self.env)       # fills the cache

    def teardown(self, kind, cache):
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def track_first_fit(self, kind, cache):
        return run_child(kind, self.env)["first_fit_s"]


class Import:
    """Seconds of ``import fastbp`` in a fresh process (median of 3)."""

    unit = "seconds"
    timeout = 120

    def track_import(self):
        return float(np.median([run_child("import", {})["import_s"] for _ in range(3)]))
