"""The package's shape, checked from its source with ``ast`` (nothing is imported).

- no import cycle anywhere in fastbp/ (every import counts, including the
  ones inside functions);
- the kernel/reference mirror: every public function of
  ``fastbp/kernels/<op>.py`` exists in ``fastbp/reference/<op>.py`` with the
  same parameter names, and back;
- every FASTBP_* environment variable is read in ``fastbp/_config.py`` only;
- size limits on the modules the model is built from.
"""
import ast
import pathlib
import re

import pytest

import fastbp

PKG = pathlib.Path(fastbp.__file__).parent


def _module_name(path):
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules():
    return {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _imports(name, path, modules):
    """The fastbp modules ``name`` imports (a package's __init__ counts only when a
    name is taken from it; ``from . import x`` of a submodule imports the submodule)."""
    is_pkg = path.name == "__init__.py"
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name in modules)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[:len(base) - node.level + (1 if is_pkg else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for a in node.names:
                sub = f"{target}.{a.name}"
                if sub in modules:
                    out.add(sub)
                elif target in modules:
                    out.add(target)
    out.discard(name)
    return out


def _cycles(graph):
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            node, it = work[-1]
            nxt = next(it, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter[0]
                    counter[0] += 1
                    stack.append(nxt)
                    on.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                elif nxt in on:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    v = stack.pop()
                    on.discard(v)
                    comp.append(v)
                    if v == node:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def test_import_graph_is_read():
    modules = _modules()
    graph = {m: _imports(m, p, modules) for m, p in modules.items()}
    assert "fastbp.plan" in graph["fastbp.model"] and "fastbp._engine" in graph["fastbp.model"]
    assert "fastbp.plan" in graph["fastbp.kernels.network"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle():
    modules = _modules()
    graph = {m: _imports(m, p, modules) for m, p in modules.items()}
    assert _cycles(graph) == []


def test_io_is_a_leaf():
    """io knows the file format only: it imports no model, layer or loss module."""
    modules = _modules()
    imported = _imports("fastbp.io", modules["fastbp.io"], modules)
    assert imported <= {"fastbp._validate", "fastbp.backend"}, imported


# --------------------------------------------------------------------------- mirror
# Kernel-only or reference-only functions, and why.
MIRROR_EXCEPTIONS = {
    ("rng.py", "stream_base"): "scalar form of reference.rng.stream_bits for per-element loops",
    ("rng.py", "uniform53_at"): "scalar form of reference.rng.uniform53 for per-element loops",
    ("rng.py", "stream_bits"): "vectorised; the kernels draw element by element (stream_base)",
    ("rng.py", "uniform53"): "vectorised; the kernels draw element by element (uniform53_at)",
}
KERNEL_ONLY_MODULES = {"specialize.py": "generates Numba source for one network shape",
                       "specialize_batch.py": "the same, for its mini-batch functions",
                       "specialize_loss.py": "their loss, count and L2 term",
                       "specialize_online.py": "the per-sample kernel and row-at-a-time passes"}


def _public_functions(path):
    out = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
            a = node.args
            out[node.name] = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs]
    return out


def _op_modules():
    kernels = {p.name for p in (PKG / "kernels").glob("*.py")} - {"__init__.py"}
    reference = {p.name for p in (PKG / "reference").glob("*.py")} - {"__init__.py"}
    return kernels, reference


def test_every_op_module_has_its_mirror():
    kernels, reference = _op_modules()
    assert kernels - reference == set(KERNEL_ONLY_MODULES)
    assert reference - kernels == set()


@pytest.mark.parametrize("module", sorted(_op_modules()[1]))
def test_kernel_and_reference_functions_mirror(module):
    k = _public_functions(PKG / "kernels" / module)
    r = _public_functions(PKG / "reference" / module)
    problems = []
    for name in sorted(set(k) | set(r)):
        if (module, name) in MIRROR_EXCEPTIONS:
            continue
        if name not in k:
            problems.append(f"kernels/{module} lacks {name}")
        elif name not in r:
            problems.append(f"reference/{module} lacks {name}")
        elif k[name] != r[name]:
            problems.append(f"{name}: kernel {k[name]} != reference {r[name]}")
    assert problems == []


def test_mirror_exceptions_are_current():
    """A listed exception that no longer applies must leave the list."""
    for (module, name) in MIRROR_EXCEPTIONS:
        k = _public_functions(PKG / "kernels" / module)
        r = _public_functions(PKG / "reference" / module)
        assert (name in k) != (name in r), (module, name)


# --------------------------------------------------------------------------- settings
def test_environment_is_read_in_config_only():
    """Every FASTBP_* variable is read in _config.py, and documented there and in the README."""
    readers = {}
    for path in PKG.rglob("*.py"):
        text = path.read_text()
        if re.search(r"os\.environ|getenv", text):
            for var in re.findall(r"FASTBP_[A-Z_]+", text):
                readers.setdefault(var, set()).add(path.name)
    config = (PKG / "_config.py").read_text()
    read_in_config = set(re.findall(r"\"(FASTBP_[A-Z_]+)\"", config))
    assert {"FASTBP_NUMBA_CACHE", "FASTBP_FASTMATH", "FASTBP_SPECIALIZE", "FASTBP_CACHE_DIR",
            "FASTBP_BLAS_THREADS", "FASTBP_MEMORY_BUDGET"} <= read_in_config
    code_readers = {p.name for p in PKG.rglob("*.py")
                    if re.search(r"os\.environ(?:\.get)?[\[(]\s*[\"']FASTBP_|getenv\([\"']FASTBP_",
                                 p.read_text())}
    assert code_readers <= {"_config.py", "bench.py"}, code_readers
    doc = config.split('"""')[1]
    readme = (PKG.parent / "README.md").read_text()
    for var in read_in_config:
        assert var in doc and var in readme, var


# --------------------------------------------------------------------------- sizes
SIZED = ["model.py", "io.py", "plan.py", "layers.py", "_engine.py", "_training.py",
         "_callbacks.py", "_validate.py", "_config.py", "_threads.py", "_memory.py",
         "losses.py", "optim.py", "backend.py"]


@pytest.mark.parametrize("name", SIZED)
def test_module_and_function_sizes(name):
    text = (PKG / name).read_text()
    assert len(text.splitlines()) <= 500
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            assert length <= 80, f"{name}:{node.name} is {length} lines"


def test_sequential_is_short():
    tree = ast.parse((PKG / "model.py").read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Sequential")
    assert cls.end_lineno - cls.lineno + 1 < 350
    ladders = [n for n in ast.walk(cls) if isinstance(n, ast.Call)
               and getattr(n.func, "id", None) == "isinstance"
               and isinstance(n.args[1], ast.Name) and n.args[1].id in
               ("Dense", "BatchNorm", "Dropout", "Activation", "Sigmoid", "Identity")]
    assert ladders == [], "layer kinds belong to the layer classes"
