"""Numba's cache is dropped when any kernel source (or plan/config) changes."""
import shutil
from pathlib import Path

import fastbp.kernels as kernels


def _tree(tmp_path):
    pkg = Path(kernels.__file__).parent
    root = tmp_path / "fastbp"
    shutil.copytree(pkg, root / "kernels", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("plan.py", "_config.py"):
        shutil.copy(pkg.parent / name, root / name)
    cache = root / "kernels" / "__pycache__"
    cache.mkdir()
    return root, cache


def test_unchanged_sources_keep_the_cache(tmp_path):
    root, cache = _tree(tmp_path)
    kernels._drop_stale_cache(str(root / "kernels"))          # first run writes the stamp
    (cache / "dense.dense_forward-1.py311.nbi").write_text("index")
    kernels._drop_stale_cache(str(root / "kernels"))
    assert (cache / "dense.dense_forward-1.py311.nbi").exists()


def test_a_changed_source_drops_every_cached_kernel(tmp_path):
    root, cache = _tree(tmp_path)
    kernels._drop_stale_cache(str(root / "kernels"))
    for name in ("network.train_epochs-1.py311.nbi", "network.train_epochs-1.py311.1.nbc"):
        (cache / name).write_text("x")
    with open(root / "plan.py", "a") as f:                      # a constant the kernels read
        f.write("\n# changed\n")
    kernels._drop_stale_cache(str(root / "kernels"))
    assert not list(cache.glob("*.nb[ic]"))
    assert (cache / "fastbp-kernels.stamp").exists()
