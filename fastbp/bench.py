"""fastbp's benchmark: fastbp against its NumPy reference, PyTorch and scikit-learn.

One command (``scripts/bench`` or ``fastbp bench``) runs the workloads below,
prints a table of median times, ratios to fastbp and the agreement of the
results, checks every figure against its target, and writes the numbers as
JSON and the times as a bar chart.

Workloads (float64 unless noted)
--------------------------------
A  per-sample SGD (batch 1, one update per sample), time per epoch of 500
   samples: [2,4,4,1] sigmoid + MSE and [2,8,8,1] tanh + MSE on
   ``generate_linear``, [4,16,16,3] ReLU + softmax cross-entropy on Gaussian
   blobs. fastbp runs many epochs per ``fit`` call (time divided); the
   reference runs whole epochs; PyTorch eager runs a plain per-sample loop on
   a prefix of the data, scaled to 500 samples.
B  mini-batch SGD on the digits (1438 x 64), 64-128-64-10 ReLU, softmax
   cross-entropy, lr 0.05, one epoch: batch 32 and 256, against the
   reference, PyTorch eager and scikit-learn's MLPClassifier; and with
   BatchNorm and Dropout(0.2) after each hidden Dense (batch 32).
C  one training step of 3072-1024-512-10 ReLU on a batch of 256 random
   CIFAR-10-shaped rows, float32 and float64, against the same step's eight
   matrix products alone (into preallocated arrays, on SciPy's BLAS, which
   Numba's np.dot calls, taking turns with fastbp; and with np.matmul), the
   reference and PyTorch.
T  thread pools: a fastbp epoch (digits, batch 32, BLAS on the hot path)
   alternating with a 512x512 NumPy matrix product, each against itself alone.
M  memory: allocations per steady-state step (tracemalloc and Numba's
   allocation counters), and the peak memory of workload C's training beyond
   its data set, relative to parameters + one batch of activations.
S  start-up: ``import fastbp`` and the first ``fit`` with a fresh Numba cache
   directory (cold) and again with the same directory (warm), in subprocesses.

Threads: A and B run every implementation with one thread per pool
(threadpoolctl for the BLAS and OpenMP pools, ``torch.set_num_threads(1)``),
taking turns round by round; C runs each implementation in its own block with
the machine's default thread counts, after an untimed warm-up (only fastbp
and the same products on its own BLAS take turns); T uses the default thread
counts on purpose (that is where pools collide). Each table says which.

Agreement: fastbp vs the reference is the largest |weight difference| after
the same training from the same weights (the reference is the specification:
float64 must agree within 1e-10). PyTorch and scikit-learn start from
fastbp's initial weights and train on the same samples in the same order;
with dropout, PyTorch is given fastbp's own masks for the comparison.
"""
import argparse
import contextlib
import gc
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

DEFAULT_JSON = os.path.join("fastbp-out", "bench.json")
DEFAULT_PLOT = os.path.join("fastbp-out", "bench.png")
WORKLOADS = ("A", "B", "C", "T", "M", "S", "K")
ALIASES = {"threads": "T", "memory": "M", "startup": "S", "start-up": "S", "sklearn": "K"}
TOL64 = 1e-10

FASTBP = "fastbp (numba)"
REFERENCE = "reference (numpy)"
TORCH = "torch eager"
SKLEARN = "sklearn MLPClassifier"
GEMMS = "its GEMMs alone (np.matmul)"
GEMMS_SCIPY = "its GEMMs alone (SciPy BLAS)"
FASTBP_ONE_CALL = "fastbp (numba), 1 epoch per fit call"

ONE_THREAD = "1 thread per pool (threadpoolctl limits=1, torch.set_num_threads(1))"
DEFAULT_THREADS = "default thread counts, one implementation per block after a warm-up"

A_NETS = [
    # key, label, MLP arguments, data, lr, targets (x reference, x torch)
    ("A1", "[2,4,4,1] sigmoid, MSE",
     dict(sizes=[2, 4, 4, 1], activation="sigmoid", output_activation="sigmoid", loss="mse"),
     "linear", 0.1, (250.0, 1000.0)),
    ("A2", "[2,8,8,1] tanh, MSE",
     dict(sizes=[2, 8, 8, 1], activation="tanh", output_activation="sigmoid", loss="mse"),
     "linear", 0.1, (150.0, None)),
    ("A3", "[4,16,16,3] ReLU, softmax-CE",
     dict(sizes=[4, 16, 16, 3], activation="relu", output_activation="identity",
          loss="cross_entropy"),
     "blobs", 0.05, (150.0, None)),
]
DIGITS_NET = dict(sizes=[64, 128, 64, 10], activation="relu", output_activation="identity",
                  loss="cross_entropy")
DIGITS_LR = 0.05
DROPOUT_P = 0.2
CIFAR_NET = dict(sizes=[3072, 1024, 512, 10], activation="relu", output_activation="identity",
                 loss="cross_entropy")
CIFAR_LR = 0.01
CIFAR_BATCH = 256
CLIFF_TARGET = 1.2
# the mini-batch targets: (competitor, fastbp must be this many times faster)
B_TARGETS = {"B1": ((REFERENCE, 1.6), (TORCH, 3.5), (SKLEARN, 4.0)),
             "B2": ((REFERENCE, 1.15), (TORCH, 2.0)),
             "B3": ((TORCH, 3.0),)}
C_STEP_OVER_GEMMS = 1.05     # a step may take this many times its own products
C_VS_REFERENCE = 1.05        # fastbp this many times faster than the reference
C_VS_TORCH32 = 1.15          # ... and than PyTorch eager in float32


# --------------------------------------------------------------------------- settings
class Settings:
    """How hard to measure: --quick trades precision for time."""

    def __init__(self, quick):
        self.quick = quick
        self.repeat = 3 if quick else 7          # timed runs of fast things (median)
        self.slow_repeat = 1 if quick else 3     # timed runs of slow things (0.1 s and up)
        self.call_seconds = 0.05 if quick else 0.2   # length of one timed fastbp call in A
        self.torch_samples = 50 if quick else 250   # per-sample torch loop, scaled to 500
        self.c_batches = 1 if quick else 2       # batches of 256 per timed run in C
        self.c_rounds = 1 if quick else 5
        self.warmup = 0 if quick else 1          # untimed runs before timing (after checks)
        self.cliff_runs = 3                      # timed runs per block (after a warm-up)
        self.cliff_rounds = 2 if quick else 8    # rounds of alone / alone / alternating
        self.import_runs = 1 if quick else 3


