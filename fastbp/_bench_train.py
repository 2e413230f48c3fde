"""fastbp bench's training workloads: A (per-sample SGD) and B (mini-batch on the digits).

Both run every implementation with one thread per pool, taking turns round by
round, and check fastbp against the reference (and against each competitor)
after the same training from the same weights.
"""
import numpy as np

from . import _bench_workloads as W
from ._bench_core import (BOUND, FASTBP, FASTBP_ONE_CALL, ONE_THREAD, REFERENCE, SKLEARN,
                          TORCH, interleave, max_diff, one_thread, perf_times, sklearn_mlp,
                          torch_module, weights_diff)
from ._bench_rivals import (TorchTrainer, fastbp_masks, sklearn_classifier, sklearn_epoch,
                            sklearn_weights)

# key, label, network of W.ONLINE_NETS, targets (x reference, x torch)
A_NETS = [("A1", "[2,4,4,1] sigmoid, MSE", "sigmoid-2-4-4-1-mse", (250.0, 1000.0)),
          ("A2", "[2,8,8,1] tanh, MSE", "tanh-2-8-8-1-mse", (150.0, None)),
          ("A3", "[4,16,16,3] ReLU, softmax-CE", "relu-4-16-16-3-ce", (150.0, None))]
# the mini-batch targets: (competitor, fastbp must be this many times faster)
B_TARGETS = {"B1": ((REFERENCE, 1.6), (TORCH, 3.5), (SKLEARN, 4.0)),
             "B2": ((REFERENCE, 1.15), (TORCH, 2.0)),
             "B3": ((TORCH, 3.0),)}
B_CASES = [("B1", 32, "plain"), ("B2", 256, "plain"), ("B3", 32, "bn-dropout")]
B_OVER_BOUND = 1.10      # a plain mini-batch epoch may take this many times its products


class Case:
    """One workload's competitors: {impl: fn}, a time scale, a note and an agreement each."""

    def __init__(self):
        self.fns, self.scale, self.notes, self.agree = {}, {}, {}, {}

    def add(self, impl, fn, scale=1.0, note="", agreement=None):
        self.fns[impl], self.scale[impl], self.notes[impl] = fn, scale, note
        if agreement is not None:
            self.agree[impl] = agreement

    def record(self, rep, group, name, unit, times):
        for impl, ts in times.items():
            a, with_ = self.agree.get(impl, (None, None))
            rep.time(group, name, impl, [t * self.scale[impl] for t in ts], unit, ONE_THREAD,
                     agreement=a, agreement_with=with_, note=self.notes[impl])

    def median(self, times, impl):
        return float(np.median(times[impl])) * self.scale[impl] if impl in times else None


# --------------------------------------------------------------------------- A: per-sample
def _a_rivals(S, case, spec, w0, X, y, lr, fit):
    """PyTorch eager (a per-sample loop on a prefix) and scikit-learn (CE nets only)."""
    n = X.shape[0]
    if torch_module() is not None:
        nt = min(S.torch_samples, n)
        tr = TorchTrainer(spec, w0, X, y, 1, lr)
        check = TorchTrainer(spec, w0, X, y, 1, lr)    # agreement on the same prefix
        check.epoch(nt)
        m = W.mlp(spec, "numba")
        fit(m, X[:nt], y[:nt])
        case.add(TORCH + " (batch 1)", lambda: tr.epoch(nt), n / nt,
                 f"per-sample loop over {nt} samples, scaled to {n}",
                 (weights_diff(m.get_weights(), check.weights()), FASTBP + f", {nt} samples"))
    if spec["loss"] == "cross_entropy" and sklearn_mlp() is not None:
        clf = sklearn_classifier(tuple(spec["sizes"][1:-1]), spec["activation"], 1, lr, X, y,
                                 w0, spec["sizes"][-1])
        sklearn_epoch(clf, X, y)
        m = W.mlp(spec, "numba")
        fit(m)
        case.add(SKLEARN + " (batch_size=1)", lambda: sklearn_epoch(clf, X, y), 1.0,
                 "partial_fit per epoch",
                 (weights_diff(m.get_weights(), sklearn_weights(clf)), FASTBP))


def _a_case(S, spec, X, y, lr):
    """The timed functions of one per-sample network; returns (Case, agreement)."""
    def fit(m, Xs=X, ys=y, epochs=1):
        m.fit(Xs, ys, epochs=epochs, lr=lr, batch_size=1, shuffle=False)

    fast, ref = W.mlp(spec, "numba"), W.mlp(spec, "numpy")
    w0 = fast.get_weights()
    fit(fast)
    fit(ref)
    agree_ref = max_diff(fast.params, ref.params)
    # fastbp runs many epochs per fit call (time divided), sized from a probe
    probe = perf_times(lambda: fit(fast, epochs=20), 1)[0] / 20
    per_call = max(20, int(S.call_seconds / max(probe, 1e-7)))
    case = Case()
    case.add(FASTBP, lambda: fit(fast, epochs=per_call), 1.0 / per_call,
             f"{per_call} epochs per fit call, time divided")
    case.add(FASTBP_ONE_CALL, lambda: [fit(fast) for _ in range(10)], 0.1,
             "one fit(epochs=1) call per epoch: includes fit's per-call cost")
    case.add(REFERENCE, lambda: fit(ref), 1.0, "", (agree_ref, FASTBP))
    _a_rivals(S, case, spec, w0, X, y, lr, fit)
    return case, agree_ref


