"""The thread contract: a model is used by one thread at a time.

A second thread calling fit / predict / evaluate / save / loss_and_grads on
the same model waits for the first call to finish, so the result is that of
some serial order, never a mix; separate models run in parallel; the BLAS
thread limit is restored however concurrent fits finish.
"""
import json
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import fastbp as fb

FIT_A = dict(epochs=40, lr=0.01, batch_size=16, optimizer="adam")
FIT_B = dict(epochs=40, lr=0.05, batch_size=16, momentum=0.9)


def _data(n=256):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 8))
    return X, (X[:, :1] * X[:, 1:2] > 0).astype(float)


def _model():
    return fb.MLP([8, 32, 32, 1], activation="tanh", seed=3)


def _in_threads(*calls):
    """Run each call in its own thread, all released at once; their results (or errors)."""
    barrier = threading.Barrier(len(calls))
    out = [None] * len(calls)

    def run(i, call):
        barrier.wait()
        try:
            out[i] = call()
        except BaseException as exc:        # reported by the caller
            out[i] = exc
    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


_TWO_FITS = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, sys.argv[1])
    import numpy as np
    import test_threads as T
    X, y = T._data()
    serial = []
    for first, second in ((T.FIT_A, T.FIT_B), (T.FIT_B, T.FIT_A)):
        m = T._model()
        m.fit(X, y, **first)
        m.fit(X, y, **second)
        serial.append(m.params.copy())
    results = []
    for _ in range(4):
        m = T._model()
        out = T._in_threads(lambda: m.fit(X, y, **T.FIT_A), lambda: m.fit(X, y, **T.FIT_B))
        errors = [repr(o) for o in out if isinstance(o, BaseException)]
        same = any(np.array_equal(m.params, s) for s in serial)
        results.append({"errors": errors, "serial": bool(same),
                        "epochs": int(m.epochs_trained)})
    print(json.dumps(results))
""")


def test_two_threads_fitting_one_model_equal_a_serial_order(tmp_path):
    """Items 6 and 7: Adam and SGD+momentum fits on one model in two threads neither
    crash the process nor mix: the weights equal one of the two serial orders."""
    import os
    proc = subprocess.run([sys.executable, "-c", _TWO_FITS, os.path.dirname(__file__)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])   # main: SIGSEGV
    for run in json.loads(proc.stdout.strip().splitlines()[-1]):
        assert run == {"errors": [], "serial": True, "epochs": 80}


def test_predict_during_fit_sees_a_whole_model():
    """Item 8: predict (as many rows as the fit batch) while another thread fits gives the
    output of the model before or after that fit, and the fit is the serial one."""
    X, y = _data()
    Xp = X[:16]
    serial = _model()
    before = serial.predict(Xp, batch_size=16)
    serial.fit(X, y, **FIT_A)
    after = serial.predict(Xp, batch_size=16)
    for _ in range(3):
        m = _model()
        fit_out, *preds = _in_threads(lambda: m.fit(X, y, **FIT_A),
                                      *[lambda: m.predict(Xp, batch_size=16)] * 3)
        assert isinstance(fit_out, fb.History)
        for p in preds:
            assert not isinstance(p, BaseException), p
            assert np.array_equal(p, before) or np.array_equal(p, after)
        assert np.array_equal(m.params, serial.params)


def test_evaluate_and_loss_and_grads_during_fit():
    X, y = _data()
    m = _model()
    ref = _model()
    ev0, lg0 = ref.evaluate(X, y, batch_size=16), ref.loss_and_grads(X[:16], y[:16])
    ref.fit(X, y, **FIT_B)
    ev1, lg1 = ref.evaluate(X, y, batch_size=16), ref.loss_and_grads(X[:16], y[:16])
    _, ev, lg = _in_threads(lambda: m.fit(X, y, **FIT_B),
                            lambda: m.evaluate(X, y, batch_size=16),
                            lambda: m.loss_and_grads(X[:16], y[:16]))
    assert ev in (ev0, ev1)
    assert any(lg[0] == l[0] and all(np.array_equal(a, b) for a, b in zip(lg[1], l[1]))
               for l in (lg0, lg1))
    assert np.array_equal(m.params, ref.params)


def test_save_during_fit_writes_a_consistent_snapshot(tmp_path):
    """Item 9: every file saved while another thread fits loads, and holds the model
    as it was between two fit calls."""
    X, y = _data()
    m = _model()
    states = [m.params.copy()]
    done = threading.Event()

    def fits():
        try:
            for _ in range(4):
                m.fit(X, y, epochs=10, lr=0.05, batch_size=16, momentum=0.9)
                states.append(m.params.copy())
        finally:
            done.set()

    def saves():
        paths = []
        while (not done.is_set() or len(paths) < 10) and len(paths) < 500:
            paths.append(tmp_path / f"m{len(paths)}.npz")
            m.save(paths[-1])
        return paths

    _, paths = _in_threads(fits, saves)
    assert len(paths) >= 10
    for path in paths:
        got = fb.load(path)                           # main: "checksum does not match"
        assert any(np.array_equal(got.params, s) for s in states)
        assert got.epochs_trained % 10 == 0


def _blas_threads():
    from threadpoolctl import threadpool_info
    return sorted((i["filepath"], i["num_threads"]) for i in threadpool_info()
                  if i["user_api"] == "blas")


def test_separate_models_train_in_parallel_and_blas_limit_is_restored():
    """Item 10: after concurrent fits of separate models the BLAS pools are as before;
    and each model trains exactly as it does alone."""
    import scipy.linalg.cython_blas  # noqa: F401  (a second BLAS: it too must end as it was)
    X, y = _data(2000)
    fits = [dict(epochs=20, batch_size=16, lr=0.01, momentum=0.5 * (i % 2)) for i in range(4)]
    alone = []
    for f in fits:
        m = _model()
        m.fit(X, y, **f)
        alone.append(m.params.copy())
    before = _blas_threads()
    if all(n == 1 for _, n in before):
        pytest.skip("BLAS runs one thread already: a leaked limit of 1 would not show")
    for _ in range(3):
        models = [_model() for _ in fits]
        out = _in_threads(*[lambda m=m, f=f: m.fit(X, y, **f) for m, f in zip(models, fits)])
        assert all(isinstance(h, fb.History) for h in out), out
        assert _blas_threads() == before              # main: left at 1 thread
        for m, params in zip(models, alone):
            assert np.array_equal(m.params, params)


def test_a_thread_waits_rather_than_fails():
    """The lock is per model and reentrant: fit's own checkpoint and validation calls run."""
    X, y = _data(64)
    m = _model()
    lock_held = []

    def probe():
        lock_held.append(m._lock.acquire(blocking=False))
        if lock_held[-1]:
            m._lock.release()
    m.fit(X, y, epochs=3, validation_data=(X, y), patience=5, lr=0.01)
    t = threading.Thread(target=probe)
    t.start()
    t.join()
    assert lock_held == [True]
    other = _model()
    assert other._lock is not m._lock


