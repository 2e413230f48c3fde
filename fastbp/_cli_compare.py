"""``fastbp compare``: train the same network on the Numba kernels and on the NumPy
reference, and compare the weights, epochs and times (see :mod:`fastbp.cli`)."""
import sys
import time

import numpy as np

from . import _cli_common as C


def add_parser(subparsers):
    """Register ``fastbp compare`` on the command line's ``subparsers``."""
    p = subparsers.add_parser(
        "compare", help="train the same network on both backends and compare",
        description="Train the same network from the same seed on the Numba kernels and on "
                    "the NumPy reference; print the largest weight difference, the epochs "
                    "each ran, the time of each and the speedup. Exits 1 when the weights "
                    "differ by more than --tol or the backends stop at different epochs.",
        epilog="Example: fastbp compare --data xor --epochs 500")
    C.data_options(p)
    C.model_options(p, C.SIZES_HELP, backend=False)
    g = C.training_options(p, "number of epochs (default: small so that the NumPy reference "
                               "finishes quickly: 200 for xor, 5 for linear, 2 for digits, "
                               "1 for cifar10)",
                            "samples per update (default: 1 for xor/linear, 32 for "
                            "digits/cifar10)")
    C.stop_at_accuracy_option(g)
    p.add_argument("--tol", type=C.positive_float,
                   help="largest acceptable weight difference (default: 1e-10 for float64, "
                        "1e-4 for float32)")
    p.set_defaults(func=run)
    return p


def run(args):
    """Run ``fastbp compare``; return the exit status."""
    data = C.load_data(args)
    pre = C.PRESETS["toy" if data.toy else "images"]
    if args.epochs is None:
        args.epochs = pre["compare_epochs"][data.name]
    s = C.resolve(args, data, C.PRESETS)
    batch = C.pick(s["batch_size"], pre["batch_size"])
    C.check_batch(s, data.X.shape[0], batch)
    y = C.targets(data.labels, s["sizes"], s["loss"], data.X.dtype)
    tol = args.tol if args.tol is not None else (1e-10 if args.dtype == "float64" else 1e-4)
    desc_model, desc_train = C.describe(s, batch)
    print(f"data:     {data.name} ({data.note})")
    print(f"model:    {desc_model}; {args.dtype}, seed {args.seed}")
    print(f"training: {desc_train}", flush=True)
    runs = {}
    for backend in ("numba", "numpy"):
        C.warm_up(s, args, data, backend, batch)
        model = C.build_model(s, args, backend)
        t0 = time.perf_counter()
        hist = model.fit(data.X, y, **C.fit_kwargs(s, batch))
        seconds = time.perf_counter() - t0
        if hist.interrupted:
            print(f"fastbp: interrupted during the {backend} run", file=sys.stderr)
            return C.EXIT_INTERRUPTED
        runs[backend] = (model, hist, seconds)
        print(f"{backend:>6}: {C.epochs_text(hist.epochs_run)}"
              + (" (stopped at the accuracy target)" if hist.stop_reason == "accuracy" else "")
              + f", {C.fmt_time(seconds)}, final loss {hist.loss[-1]:.10g}", flush=True)
    (mn, hn, tn), (mp, hp, tp) = runs["numba"], runs["numpy"]
    diff = max(float(np.max(np.abs(a - b), initial=0.0))
               for a, b in zip(mn.get_weights(), mp.get_weights()))
    state_diff = float(np.max(np.abs(mn.state - mp.state), initial=0.0))
    same = hn.epochs_run == hp.epochs_run
    print(f"max |weight difference|: {diff:.3g} (tolerance {tol:g})")
    if mn.state.size:
        print(f"max |running-statistics difference|: {state_diff:.3g}")
    print(f"epochs run: numba {hn.epochs_run:,}, numpy {hp.epochs_run:,} "
          f"({'the same' if same else 'DIFFERENT'})")
    print(f"time: numba {C.fmt_time(tn)}, numpy {C.fmt_time(tp)}; "
          f"speedup numba/numpy: {tp / max(tn, 1e-12):.1f}x")
    if not same or not diff <= tol or not state_diff <= tol:
        print(f"fastbp: error: the backends disagree (max weight difference {diff:.3g}, "
              f"tolerance {tol:g}; epochs {hn.epochs_run} vs {hp.epochs_run})",
              file=sys.stderr)
        return C.EXIT_FAILED
    print("the backends agree")
    return C.EXIT_OK