def workload_A(S, rep):
    for key, label, net, (t_ref, t_torch) in A_NETS:
        spec, data, lr = W.ONLINE_NETS[net]
        X, y = data()
        name = f"{key} per-sample {label} (s/epoch, {X.shape[0]} samples)"
        with one_thread():
            case, agree_ref = _a_case(S, spec, X, y, lr)
            times = interleave(case.fns, S.repeat, S.warmup)
        case.record(rep, "A", name, "s/epoch", times)
        if torch_module() is None:
            rep.skip("A", name, TORCH, "PyTorch is not importable")
        if spec["loss"] != "cross_entropy":
            rep.skip("A", name, SKLEARN, "no sigmoid output with MSE in scikit-learn")
        fast_t = case.median(times, FASTBP)
        rep.target("A", f"{key} agreement fastbp vs reference", agree_ref, "<=", W.TOL64, "diff")
        rep.target("A", f"{key} speed-up vs reference", case.median(times, REFERENCE) / fast_t,
                   ">=", t_ref, "x")
        if t_torch:
            t = case.median(times, TORCH + " (batch 1)")
            rep.target("A", f"{key} speed-up vs torch eager", None if t is None else t / fast_t,
                       ">=", t_torch, "x")


# --------------------------------------------------------------------------- B: mini-batch
def _b_torch(case, w0, X, y, batch, extra, fit):
    """PyTorch eager; with dropout its agreement is checked on fastbp's own masks."""
    impl = TORCH + " (float64)"
    tr = TorchTrainer(W.DIGITS_NET, w0, X, y, batch, W.DIGITS_LR, **extra)
    m = W.mlp(W.DIGITS_NET, "numba", **extra)
    agreement, note = None, ""
    if extra.get("dropout"):
        masks = fastbp_masks(m)
        if masks is not None:
            provider, state = masks
            check = TorchTrainer(W.DIGITS_NET, w0, X, y, batch, W.DIGITS_LR, masks=provider,
                                 **extra)
            for s in range(0, X.shape[0], batch):      # one step at a time, counted
                state["step"] = check.step
                check.one_step(s)
            fit(m)
            agreement = (weights_diff(m.get_weights(), check.weights()),
                         FASTBP + " (torch given fastbp's dropout masks)")
        else:
            note = "agreement n/a: dropout masks differ"
    else:
        check = TorchTrainer(W.DIGITS_NET, w0, X, y, batch, W.DIGITS_LR, **extra)
        check.epoch()
        fit(m)
        agreement = (weights_diff(m.get_weights(), check.weights()), FASTBP)
    case.add(impl, tr.epoch, 1.0, note, agreement)


def _b_case(X, y, batch, extra):
    """The timed functions of one digits case; returns (Case, agreement with the reference)."""
    def fit(m):
        m.fit(X, y, epochs=1, lr=W.DIGITS_LR, batch_size=batch, shuffle=False)

    fast = W.mlp(W.DIGITS_NET, "numba", **extra)
    ref = W.mlp(W.DIGITS_NET, "numpy", **extra)
    w0 = fast.get_weights()
    fit(fast)
    fit(ref)
    agree_ref = max_diff(fast.params, ref.params)
    case = Case()
    case.add(FASTBP, lambda: fit(fast))
    case.add(REFERENCE, lambda: fit(ref), agreement=(agree_ref, FASTBP))
    case.add(BOUND, W.EpochGemms(W.DIGITS_NET["sizes"], X.shape[0], batch, X.dtype), 1.0,
             "the epoch's matrix products into preallocated arrays: the bound")
    if torch_module() is not None:
        _b_torch(case, w0, X, y, batch, extra, fit)
    if not extra and sklearn_mlp() is not None:
        clf = sklearn_classifier((128, 64), "relu", batch, W.DIGITS_LR, X, y, w0, 10)
        sklearn_epoch(clf, X, y)
        m = W.mlp(W.DIGITS_NET, "numba")
        fit(m)
        case.add(SKLEARN + f" (sgd, batch_size={batch})", lambda: sklearn_epoch(clf, X, y), 1.0,
                 "partial_fit per epoch", (weights_diff(m.get_weights(), sklearn_weights(clf)),
                                           FASTBP))
    return case, agree_ref


def workload_B(S, rep):
    X, y = W.digits()
    for key, batch, arch in B_CASES:
        extra = W.DIGITS_ARCHS[arch]
        label = "64-128-64-10 ReLU" + (" +BatchNorm +Dropout(0.2)" if extra else "")
        name = f"{key} digits {label}, batch {batch} (s/epoch, {X.shape[0]} samples)"
        with one_thread():
            case, agree_ref = _b_case(X, y, batch, extra)
            times = interleave(case.fns, S.repeat, S.warmup)
        case.record(rep, "B", name, "s/epoch", times)
        if torch_module() is None:
            rep.skip("B", name, TORCH, "PyTorch is not importable")
        if extra:
            rep.skip("B", name, SKLEARN, "no BatchNorm or Dropout in MLPClassifier")
        elif sklearn_mlp() is None:
            rep.skip("B", name, SKLEARN, "scikit-learn is not importable")
        rep.target("B", f"{key} agreement fastbp vs reference", agree_ref, "<=", W.TOL64, "diff")
        t_fast = case.median(times, FASTBP)
        if not extra:
            rep.target("B", f"{key} fastbp epoch / its matrix products (x bound)",
                       t_fast / case.median(times, BOUND), "<=", B_OVER_BOUND, "x")
        for prefix, goal in B_TARGETS.get(key, ()):
            impl = next((i for i in times if i.startswith(prefix)), None)
            value = case.median(times, impl) / t_fast if impl else None
            rep.target("B", f"{key} speed-up vs {prefix}", value, ">=", goal, "x")