# --------------------------------------------------------------------------- helpers
def _perf_times(fn, repeat, number=1, warmup=1):
    """Seconds per call of ``fn`` for ``repeat`` runs of ``number`` calls."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        out.append((time.perf_counter() - t0) / number)
    return out


def _torch():
    try:
        import torch
    except Exception:
        return None
    return torch


def _sklearn_mlp():
    try:
        from sklearn.neural_network import MLPClassifier
    except Exception:
        return None
    return MLPClassifier


def _interleave(fns, rounds, warmup=1):
    """{name: fn} -> {name: [seconds of each call]}: the calls take turns, round by
    round, so a change in the machine's load falls on every implementation alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    out = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            out[k].append(time.perf_counter() - t0)
    return out


@contextlib.contextmanager
def one_thread():
    """Every BLAS/OpenMP pool loaded so far, and PyTorch's, limited to one thread."""
    from threadpoolctl import threadpool_limits

    torch = _torch()
    saved = torch.get_num_threads() if torch is not None else None
    with threadpool_limits(limits=1):
        if torch is not None:
            torch.set_num_threads(1)
        try:
            yield
        finally:
            if torch is not None:
                torch.set_num_threads(saved)


def _load_pools():
    """Load the BLAS libraries (NumPy's, and SciPy's that Numba's np.dot calls) and
    PyTorch before any thread limit is set, so threadpoolctl sees all of them."""
    import scipy.linalg  # noqa: F401  (SciPy's OpenBLAS)

    import fastbp.kernels  # noqa: F401
    _torch()


def _pools():
    from threadpoolctl import threadpool_info

    return [dict(library=os.path.basename(p.get("filepath", "?")), api=p.get("user_api"),
                 threads=p.get("num_threads")) for p in threadpool_info()]


def _max_diff(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def _weights_diff(wa, wb):
    return max(_max_diff(x, y) for x, y in zip(wa, wb))


def _mlp(spec, backend="numba", dtype="float64", seed=0, **extra):
    import fastbp as fb

    kw = dict(spec)
    kw.update(extra)
    return fb.MLP(backend=backend, dtype=dtype, seed=seed, **kw)


# --------------------------------------------------------------------------- data
def linear_data(n=500):
    import fastbp as fb

    return fb.datasets.generate_linear(n=n, seed=0)


def blobs_data(n=500, n_features=4, n_classes=3, seed=0):
    g = np.random.default_rng([seed, 7])
    centres = g.normal(0.0, 2.0, (n_classes, n_features))
    y = g.integers(0, n_classes, n).astype(np.int64)
    X = centres[y] + g.normal(0.0, 1.0, (n, n_features))
    return np.ascontiguousarray(X), y


def digits_data(dtype="float64"):
    import fastbp as fb

    X, _, y, _ = fb.datasets.load_digits(dtype=dtype)
    return X, y


def cifar_shaped(n, dtype="float64", seed=0):
    """Random rows of CIFAR-10's shape: (n, 3072) pixels k/255, (n,) labels 0..9."""
    g = np.random.default_rng([seed, 10])
    X = (g.integers(0, 256, (n, 3072)).astype(np.float64) / 255.0).astype(dtype)
    return np.ascontiguousarray(X), g.integers(0, 10, n).astype(np.int64)


# --------------------------------------------------------------------------- PyTorch
def _torch_net(spec, weights, dtype, batchnorm=False, dropout=0.0, masks=None):
    """The same network in PyTorch, from fastbp's weights (get_weights order).

    masks: None (``nn.Dropout``) or a callable (layer index, shape) -> mask array;
    then each dropout multiplies by the mask fastbp itself draws.
    """
    torch = _torch()
    from torch import nn

    acts = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU, "tanh": nn.Tanh, "identity": nn.Identity}
    tdt = torch.float64 if np.dtype(dtype) == np.float64 else torch.float32

    class FixedMaskDropout(nn.Module):
        def __init__(self, index):
            super().__init__()
            self.index = index

        def forward(self, x):
            m = masks(self.index, tuple(x.shape))
            return x * torch.from_numpy(m)

    def put(param, value):
        with torch.no_grad():
            param.copy_(torch.from_numpy(np.ascontiguousarray(value)))

    sizes = spec["sizes"]
    it = iter(weights)
    layers, n_drop = [], 0
    for i in range(len(sizes) - 1):
        last = i == len(sizes) - 2
        lin = nn.Linear(sizes[i], sizes[i + 1]).to(tdt)
        put(lin.weight, next(it).T)
        put(lin.bias, next(it))
        layers.append(lin)
        if not last and batchnorm:
            bn = nn.BatchNorm1d(sizes[i + 1], eps=1e-5, momentum=0.1).to(tdt)
            put(bn.weight, next(it))
            put(bn.bias, next(it))
            layers.append(bn)
        layers.append(acts[spec["output_activation"] if last else spec["activation"]]())
        if not last and dropout:
            layers.append(FixedMaskDropout(n_drop) if masks else nn.Dropout(dropout))
            n_drop += 1
    return nn.Sequential(*layers)


def _torch_weights(net):
    """The PyTorch network's parameters in fastbp's get_weights order and shapes."""
    from torch import nn

    out = []
    for layer in net:
        if isinstance(layer, nn.Linear):
            out += [layer.weight.detach().numpy().T, layer.bias.detach().numpy()]
        elif isinstance(layer, nn.BatchNorm1d):
            out += [layer.weight.detach().numpy(), layer.bias.detach().numpy()]
    return out


class TorchTrainer:
    """Plain eager PyTorch SGD: per batch forward, loss, backward, optimizer.step."""

    def __init__(self, spec, weights, X, y, batch, lr, dtype="float64", **net_kw):
        torch = _torch()
        self.torch = torch
        self.net = _torch_net(spec, weights, dtype, **net_kw)
        self.net.train()
        self.opt = torch.optim.SGD(self.net.parameters(), lr=lr)
        tdt = torch.float64 if np.dtype(dtype) == np.float64 else torch.float32
        self.X = torch.from_numpy(np.ascontiguousarray(X, dtype=dtype))
        if spec["loss"] == "mse":
            self.y = torch.from_numpy(np.asarray(y, dtype=dtype).reshape(len(y), -1)).to(tdt)
            self.loss = torch.nn.functional.mse_loss
        else:
            self.y = torch.from_numpy(np.asarray(y, dtype=np.int64))
            self.loss = torch.nn.functional.cross_entropy
        self.batch = batch
        self.step = 0          # training steps so far (the dropout counter)

    def epoch(self, n=None):
        """One pass over the first ``n`` samples (all by default), in order."""
        n = self.X.shape[0] if n is None else n
        net, opt, loss_fn, X, y, B = self.net, self.opt, self.loss, self.X, self.y, self.batch
        for s in range(0, n, B):
            opt.zero_grad()
            loss = loss_fn(net(X[s:s + B]), y[s:s + B])
            loss.backward()
            opt.step()
            self.step += 1

    def weights(self):
        return _torch_weights(self.net)