@pytest.mark.parametrize("call", ["predict", "save"])
def test_waiting_call_runs_after_the_fit(tmp_path, call):
    X, y = _data()
    m = _model()
    events = []
    started = threading.Event()

    def fit():
        with m._lock:               # hold it as a long fit would
            started.set()
            events.append("fit-start")
            m.fit(X, y, epochs=5, lr=0.01)
            events.append("fit-end")

    def other():
        started.wait()
        (m.predict(X) if call == "predict" else m.save(tmp_path / "m.npz"))
        events.append(call)

    _in_threads(fit, other)
    assert events == ["fit-start", "fit-end", call]


def _fastbp_pool(path):
    """Whether the BLAS pool at ``path`` is one fastbp's limit holds: NumPy's, where the
    kernels call it, else (they call SciPy's) every pool."""
    from fastbp import _blas
    found = _blas.cblas()
    return found is None or os.path.samefile(path, found["path"])


def test_a_blas_limit_left_by_another_thread_is_restored():
    """The limit entered in one thread and left last in another (two models' calls
    overlapping that way) holds the BLAS fastbp calls to one thread while either is
    inside, leaves any other BLAS alone, and puts every pool back as it was."""
    import scipy.linalg.cython_blas  # noqa: F401  (a second BLAS, whenever it is loaded)
    from fastbp import _blas, _threads
    before = _blas_threads()
    if all(n == 1 for _, n in before):
        pytest.skip("BLAS runs one thread already: a leaked limit of 1 would not show")
    first, second = _threads.limit(1), _threads.limit(1)
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen = []

    def a():
        first.__enter__()
        a_in.set()
        b_in.wait()
        seen.append(_blas_threads())
        first.__exit__(None, None, None)
        a_out.set()

    def b():
        a_in.wait()
        second.__enter__()
        b_in.set()
        a_out.wait()
        second.__exit__(None, None, None)
    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    held = [n for path, n in seen[0] if _fastbp_pool(path)]
    assert held == [1] * (len(seen[0]) if _blas.cblas() is None else 1), seen
    others = [(path, n) for path, n in before if not _fastbp_pool(path)]
    assert [(path, n) for path, n in seen[0] if not _fastbp_pool(path)] == others, seen
    assert _blas_threads() == before
