"""The benchmarks stay runnable: the asv suite passes ``asv check`` and every
benchmark runs (its setup and one call), ``fastbp.bench`` runs, writes its JSON
and chart, and fastbp agrees with the reference in it. Nothing here asserts a
time."""
import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ASV_DIR = ROOT / "asv_bench"


def test_asv_check_passes():
    if importlib.util.find_spec("asv") is None:
        pytest.skip("asv is not installed")
    proc = subprocess.run([sys.executable, "-m", "asv", "check", "--python=same"], cwd=ASV_DIR,
                          capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "No problems found" in out, out


@pytest.mark.slow
def test_every_asv_benchmark_runs():
    """setup_cache, setup, one call and teardown of every benchmark: a broken one fails."""
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "perflib" / "smoke.py")],
                          cwd=ROOT, capture_output=True, text=True, timeout=3600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    sys.path.insert(0, str(ROOT / "scripts"))
    from perflib.suite import discover

    n = len(discover(ASV_DIR / "benchmarks"))
    assert f"{n} of {n} benchmarks ran" in out, out[-3000:]
    assert n > 60


def test_workloads_defined_once():
    """asv's common.py serves the very objects of fastbp._bench_workloads (one definition)."""
    from fastbp import _bench_workloads as W

    sys.path.insert(0, str(ASV_DIR))
    import benchmarks.common as common

    for name in ("ONLINE_NETS", "DIGITS_NET", "CIFAR_NET", "BOUND_WORKLOADS", "StepGemms",
                 "check_matches_reference"):
        assert getattr(common, name) is getattr(common.workloads, name)
    assert common.ONLINE_NETS.keys() == W.ONLINE_NETS.keys()
    assert common.CIFAR_NET == W.CIFAR_NET and common.BOUND_WORKLOADS == W.BOUND_WORKLOADS
    # the same file, loaded by path from the checkout (not through the fastbp under test)
    assert Path(common.workloads.__file__).resolve() == Path(W.__file__).resolve()


def test_bench_quick_per_sample(tmp_path):
    from fastbp import bench

    json_path = tmp_path / "out" / "bench.json"
    png_path = tmp_path / "out" / "bench.png"
    status = bench.main(["--quick", "--workloads", "A", "--json", str(json_path),
                         "--plot", str(png_path)])
    assert status == 0

    result = json.loads(json_path.read_text())
    for key in ("command", "quick", "workloads", "environment", "rows", "figures", "targets"):
        assert key in result
    assert result["quick"] is True
    assert result["workloads"] == ["A"]

    rows = result["rows"]
    for row in rows:
        for key in ("group", "workload", "impl", "time_s", "times_s", "ratio_to_fastbp",
                    "agreement", "agreement_with", "threads", "note"):
            assert key in row
    workloads = {r["workload"].split()[0] for r in rows}
    assert workloads == {"A1", "A2", "A3"}
    for w in workloads:
        mine = {r["impl"]: r for r in rows if r["workload"].startswith(w)}
        fast, ref = mine[bench.FASTBP], mine[bench.REFERENCE]
        assert fast["time_s"] > 0 and ref["time_s"] > 0
        assert fast["ratio_to_fastbp"] == 1.0
        # the agreement the table reports: fastbp vs the reference after the same epoch
        assert ref["agreement"] is not None and ref["agreement"] < 1e-10

    agreement_targets = [t for t in result["targets"] if "agreement" in t["name"]]
    assert len(agreement_targets) == 3
    for t in agreement_targets:
        assert t["value"] < 1e-10 and t["met"] is True
    for t in result["targets"]:
        assert t["op"] in ("<=", ">=")
        assert t["value"] is None or math.isfinite(t["value"])

    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_parse_workloads():
    from fastbp import bench

    assert bench.parse_workloads(None) == list(bench.WORKLOADS)
    assert bench.parse_workloads("a, threads,B,a") == ["A", "T", "B"]
    with pytest.raises(ValueError, match="unknown workload"):
        bench.parse_workloads("A,Z")