def _fastbp_masks(model):
    """A mask provider drawing exactly the dropout masks ``model`` draws, step by step.

    Uses the model's plan (the dropout rows' keys) and the reference RNG. Returns
    (provider, state): ``provider(layer index, shape)`` draws the mask of step
    ``state["step"]``; or None when the plan is not readable.
    """
    try:
        from fastbp import plan as P
        from fastbp.reference.dropout import dropout_mask

        rows = [r for r in model._plan if r[P.KIND] == P.DROPOUT]
        pf = [model._pf[i] for i, r in enumerate(model._plan) if r[P.KIND] == P.DROPOUT]
        keys = [int(r[P.KEY]) for r in rows]
        ps = [float(f[P.F_A]) for f in pf]
    except Exception:
        return None
    state = {"step": 0}

    def provider(index, shape):
        m = np.empty(shape, dtype=model.dtype)
        dropout_mask(keys[index], state["step"], ps[index], m)
        return m

    return provider, state


# --------------------------------------------------------------------------- scikit-learn
def _sklearn_classifier(hidden, activation, batch, lr, X, y, weights, n_classes):
    """An MLPClassifier set to plain SGD, initialised, then given ``weights``."""
    MLPClassifier = _sklearn_mlp()
    clf = MLPClassifier(hidden_layer_sizes=hidden, activation=activation, solver="sgd",
                        batch_size=batch, learning_rate="constant", learning_rate_init=lr,
                        momentum=0.0, nesterovs_momentum=False, alpha=0.0, shuffle=False,
                        max_iter=1, tol=0.0, n_iter_no_change=1 << 30, early_stopping=False,
                        random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.partial_fit(X, y, classes=np.arange(n_classes))
    clf.coefs_ = [np.array(w, dtype=np.float64) for w in weights[0::2]]
    clf.intercepts_ = [np.array(b, dtype=np.float64) for b in weights[1::2]]
    return clf


def _sklearn_epoch(clf, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.partial_fit(X, y)


def _sklearn_weights(clf):
    out = []
    for W, b in zip(clf.coefs_, clf.intercepts_):
        out += [W, b]
    return out


# --------------------------------------------------------------------------- results
def _short(workload):
    """A workload's label for the chart: its key and what distinguishes it."""
    short = workload.split(" (")[0]
    for long, brief in (("per-sample ", ""), ("digits 64-128-64-10 ReLU", "digits"),
                        ("CIFAR-shaped 3072-1024-512-10 ReLU, batch 256", "CIFAR-shaped"),
                        (" +BatchNorm +Dropout(0.2)", " BN+dropout"), ("softmax-CE", "CE")):
        short = short.replace(long, brief)
    unit = workload.rsplit("(", 1)[-1].split(",")[0].rstrip(")")
    return f"{short} [{unit}]"


class Report:
    """Collects timing rows, other figures and target checks."""

    def __init__(self):
        self.rows, self.figures, self.targets, self.notes = [], [], [], []

    def time(self, group, workload, impl, times, unit, threads, agreement=None,
             agreement_with=None, note=""):
        row = dict(group=group, workload=workload, short=_short(workload), impl=impl,
                   time_s=float(np.median(times)),
                   times_s=[float(t) for t in times], unit=unit, threads=threads,
                   agreement=None if agreement is None else float(agreement),
                   agreement_with=agreement_with, note=note)
        self.rows.append(row)
        return row

    def skip(self, group, workload, impl, why):
        self.rows.append(dict(group=group, workload=workload, impl=impl, time_s=None,
                              times_s=[], unit=None, threads=None, agreement=None,
                              agreement_with=None, note=why))

    def figure(self, group, name, value, unit, note=""):
        self.figures.append(dict(group=group, name=name, value=value, unit=unit, note=note))

    def target(self, group, name, value, op, goal, unit=""):
        """Record ``value op goal`` (op ">=" or "<="); value None = not measured."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            met, margin = None, None
        elif op == ">=":
            met = value >= goal
            margin = value / goal if goal else math.inf
        else:
            met = value <= goal
            margin = (goal / value if value > 0 else math.inf)
        self.targets.append(dict(group=group, name=name, value=value, op=op, target=goal,
                                 unit=unit, met=met, margin=margin))

    def ratios(self):
        """ratio_to_fastbp on every row: time / fastbp's time in the same workload."""
        base = {r["workload"]: r["time_s"] for r in self.rows
                if r["impl"] == FASTBP and r["time_s"]}
        for r in self.rows:
            b = base.get(r["workload"])
            r["ratio_to_fastbp"] = (r["time_s"] / b) if (b and r["time_s"]) else None


# --------------------------------------------------------------------------- A: per-sample
def workload_A(S, rep):
    torch = _torch()
    MLPClassifier = _sklearn_mlp()
    for key, label, spec, data, lr, (t_ref, t_torch) in A_NETS:
        X, y = linear_data() if data == "linear" else blobs_data()
        n = X.shape[0]
        name = f"{key} per-sample {label} (s/epoch, {n} samples)"

        def fit(m, Xs=X, ys=y, epochs=1):
            m.fit(Xs, ys, epochs=epochs, lr=lr, batch_size=1, shuffle=False)

        with one_thread():
            # agreement with the reference: one epoch each from the same weights
            fast, ref = _mlp(spec, "numba"), _mlp(spec, "numpy")
            w0 = fast.get_weights()
            fit(fast)
            fit(ref)
            agree_ref = _max_diff(fast.params, ref.params)

            # fastbp runs many epochs per fit call (time divided), sized from a probe
            probe = _perf_times(lambda: fit(fast, epochs=20), 1)[0] / 20
            per_call = max(20, int(S.call_seconds / max(probe, 1e-7)))
            fns = {FASTBP: lambda: fit(fast, epochs=per_call),
                   FASTBP_ONE_CALL: lambda: [fit(fast) for _ in range(10)],
                   REFERENCE: lambda: fit(ref)}
            scale = {FASTBP: 1.0 / per_call, FASTBP_ONE_CALL: 0.1, REFERENCE: 1.0}
            notes = {FASTBP: f"{per_call} epochs per fit call, time divided",
                     FASTBP_ONE_CALL: "one fit(epochs=1) call per epoch: includes fit's "
                                      "per-call cost",
                     REFERENCE: ""}
            agree = {REFERENCE: (agree_ref, FASTBP)}

            if torch is not None:
                nt = min(S.torch_samples, n)
                tr = TorchTrainer(spec, w0, X, y, 1, lr)
                impl = TORCH + " (batch 1)"
                fns[impl] = lambda: tr.epoch(nt)
                scale[impl] = n / nt
                notes[impl] = f"per-sample loop over {nt} samples, scaled to {n}"
                # agreement: fastbp on the same prefix, from the same weights
                check = TorchTrainer(spec, w0, X, y, 1, lr)
                check.epoch(nt)
                m = _mlp(spec, "numba")
                fit(m, X[:nt], y[:nt])
                agree[impl] = (_weights_diff(m.get_weights(), check.weights()),
                               FASTBP + f", {nt} samples")
            if spec["loss"] == "cross_entropy" and MLPClassifier is not None:
                k = spec["sizes"][-1]
                clf = _sklearn_classifier(tuple(spec["sizes"][1:-1]), spec["activation"], 1, lr,
                                          X, y, w0, k)
                _sklearn_epoch(clf, X, y)
                m = _mlp(spec, "numba")
                fit(m)
                impl = SKLEARN + " (batch_size=1)"
                agree[impl] = (_weights_diff(m.get_weights(), _sklearn_weights(clf)), FASTBP)
                fns[impl] = lambda: _sklearn_epoch(clf, X, y)
                scale[impl] = 1.0
                notes[impl] = "partial_fit per epoch"

            times = _interleave(fns, S.repeat, S.warmup)
        for impl, ts in times.items():
            a, with_ = agree.get(impl, (None, None))
            rep.time("A", name, impl, [t * scale[impl] for t in ts], "s/epoch", ONE_THREAD,
                     agreement=a, agreement_with=with_, note=notes[impl])
        if torch is None:
            rep.skip("A", name, TORCH, "PyTorch is not importable")
        if spec["loss"] != "cross_entropy":
            rep.skip("A", name, SKLEARN, "no sigmoid output with MSE in scikit-learn")
        fast_t = float(np.median(times[FASTBP])) * scale[FASTBP]
        rep.target("A", f"{key} agreement fastbp vs reference", agree_ref, "<=", TOL64, "diff")
        rep.target("A", f"{key} speed-up vs reference",
                   float(np.median(times[REFERENCE])) / fast_t, ">=", t_ref, "x")
        if t_torch:
            impl = TORCH + " (batch 1)"
            value = (float(np.median(times[impl])) * scale[impl] / fast_t) if impl in times \
                else None
            rep.target("A", f"{key} speed-up vs torch eager", value, ">=", t_torch, "x")


# --------------------------------------------------------------------------- B: mini-batch
def workload_B(S, rep):
    torch = _torch()
    MLPClassifier = _sklearn_mlp()
    X, y = digits_data()
    n = X.shape[0]
    cases = [("B1", 32, {}), ("B2", 256, {}),
             ("B3", 32, dict(batchnorm=True, dropout=DROPOUT_P))]
    for key, batch, extra in cases:
        arch = "64-128-64-10 ReLU" + (" +BatchNorm +Dropout(0.2)" if extra else "")
        name = f"{key} digits {arch}, batch {batch} (s/epoch, {n} samples)"

        def fit(m):
            m.fit(X, y, epochs=1, lr=DIGITS_LR, batch_size=batch, shuffle=False)

        with one_thread():
            fast, ref = _mlp(DIGITS_NET, "numba", **extra), _mlp(DIGITS_NET, "numpy", **extra)
            w0 = fast.get_weights()
            fit(fast)
            fit(ref)
            agree_ref = _max_diff(fast.params, ref.params)
            fns = {FASTBP: lambda: fit(fast), REFERENCE: lambda: fit(ref)}
            agree = {REFERENCE: (agree_ref, FASTBP)}
            notes = {}

            if torch is not None:
                impl = TORCH + " (float64)"
                tr = TorchTrainer(DIGITS_NET, w0, X, y, batch, DIGITS_LR, **extra)
                fns[impl] = tr.epoch
                m = _mlp(DIGITS_NET, "numba", **extra)
                if extra.get("dropout"):
                    masks = _fastbp_masks(m)
                    if masks is not None:
                        provider, state = masks
                        check = TorchTrainer(DIGITS_NET, w0, X, y, batch, DIGITS_LR,
                                             masks=provider, **extra)
                        for s in range(0, n, batch):      # one step at a time, counted
                            state["step"] = check.step
                            _torch_one_step(check, s)
                        fit(m)
                        agree[impl] = (_weights_diff(m.get_weights(), check.weights()),
                                       FASTBP + " (torch given fastbp's dropout masks)")
                    else:
                        notes[impl] = "agreement n/a: dropout masks differ"
                else:
                    check = TorchTrainer(DIGITS_NET, w0, X, y, batch, DIGITS_LR, **extra)
                    check.epoch()
                    fit(m)
                    agree[impl] = (_weights_diff(m.get_weights(), check.weights()), FASTBP)
            if not extra and MLPClassifier is not None:
                impl = SKLEARN + f" (sgd, batch_size={batch})"
                clf = _sklearn_classifier((128, 64), "relu", batch, DIGITS_LR, X, y, w0, 10)
                _sklearn_epoch(clf, X, y)
                m = _mlp(DIGITS_NET, "numba")
                fit(m)
                agree[impl] = (_weights_diff(m.get_weights(), _sklearn_weights(clf)), FASTBP)
                fns[impl] = lambda: _sklearn_epoch(clf, X, y)
                notes[impl] = "partial_fit per epoch"

            times = _interleave(fns, S.repeat, S.warmup)
        for impl, ts in times.items():
            a, with_ = agree.get(impl, (None, None))
            rep.time("B", name, impl, ts, "s/epoch", ONE_THREAD, agreement=a,
                     agreement_with=with_, note=notes.get(impl, ""))
        if torch is None:
            rep.skip("B", name, TORCH, "PyTorch is not importable")
        if extra:
            rep.skip("B", name, SKLEARN, "no BatchNorm or Dropout in MLPClassifier")
        elif MLPClassifier is None:
            rep.skip("B", name, SKLEARN, "scikit-learn is not importable")
        rep.target("B", f"{key} agreement fastbp vs reference", agree_ref, "<=", TOL64, "diff")
        t_fast = float(np.median(times[FASTBP]))
        for prefix, goal in B_TARGETS.get(key, ()):
            impl = next((i for i in times if i.startswith(prefix)), None)
            value = float(np.median(times[impl])) / t_fast if impl else None
            rep.target("B", f"{key} speed-up vs {prefix}", value, ">=", goal, "x")


def _torch_one_step(tr, start):
    B = tr.batch
    tr.opt.zero_grad()
    loss = tr.loss(tr.net(tr.X[start:start + B]), tr.y[start:start + B])
    loss.backward()
    tr.opt.step()
    tr.step += 1


# --------------------------------------------------------------------------- C: large batch
class StepGemms:
    """The matrix products of one training step of a Dense stack, alone.

    Forward x W1, h1 W2, h2 W3; backward dW_i = in_i' d_i and d(in_i) = d_i W_i'
    (none for the network's input), into preallocated arrays. ``blas="numpy"``
    uses ``np.matmul(out=)`` (NumPy's BLAS; ``np.dot(out=)`` takes a slow
    non-BLAS path for some transposed operands, e.g. (256, 10) @ (10, 512)');
    ``blas="scipy"`` calls SciPy's ``?gemm``, the library Numba's ``np.dot`` uses.
    """

    def __init__(self, sizes, batch, dtype, blas="numpy"):
        g = np.random.default_rng(0)

        def a(*shape):
            return g.standard_normal(shape).astype(dtype)

        self.x = a(batch, sizes[0])
        self.W = [a(sizes[i], sizes[i + 1]) for i in range(len(sizes) - 1)]
        self.h = [a(batch, s) for s in sizes[1:]]
        self.d = [a(batch, s) for s in sizes[1:]]
        self.dW = [np.empty_like(W) for W in self.W]
        self.dh = [np.empty((batch, s), dtype) for s in sizes[1:-1]]
        inp = [self.x] + self.h[:-1]
        calls = []
        for i, W in enumerate(self.W):
            calls.append((inp[i], W, self.h[i]))
        for i in range(len(self.W) - 1, -1, -1):
            calls.append((inp[i].T, self.d[i], self.dW[i]))
            if i > 0:
                calls.append((self.d[i], self.W[i].T, self.dh[i - 1]))
        if blas == "numpy":
            self.calls = [(np.matmul, (x, y), {"out": o}) for x, y, o in calls]
        else:
            from scipy.linalg import blas as sb

            gemm = sb.dgemm if np.dtype(dtype) == np.float64 else sb.sgemm
            self.calls = [(gemm, *self._fortran(x, y, o)) for x, y, o in calls]

    @staticmethod
    def _fortran(x, y, out):
        """?gemm arguments computing C-ordered ``out = x @ y`` as ``out' = y' x'``."""
        def operand(m):           # an F-contiguous array and its trans flag
            return (m, 0) if m.flags.f_contiguous else (m.T, 1)

        (fa, ta), (fb, tb) = operand(y.T), operand(x.T)
        return (1.0, fa, fb), dict(beta=0.0, c=out.T, overwrite_c=1, trans_a=ta, trans_b=tb)

    def __call__(self):
        for fn, args, kw in self.calls:
            fn(*args, **kw)


def workload_C(S, rep):
    torch = _torch()
    nb = S.c_batches
    for key, dtype in (("C1", "float32"), ("C2", "float64")):
        X, y = cifar_shaped(nb * CIFAR_BATCH, dtype)
        name = f"{key} CIFAR-shaped 3072-1024-512-10 ReLU, batch 256, {dtype} (s/step)"

        def fit(m, Xs=X, ys=y):
            m.fit(Xs, ys, epochs=1, lr=CIFAR_LR, batch_size=CIFAR_BATCH, shuffle=False)

        # agreement: one step each from the same weights
        fast, ref = _mlp(CIFAR_NET, "numba", dtype), _mlp(CIFAR_NET, "numpy", dtype)
        w0 = fast.get_weights()
        fit(fast, X[:CIFAR_BATCH], y[:CIFAR_BATCH])
        fit(ref, X[:CIFAR_BATCH], y[:CIFAR_BATCH])
        agree_ref = _max_diff(fast.params, ref.params)
        w1 = fast.get_weights()

        # fastbp and the same products on the same BLAS (SciPy's) take turns
        gemms = StepGemms(CIFAR_NET["sizes"], CIFAR_BATCH, dtype, "scipy")
        times = _interleave({FASTBP: lambda: fit(fast), GEMMS_SCIPY: gemms}, S.c_rounds,
                            S.warmup)
        t_fast = [t / nb for t in times[FASTBP]]
        t_scipy = times[GEMMS_SCIPY]
        rep.time("C", name, FASTBP, t_fast, "s/step", DEFAULT_THREADS,
                 note=f"{nb} steps per fit call, time divided; in turns with the next row")
        rep.time("C", name, GEMMS_SCIPY, t_scipy, "s/step", DEFAULT_THREADS,
                 note="the step's 8 matrix products into preallocated arrays")
        del gemms
        gemms = StepGemms(CIFAR_NET["sizes"], CIFAR_BATCH, dtype, "numpy")
        t_numpy = _perf_times(gemms, S.c_rounds, warmup=S.warmup)
        rep.time("C", name, GEMMS, t_numpy, "s/step", DEFAULT_THREADS,
                 note="the same with NumPy's BLAS")
        del gemms
        t_ref = [t / nb for t in _perf_times(lambda: fit(ref), S.slow_repeat, warmup=S.warmup)]
        rep.time("C", name, REFERENCE, t_ref, "s/step", DEFAULT_THREADS, agreement=agree_ref,
                 agreement_with=FASTBP + ", 1 step")
        if dtype == "float64":
            rep.target("C", f"{key} agreement fastbp vs reference", agree_ref, "<=", TOL64,
                       "diff")
        else:
            rep.figure("C", f"{key} agreement fastbp vs reference (float32)", agree_ref, "")
        rep.target("C", f"{key} fastbp step / its GEMMs alone (SciPy BLAS, in turns)",
                   float(np.median(np.array(t_fast) / np.array(t_scipy))), "<=",
                   C_STEP_OVER_GEMMS, "x")
        rep.target("C", f"{key} speed-up vs reference",
                   float(np.median(t_ref) / np.median(t_fast)), ">=", C_VS_REFERENCE, "x")
        rep.figure("C", f"{key} fastbp step / its GEMMs alone (np.matmul)",
                   float(np.median(t_fast) / np.median(t_numpy)), "x", "medians of blocks")
        if torch is not None:
            tr = TorchTrainer(CIFAR_NET, w0, X, y, CIFAR_BATCH, CIFAR_LR, dtype)
            times = [t / nb for t in _perf_times(tr.epoch, S.slow_repeat, warmup=S.warmup)]
            check = TorchTrainer(CIFAR_NET, w0, X, y, CIFAR_BATCH, CIFAR_LR, dtype)
            check.epoch(CIFAR_BATCH)
            agree = _weights_diff(w1, check.weights())
            rep.time("C", name, TORCH + f" ({dtype})", times, "s/step", DEFAULT_THREADS,
                     agreement=agree, agreement_with=FASTBP + ", 1 step")
            if dtype == "float32":
                rep.target("C", f"{key} speed-up vs torch eager (float32)",
                           float(np.median(times) / np.median(t_fast)), ">=", C_VS_TORCH32, "x")
            del tr, check
        else:
            rep.skip("C", name, TORCH, "PyTorch is not importable")
        del fast, ref
        gc.collect()


# --------------------------------------------------------------------------- T: thread pools
def _cliff(S, epoch, matmul):
    """Median (epoch, matmul) times alone and alternating, over rounds of blocks."""
    alone_e, alone_m, alt_e, alt_m = [], [], [], []
    for _ in range(S.cliff_rounds):      # short blocks in rounds: load drift hits all alike
        alone_e += _perf_times(epoch, S.cliff_runs)     # the warm-up run absorbs the switch
        alone_m += _perf_times(matmul, S.cliff_runs)
        epoch()
        matmul()
        for _ in range(S.cliff_runs):
            t0 = time.perf_counter()
            epoch()
            t1 = time.perf_counter()
            matmul()
            t2 = time.perf_counter()
            alt_e.append(t1 - t0)
            alt_m.append(t2 - t1)
    med = [float(np.median(v)) for v in (alone_e, alone_m, alt_e, alt_m)]
    return med, med[2] / med[0], med[3] / med[1]


def workload_T(S, rep):
    X, y = digits_data()
    model = _mlp(DIGITS_NET, "numba")

    def epoch():
        model.fit(X, y, epochs=1, lr=DIGITS_LR, batch_size=32, shuffle=False)

    g = np.random.default_rng(0)
    A, B = g.random((512, 512)), g.random((512, 512))
    C = np.empty_like(A)

    def matmul():
        np.dot(A, B, out=C)

    epoch()
    matmul()
    pools = ", ".join(f"{p['library']}={p['threads']}" for p in _pools() if p["api"] == "blas")
    (ae, am, xe, xm), re_, rm = _cliff(S, epoch, matmul)
    name = "T fastbp digits epoch (batch 32) alternating with NumPy 512x512 @ 512x512"
    rep.figure("T", "T fastbp epoch alone", ae, "s", f"default threads: {pools}")
    rep.figure("T", "T fastbp epoch when alternating", xe, "s")
    rep.figure("T", "T NumPy matmul alone", am, "s")
    rep.figure("T", "T NumPy matmul when alternating", xm, "s")
    rep.target("T", "T fastbp epoch: alternating / alone (default threads)", re_, "<=",
               CLIFF_TARGET, "x")
    rep.target("T", "T NumPy matmul: alternating / alone (default threads)", rm, "<=",
               CLIFF_TARGET, "x")
    with one_thread():
        (ae1, am1, xe1, xm1), re1, rm1 = _cliff(S, epoch, matmul)
    rep.figure("T", "T fastbp epoch: alternating / alone, 1 thread per pool", re1, "x",
               "diagnostic: the same with threadpoolctl limits=1")
    rep.figure("T", "T NumPy matmul: alternating / alone, 1 thread per pool", rm1, "x",
               "diagnostic: the same with threadpoolctl limits=1")
    rep.notes.append(f"{name}: median of {S.cliff_rounds * S.cliff_runs} runs each")


# --------------------------------------------------------------------------- M: memory
_MEMORY_CHILD = r"""
import gc, json, sys, tracemalloc
import numpy as np
import fastbp as fb

def nrt():
    # Numba's allocation counter (NUMBA_NRT_STATS=1), once the runtime is up
    try:
        from numba.core.runtime import rtsys
        return rtsys.get_allocation_stats().alloc
    except Exception:
        return None

out = {}

def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return None

def steady(tag, model, X, y, batch, lr, steps):
    # X holds exactly `steps` steps; X2 twice as many (for the allocation counter)
    X2, y2 = np.concatenate([X, X]), np.concatenate([y, y])
    fit = lambda Xs, ys, e=1: model.fit(Xs, ys, epochs=e, lr=lr, batch_size=batch,
                                        shuffle=False)
    fit(X, y); fit(X2, y2); fit(X, y, 2)              # compile / load, buffers
    a0 = nrt(); fit(X, y); a1 = nrt(); fit(X2, y2); a2 = nrt()
    per_step_nrt = None if None in (a0, a1, a2) else ((a2 - a1) - (a1 - a0)) / steps
    tracemalloc.start()
    fit(X, y)
    gc.collect()
    base = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    fit(X, y)
    cur, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    out[tag] = dict(steps=steps, call_peak_bytes=peak - base, retained_bytes=cur - base,
                    nrt_allocs_per_step=per_step_nrt,
                    nrt_allocs_per_call=None if None in (a0, a1) else a1 - a0)

X, y = fb.datasets.generate_linear(n=100, seed=0)
m = fb.MLP([2, 4, 4, 1], activation="sigmoid", output_activation="sigmoid", loss="mse")
steady("per-sample", m, X, y, 1, 0.1, 100)
X, _, y, _ = fb.datasets.load_digits()
reps = -(-3200 // X.shape[0])
X, y = np.concatenate([X] * reps)[:3200], np.concatenate([y] * reps)[:3200]
m = fb.MLP([64, 128, 64, 10], activation="relu", output_activation="identity",
           loss="cross_entropy")
steady("mini-batch", m, X, y, 32, 0.05, 100)

n_batches = int(sys.argv[1])
for dtype in sys.argv[2].split(","):
    g = np.random.default_rng([0, 10])
    X = (g.integers(0, 256, (n_batches * 256, 3072)) / 255.0).astype(dtype)
    y = g.integers(0, 10, n_batches * 256)
    spec = dict(activation="relu", output_activation="identity", loss="cross_entropy",
                dtype=dtype)
    warm = fb.MLP([3072, 1024, 512, 10], **spec)
    warm.fit(X[:256], y[:256], epochs=1, lr=0.01, batch_size=256, shuffle=False)
    del warm
    gc.collect()
    rss0 = status("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        reset = True
    except OSError:
        reset = False
    m = fb.MLP([3072, 1024, 512, 10], **spec)
    m.fit(X, y, epochs=1, lr=0.01, batch_size=256, shuffle=False)
    peak = status("VmHWM")
    item = np.dtype(dtype).itemsize
    out["peak-" + dtype] = dict(
        beyond_data_bytes=peak - rss0, peak_reset=reset,
        params_bytes=m.n_params * item, activations_bytes=256 * (1024 + 512 + 10) * item)
    del m
    gc.collect()
print(json.dumps(out))
"""


def _child(code, args=(), env=None, timeout=900):
    e = dict(os.environ)
    e.update(env or {})
    proc = subprocess.run([sys.executable, "-c", code, *map(str, args)], env=e,
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark subprocess failed ({proc.returncode}):\n"
                           f"{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def workload_M(S, rep):
    dtypes = ("float64",) if S.quick else ("float32", "float64")
    res = _child(_MEMORY_CHILD, [S.c_batches + 1, ",".join(dtypes)],
                 env={"NUMBA_NRT_STATS": "1"})
    for tag in ("per-sample", "mini-batch"):
        r = res[tag]
        steps = r["steps"]
        rep.figure("M", f"M {tag} fit: bytes allocated per step (tracemalloc, {steps} steps)",
                   r["call_peak_bytes"] / steps, "B",
                   f"traced peak of one fit call of {steps} steps "
                   f"({_fmt_num(r['call_peak_bytes'], 'B')}, allocated per call: checks, "
                   f"snapshot), divided by {steps}; {_fmt_num(r['retained_bytes'], 'B')} kept")
        rep.target("M", f"M {tag} fit: Numba allocations inside the step loop, per step",
                   r["nrt_allocs_per_step"], "<=", 0.0, "")
        if r["nrt_allocs_per_call"] is not None:
            rep.figure("M", f"M {tag} fit: Numba allocations per fit call",
                       r["nrt_allocs_per_call"], "", "array arguments boxed per kernel call")
    for dtype in dtypes:
        r = res["peak-" + dtype]
        denom = r["params_bytes"] + r["activations_bytes"]
        rep.figure("M", f"M C {dtype}: peak memory beyond the data set",
                   int(r["beyond_data_bytes"]), "B",
                   "RSS high-water mark during fit" + ("" if r["peak_reset"] else
                                                      " (peak not resettable: upper bound)"))
        rep.figure("M", f"M C {dtype}: that peak / (parameters + one batch of activations)",
                   r["beyond_data_bytes"] / denom, "x",
                   f"parameters {r['params_bytes'] / 2**20:.1f} MiB + layer outputs of 256 rows "
                   f"{r['activations_bytes'] / 2**20:.1f} MiB")


# --------------------------------------------------------------------------- S: start-up
_STARTUP_CHILD = r"""
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


def workload_S(S, rep):
    imports = [_child(_STARTUP_CHILD, ["import"])["import_s"] for _ in range(S.import_runs)]
    rep.figure("S", "S import fastbp (fresh process)", float(np.median(imports)), "s",
               f"median of {len(imports)}")
    for kind in ("per-sample", "mini-batch"):
        if S.quick and kind == "mini-batch":
            rep.figure("S", f"S first fit {kind}, cold cache", None, "s",
                       "skipped with --quick (compiles for about a minute)")
            continue
        tmp = tempfile.mkdtemp(prefix="fastbp-bench-cache-")
        try:
            env = {"NUMBA_CACHE_DIR": tmp, "FASTBP_NUMBA_CACHE": "1"}
            cold = _child(_STARTUP_CHILD, [kind], env)["first_fit_s"]
            warm = _child(_STARTUP_CHILD, [kind], env)["first_fit_s"]
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        rep.figure("S", f"S first fit {kind}, cold cache (fresh NUMBA_CACHE_DIR)", cold, "s",
                   "compiles every kernel it needs")
        rep.figure("S", f"S first fit {kind}, warm cache (same NUMBA_CACHE_DIR again)", warm,
                   "s", "loads compiled kernels")


# --------------------------------------------------------------------------- output
def _fmt_time(t):
    if t is None:
        return "—"
    if t >= 1:
        return f"{t:.3g} s"
    if t >= 1e-3:
        return f"{t * 1e3:.3g} ms"
    return f"{t * 1e6:.3g} µs"


def _fmt_num(v, unit=""):
    if v is None:
        return "—"
    if unit == "s":
        return _fmt_time(v)
    if unit == "B":
        a = abs(v)
        if a >= 2**20:
            return f"{v / 2**20:.1f} MiB"
        if a >= 2**10:
            return f"{v / 2**10:.1f} KiB"
        return f"{v:.4g} B"
    if unit == "x":
        return f"{v:,.0f}×" if abs(v) >= 100 else f"{v:.3g}×"
    if isinstance(v, float) and v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5):
        return f"{v:.2g}"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _fmt_diff(d):
    return "—" if d is None else f"{d:.1e}"


def format_report(rep, meta):
    lines = []
    add = lines.append
    add(f"fastbp bench ({meta['command']})")
    env = meta["environment"]
    add("  " + ", ".join(f"{k} {v}" for k, v in env["versions"].items())
        + f"; {env['cpus']} CPUs; {env['platform']}")
    add("  time = median of the runs; × fastbp = time / fastbp's time (above 1: fastbp is "
        "faster);")
    add("  agreement = max |weight difference| vs fastbp after the same work from the same "
        "weights.")
    groups = {"A": "A. Per-sample SGD (one update per sample)",
              "B": "B. Mini-batch SGD on the digits, lr 0.05, one epoch",
              "C": "C. Large batch: one training step",
              "K": "K. scikit-learn estimators (fastbp.sklearn vs sklearn.neural_network), fit"}
    for g, title in groups.items():
        rows = [r for r in rep.rows if r["group"] == g]
        if not rows:
            continue
        threads = sorted({r["threads"] for r in rows if r["threads"]})
        add("")
        add(f"{title}   [threads: {'; '.join(threads)}]")
        add(f"  {'implementation':<44}{'median':>11}{'× fastbp':>10}  {'agreement':>9}  note")
        last = None
        for r in rows:
            if r["workload"] != last:
                add(f" {r['workload']}")
                last = r["workload"]
            ratio = r.get("ratio_to_fastbp")
            ratio_s = "—" if ratio is None else (f"{ratio:.3g}" if ratio < 100
                                                 else f"{ratio:,.0f}")
            note = r["note"]
            if r["agreement_with"] and r["impl"] != FASTBP:
                note = (note + "; " if note else "") + f"agreement vs {r['agreement_with']}"
            add(f"  {r['impl']:<44}{_fmt_time(r['time_s']):>11}{ratio_s:>10}  "
                f"{_fmt_diff(r['agreement']):>9}  {note}")
    for g, title in (("C", "C. Other figures"), ("T", "T. Thread pools (default thread counts)"),
                     ("M", "M. Memory"), ("S", "S. Start-up (subprocesses)")):
        figs = [f for f in rep.figures if f["group"] == g]
        if not figs:
            continue
        add("")
        add(title)
        for f in figs:
            add(f"  {f['name']:<74}{_fmt_num(f['value'], f['unit']):>12}  {f['note']}")
    if rep.targets:
        add("")
        add("Targets")
        for t in rep.targets:
            if t["unit"] == "diff":
                goal, val = f"{t['op']} {t['target']:.0e}", _fmt_diff(t["value"])
            else:
                goal = f"{t['op']} {_fmt_num(t['target'], t['unit'])}"
                val = _fmt_num(t["value"], t["unit"])
            if t["met"] is None:
                status = "not measured"
            elif t["met"]:
                status = "met" + (f" ({t['margin']:.3g}× margin)"
                                  if t["margin"] not in (None, math.inf) else "")
            else:
                if t["op"] == ">=":
                    status = f"NOT MET (needs {1 / t['margin']:.3g}× more)"
                elif t["target"] > 0:
                    status = f"NOT MET ({t['value'] / t['target']:.3g}× over)"
                else:
                    status = f"NOT MET ({_fmt_num(t['value'], t['unit'])} over)"
            add(f"  {t['name']:<66}{val:>11}  {goal:<10} {status}")
    for n in rep.notes:
        add(f"  note: {n}")
    return "\n".join(lines)


def _environment():
    import numba
    import scipy

    import fastbp

    versions = {"fastbp": fastbp.__version__, "numpy": np.__version__,
                "numba": numba.__version__, "scipy": scipy.__version__}
    torch = _torch()
    if torch is not None:
        versions["torch"] = torch.__version__
    try:
        import sklearn
        versions["scikit-learn"] = sklearn.__version__
    except Exception:
        pass
    return dict(versions=versions, cpus=os.cpu_count(), python=platform.python_version(),
                platform=platform.platform(terse=True), pools=_pools())


def _plot_rows(rep):
    short_impl = {TORCH: "torch eager", SKLEARN: "sklearn MLPClassifier"}
    out = []
    for r in rep.rows:
        if r["time_s"] and r["group"] in ("A", "B", "C"):
            impl = next((v for k, v in short_impl.items() if r["impl"].startswith(k)), r["impl"])
            out.append({"workload": r["short"], "impl": impl, "time_s": r["time_s"]})
    return out


def _plot(rows, path):
    from .plot import plot_benchmark

    n_w = len({r["workload"] for r in rows})
    height = max(4.0, 1.4 + 0.3 * len(rows) + 0.35 * n_w)
    return plot_benchmark(rows, path, title="fastbp bench: median time per epoch or step "
                                            "(log scale; × = time / fastbp's)",
                          figsize=(13.0, height), baseline=FASTBP)


def workload_K(S, rep):
    """K: fastbp.sklearn against scikit-learn (the code lives in fastbp/_sklearn_bench.py)."""
    from ._sklearn_bench import workload_K as run
    run(S, rep)


# --------------------------------------------------------------------------- main
def parse_workloads(text):
    if not text:
        return list(WORKLOADS)
    out = []
    for part in text.split(","):
        p = part.strip()
        if not p:
            continue
        key = ALIASES.get(p.lower(), p.upper())
        if key not in WORKLOADS:
            raise ValueError(f"unknown workload {p!r}; choose from {', '.join(WORKLOADS)} "
                             f"(or {', '.join(ALIASES)})")
        if key not in out:
            out.append(key)
    return out


def build_parser():
    p = argparse.ArgumentParser(
        prog="fastbp bench",
        description="Time fastbp against its NumPy reference, PyTorch eager and scikit-learn; "
                    "print a table, write JSON and a bar chart.")
    p.add_argument("--quick", action="store_true",
                   help="few repeats and smaller samples (a smoke run, well under a minute "
                        "for one workload)")
    p.add_argument("--json", default=DEFAULT_JSON, metavar="PATH",
                   help=f"where to write the results (default {DEFAULT_JSON})")
    p.add_argument("--plot", default=DEFAULT_PLOT, metavar="PATH",
                   help=f"where to draw the bar chart of times (default {DEFAULT_PLOT})")
    p.add_argument("--workloads", default=None, metavar="A,B,...",
                   help="which workloads to run: " + ", ".join(WORKLOADS)
                        + " (A per-sample, B mini-batch, C large batch, T thread pools, "
                          "M memory, S start-up, K scikit-learn estimators); default all")
    return p


def run(workloads, quick=False, command="fastbp bench"):
    """Run ``workloads``; returns (Report, metadata dict)."""
    S = Settings(quick)
    _load_pools()
    rep = Report()
    funcs = {"A": workload_A, "B": workload_B, "C": workload_C, "T": workload_T,
             "M": workload_M, "S": workload_S,
             "K": workload_K}
    t0 = time.perf_counter()
    seconds = {}
    for w in workloads:
        t = time.perf_counter()
        funcs[w](S, rep)
        seconds[w] = time.perf_counter() - t
    rep.ratios()
    meta = dict(command=command, quick=quick, workloads=list(workloads),
                environment=_environment(), seconds=seconds,
                total_seconds=time.perf_counter() - t0,
                threads={"A": ONE_THREAD, "B": ONE_THREAD, "C": DEFAULT_THREADS,
                         "T": "default thread counts (and a 1-thread diagnostic)",
                         "M": "default", "S": "default",
                         "K": "1 BLAS thread, then default thread counts"})
    return rep, meta


def main(argv=None):
    """Entry point of ``fastbp bench`` and ``scripts/bench``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        workloads = parse_workloads(args.workloads)
    except ValueError as exc:
        parser.error(str(exc))
    command = " ".join(["fastbp bench"] + list(sys.argv[1:] if argv is None else argv))
    rep, meta = run(workloads, quick=args.quick, command=command)
    text = format_report(rep, meta)
    print(text, flush=True)
    result = dict(meta, rows=rep.rows, figures=rep.figures, targets=rep.targets,
                  notes=rep.notes, json=args.json, plot=args.plot)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1, default=_json_default)
        print(f"\nwrote {args.json}")
    rows = _plot_rows(rep)
    if args.plot and rows:
        _plot(rows, args.plot)
        print(f"wrote {args.plot}")
    return 0


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.bool_):
        return bool(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


if __name__ == "__main__":
    sys.exit(main())
