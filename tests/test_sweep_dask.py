"""fastbp.sweep on a real Dask cluster: a LocalCluster of worker processes, by address.

The cluster (two worker processes, one thread each, under nannies) starts once for
the module. The test that kills a worker runs last.
"""
import os
import signal

import pytest

import fastbp as fb
from fastbp.sweep import SweepError

distributed = pytest.importorskip("distributed")

XOR = dict(data="xor", sizes=[2, 4, 4, 1], batch_size=1, epochs=150)
GRID = {"lr": [0.1, 0.5], "seed": [0, 1, 2]}
FIELDS = ("key", "status", "loss", "accuracy", "final_loss", "epochs_run", "weights_sha256")


@pytest.fixture(scope="module")
def cluster():
    c = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                 dashboard_address=None)
    yield c
    c.close()


def same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert {f: x[f] for f in FIELDS} == {f: y[f] for f in FIELDS}, x["params"]


def pid(record):
    return int(record["worker"].rsplit(":", 1)[1])


def test_dask_by_address_equals_local_and_plain_fit_bit_for_bit(cluster, tmp_path):
    lines = []
    on_dask = fb.sweep(GRID, scheduler=cluster.scheduler_address, log=lines.append,
                       out=tmp_path / "r.jsonl", **XOR)
    local = fb.sweep(GRID, workers=2, **XOR)
    here = fb.sweep(GRID, workers=0, **XOR)
    same(on_dask, local)
    same(on_dask, here)
    with distributed.Client(cluster.scheduler_address) as client:
        worker_pids = set(client.run(os.getpid).values())
    assert len(worker_pids) == 2 and {pid(r) for r in on_dask} <= worker_pids
    assert all(r["status"] == "ok" and r["compiles"] == 0 for r in on_dask)
    assert any(line.startswith("executor: Dask cluster at tcp://") for line in lines)
    saved = {r["key"]: r for r in fb.load_sweep(tmp_path / "r.jsonl")}
    assert saved == {r["key"]: r for r in on_dask}


def test_dask_with_a_client_and_array_data(cluster):
    X, y = fb.datasets.generate_linear(80, seed=3)
    with distributed.Client(cluster.scheduler_address) as client:
        on_dask = fb.sweep({"lr": [0.2, 0.4]}, data=(X, y), scheduler=client, epochs=20,
                           batch_size=16)
        assert client.status == "running"        # a Client handed in is left open
    here = fb.sweep({"lr": [0.2, 0.4]}, data=(X, y), workers=0, epochs=20, batch_size=16)
    same(on_dask, here)
    assert on_dask[0]["data"] == here[0]["data"] and "arrays" in here[0]["data"]


def test_dask_bad_scheduler_and_workers(cluster):
    with pytest.raises(ValueError, match="workers goes with the local executor"):
        fb.sweep({"lr": [0.1]}, scheduler=cluster.scheduler_address, workers=2, **XOR)
    with pytest.raises(TypeError, match="scheduler must be an address"):
        fb.sweep({"lr": [0.1]}, scheduler=8786, **XOR)
    import dask
    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}), \
            pytest.raises(OSError, match="cannot reach the Dask scheduler"):
        fb.sweep({"lr": [0.1]}, scheduler="tcp://127.0.0.1:9", **XOR)
    assert issubclass(SweepError, RuntimeError)


def test_dask_worker_killed_mid_sweep_every_run_completes(cluster):
    """SIGKILL one worker process while it runs; Dask reschedules its task."""
    grid = {"lr": [0.1, 0.2, 0.3, 0.4], "seed": [0, 1]}
    kw = dict(data="linear", sizes=[2, 4, 4, 1], batch_size=1, epochs=1500)
    client = distributed.Client(cluster.scheduler_address)
    killed = []

    def kill_the_other(rec):
        if not killed:
            for addr, p in client.run(os.getpid).items():
                if p != pid(rec):
                    busy = client.processing(workers=[addr])[addr]
                    os.kill(p, signal.SIGKILL)
                    killed.append((p, busy))
                    break
    recs = fb.sweep(grid, scheduler=cluster.scheduler_address, on_record=kill_the_other, **kw)
    assert killed and killed[0][1], killed      # it was killed holding a run
    assert [r["status"] for r in recs] == ["ok"] * 8
    assert killed[0][0] not in set(client.run(os.getpid).values())
    same(recs, fb.sweep(grid, workers=0, **kw))
    client.close()
