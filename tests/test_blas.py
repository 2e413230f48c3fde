"""The BLAS the kernels call: NumPy's own ?gemm where NumPy bundles one (so a kernel's
product is NumPy's product, bit for bit), else SciPy's, with the same training."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastbp as fb
from fastbp import _blas

FIT = """
    import json, numpy as np, fastbp as fb
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(300, 40)), rng.integers(0, 5, 300)
    m = fb.Sequential([fb.Dense(40, 96), fb.ReLU(), fb.Dense(96, 48), fb.Tanh(),
                       fb.Dense(48, 5)], loss=fb.SoftmaxCrossEntropy(), dtype=DTYPE, seed=1)
    m.fit(X, y, epochs=3, lr=0.05, batch_size=64, momentum=0.9)
    print(json.dumps(m.params.astype(float).tolist()))
"""


@pytest.mark.skipif(_blas.cblas() is None, reason="this NumPy bundles no OpenBLAS of its own")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_kernel_products_are_numpys_products(dtype):
    from fastbp.kernels import dense
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(70, 90)).astype(dtype), rng.normal(size=(90, 50)).astype(dtype)
    d = rng.normal(size=(70, 50)).astype(dtype)
    out, dw, dx = np.empty((70, 50), dtype), np.empty((90, 50), dtype), np.empty((70, 90), dtype)
    dense._matmul(dense._N, dense._N, 1.0, a, b, 0.0, out)
    dense._matmul(dense._T, dense._N, 1.0, a, d, 0.0, dw)
    dense._matmul(dense._N, dense._T, 1.0, d, b, 0.0, dx)
    assert np.array_equal(out, a @ b)
    assert np.array_equal(dw, a.T @ d)
    assert np.array_equal(dx, d @ b.T)
    c = rng.normal(size=(70, 50)).astype(dtype)
    want = dtype(-0.5) * (a @ b) + c            # alpha and beta, as an SGD step folds them
    dense._matmul(dense._N, dense._N, -0.5, a, b, 1.0, c)
    np.testing.assert_allclose(c, want, rtol=1e-5 if dtype == np.float32 else 1e-13,
                               atol=1e-5 if dtype == np.float32 else 1e-13)


def _fit_in_child(dtype, tmp_path, scipy_blas):
    code = textwrap.dedent(FIT).replace("DTYPE", repr(dtype))
    if scipy_blas:      # as where NumPy bundles no BLAS: the kernels take SciPy's
        code = "import fastbp._blas as B\nB.cblas = lambda: None\n" + code
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FASTBP_", "NUMBA_CACHE"))}
    env["FASTBP_CACHE_DIR"] = str(tmp_path / "cache")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    return np.array(json.loads(proc.stdout.splitlines()[-1]))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_either_blas_trains_the_same_model(dtype, tmp_path):
    """The kernels on SciPy's BLAS train what they train on NumPy's, and the NumPy
    reference agrees with both; the two builds keep separate caches."""
    scipy_params = _fit_in_child(dtype, tmp_path, scipy_blas=True)
    here = _fit_in_child(dtype, tmp_path, scipy_blas=False)
    tol = 1e-4 if dtype == "float32" else 1e-10
    np.testing.assert_allclose(scipy_params, here, rtol=tol, atol=tol)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(300, 40)), rng.integers(0, 5, 300)
    ref = fb.Sequential([fb.Dense(40, 96), fb.ReLU(), fb.Dense(96, 48), fb.Tanh(),
                         fb.Dense(48, 5)], loss=fb.SoftmaxCrossEntropy(), dtype=dtype,
                        seed=1, backend="numpy")
    ref.fit(X, y, epochs=3, lr=0.05, batch_size=64, momentum=0.9)
    np.testing.assert_allclose(here, ref.params, rtol=tol, atol=tol)
    folders = os.listdir(tmp_path / "cache")
    assert len([f for f in folders if not f.startswith(".")]) == 2, folders


@pytest.mark.skipif(_blas.cblas() is None, reason="this NumPy bundles no OpenBLAS of its own")
def test_a_fit_does_not_import_scipy_linalg_and_numba_keeps_its_blas():
    """Numba's registries load without SciPy's linalg (the kernels call NumPy's BLAS);
    the user's own np.dot still compiles, through Numba's own check and SciPy."""
    code = textwrap.dedent("""
        import json, sys, numpy as np, numba, fastbp as fb
        rng = np.random.default_rng(0)
        X, y = rng.normal(size=(40, 3)), rng.integers(0, 2, 40)
        fb.MLP([3, 5, 2], output_activation="identity", loss="cross_entropy",
               seed=0).fit(X, y, epochs=2, batch_size=8)
        from numba.np import arraymath, linalg
        res = {"after_fit": "scipy.linalg" in sys.modules, "have_blas": arraymath._HAVE_BLAS,
               "check": linalg.ensure_blas.__module__}
        dot = numba.njit(lambda a, b: np.dot(a, b))
        res["dot_ok"] = bool(np.array_equal(dot(X, X.T), X @ X.T))
        res["after_dot"] = "scipy.linalg" in sys.modules
        print(json.dumps(res))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout.splitlines()[-1])
    assert res == {"after_fit": False, "have_blas": True, "check": "numba.np.linalg",
                   "dot_ok": True, "after_dot": True}, res
