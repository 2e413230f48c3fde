"""``fastbp warmup``: compiles ahead of time, reports it, and later processes compile nothing.

The full command compiles every configuration in both dtypes (minutes on a
slow machine); the test runs the real command on its first configuration in
float32, which goes through the same code.
"""
import json
import os
import re
import subprocess
import sys
import textwrap

import fastbp as fb
from fastbp import _warmup

CHILD = """
    import sys
    from fastbp import _warmup
    _warmup.CONFIGS = _warmup.CONFIGS[:1]
    from fastbp.cli import main
    sys.exit(main(["warmup", *sys.argv[1:]]))
"""

# A later process: the per-sample xor network of `fastbp train`, float32.
LATER = """
    import json, numpy as np, fastbp as fb
    from numba.core import event
    n = [0]
    class Count(event.Listener):
        def on_start(self, ev): pass
        def on_end(self, ev): n[0] += 1
    event.register("numba:compile", Count())
    X, y = fb.datasets.generate_xor_easy()
    m = fb.MLP([2, 4, 4, 1], init="uniform", dtype="float32", seed=5)
    m.fit(X.astype("float32"), y, epochs=5, lr=0.1, batch_size=1)
    m.predict(X.astype("float32"))
    print(json.dumps({"compiled": n[0]}))
"""


def _env(cache):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FASTBP_", "NUMBA_CACHE"))}
    root = os.path.dirname(os.path.dirname(os.path.abspath(fb.__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    env["FASTBP_CACHE_DIR"] = str(cache)
    return env


def _run(code, env, *args):
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    return proc.stdout


def test_warmup_compiles_reports_and_later_processes_load(tmp_path):
    env = _env(tmp_path / "cache")
    first = _run(CHILD, env, "--dtype", "float32")
    assert f"kernels are cached in {tmp_path / 'cache'}" in first
    row = re.search(r"float32\s+per-sample 2-4-4-1 .*?([\d.]+) s\s+\((\d+) compiled\)", first)
    assert row and int(row.group(2)) > 0, first
    summary = re.search(r"warmed 1 configurations in ([\d.]+) s: (\d+) functions compiled",
                        first)
    assert summary and summary.group(2) == row.group(2), first
    assert "float64" not in first

    again = _run(CHILD, env, "--dtype", "float32", "--quiet")
    assert again.strip().splitlines() == [again.strip()]           # --quiet: the summary only
    assert "0 functions compiled, all loaded from the cache" in again

    assert json.loads(_run(LATER, env))["compiled"] == 0


def test_warmup_parser_and_configs():
    from fastbp.cli import build_parser

    args = build_parser().parse_args(["warmup", "--dtype", "float32", "--dtype", "float64"])
    assert args.func is _warmup.run and args.dtype == ["float32", "float64"]
    assert build_parser().parse_args(["warmup"]).dtype is None      # both, float64 first
    labels = " ".join(label for label, _, _ in _warmup.CONFIGS)
    for word in ("per-sample", "relu", "tanh", "sigmoid", "batchnorm", "dropout", "mse",
                 "cross-entropy", "binary cross-entropy", "momentum", "adam"):
        assert word in labels


def test_warmup_networks_run_their_generated_kernels_in_batches():
    """predict/evaluate/loss_and_grads of a small network run a row at a time; the
    warm-up's mini-batch networks are wide enough to run in batches, through the
    functions generated for them, and one of them is the CLI's image classifier."""
    from fastbp import _cli_common as C

    for label, model_kw, fit_kw in _warmup.CONFIGS:
        kw = dict(model_kw)
        model = fb.MLP(kw.pop("sizes"), **kw)
        assert (model._engine._rows_kernels() != ()) == (fit_kw["batch_size"] == 1), label
        if fit_kw["batch_size"] > 1:
            assert model._engine._batch_module() is not None, label
    images = C.PRESETS["images"]
    assert any(kw["sizes"][1:-1] == images["hidden"] and kw.get("batchnorm")
               and kw.get("dropout") == images["dropout"] and fit["batch_size"] ==
               images["batch_size"] and fit.get("momentum") == images["momentum"]
               for _, kw, fit in _warmup.CONFIGS)
