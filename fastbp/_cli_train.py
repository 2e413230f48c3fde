"""``fastbp train``: train a network on one data set, report, and save the model and
its plots (see :mod:`fastbp.cli`)."""
import time

from . import _cache, _signals
from . import _cli_common as C


def add_parser(subparsers):
    """Register ``fastbp train`` on the command line's ``subparsers``."""
    p = subparsers.add_parser(
        "train", help="train a network on one data set and report",
        description="Train a fully-connected network and print a summary (epochs run, final "
                    "loss and accuracy, time, test accuracy for digits/cifar10). Defaults "
                    "depend on --data: xor/linear train the [2, 4, 4, 1] sigmoid network "
                    "with per-sample SGD at lr 0.1 until every point is classified (up to "
                    "100,000 epochs); digits/cifar10 train Dense-BatchNorm-ReLU-Dropout x2 - "
                    "Dense with softmax cross-entropy, SGD momentum 0.9, lr 0.05 x 0.93 per "
                    "epoch, batch 32, 30 epochs.",
        epilog="Example: fastbp train --data xor --plot out/xor.png --save out/xor.npz")
    C.data_options(p)
    C.model_options(p, C.SIZES_HELP)
    g = C.training_options(p, "number of epochs (default: 100000 for xor/linear, 30 for "
                               "digits/cifar10)",
                            "samples per update; 1 is per-sample SGD (default: 1 for xor/"
                            "linear, 32 for digits/cifar10)")
    C.stop_at_accuracy_option(g)
    o = p.add_argument_group("output")
    o.add_argument("--save", metavar="PATH", help="save the trained model (.npz) to PATH")
    o.add_argument("--plot", metavar="PATH",
                   help="write the loss curve (PNG) to PATH; for xor/linear also the ground "
                        "truth vs prediction figure next to it, PATH with a _result suffix")
    o.add_argument("--verbose", action="store_true",
                   help="show a progress bar while training (on a terminal)")
    o.add_argument("--print-every", type=C.positive_int, metavar="N",
                   help="print the loss every N epochs")
    o.add_argument("--quiet", action="store_true",
                   help="no notice on stderr while kernels compile on first use")
    p.set_defaults(func=run)
    return p


def run(args):
    """Run ``fastbp train``; return the exit status."""
    if args.quiet:
        _cache.quiet = True
    save_path = C.output_path(args.save, "--save")
    plot_path = C.output_path(args.plot, "--plot")
    data = C.load_data(args)
    s = C.resolve(args, data, C.PRESETS)
    batch = C.pick(s["batch_size"], C.PRESETS["toy" if data.toy else "images"]["batch_size"])
    C.check_batch(s, data.X.shape[0], batch)
    model = C.build_model(s, args)
    y = C.targets(data.labels, s["sizes"], s["loss"], data.X.dtype)
    desc_model, desc_train = C.describe(s, batch)
    print(f"data:     {data.name} ({data.note}, {data.X.shape[1]} features, "
          f"{data.n_classes} classes)")
    print(f"model:    {desc_model}; {args.backend} backend, {args.dtype}, seed {args.seed}")
    print(f"training: {desc_train}", flush=True)
    with _signals.TrainSignals() as sig:
        t0 = time.perf_counter()
        try:
            sig.run(C.warm_up, s, args, data, args.backend, batch, True)
        except KeyboardInterrupt:
            _signals.note(sig, "while loading the kernels, before training; nothing saved")
            return sig.exit_code
        warm = time.perf_counter() - t0
        try:
            hist = model.fit(data.X, y, verbose=args.verbose, print_every=args.print_every,
                             **C.fit_kwargs(s, batch))
        except KeyboardInterrupt:       # a second Ctrl-C: fit stopped after its current step
            hist = None
        stopped = hist is None or hist.interrupted or sig.signum is not None
        try:
            _train_report(s, data, model, y, hist, warm)
        except KeyboardInterrupt:
            stopped = True
        if save_path is not None:
            with sig.saving():          # a signal now waits for the save to finish
                save_path.parent.mkdir(parents=True, exist_ok=True)
                model.save(save_path)
            print(f"saved model: {save_path}", flush=True)
        saved = f"; the model so far is saved in {save_path}" if save_path else ""
        if stopped or sig.signum is not None:
            _signals.note(sig, f"after {C.epochs_text(model.epochs_trained)}{saved}"
                          + (" (no plot written)" if plot_path else ""))
            return sig.exit_code
        try:
            figures = _train_plots(s, data, model, hist, plot_path)
        except KeyboardInterrupt:
            _signals.note(sig, f"while plotting{saved} (plot not written)")
            return sig.exit_code
    for f in figures:
        print(f"wrote plot:  {f}")
    return C.EXIT_OK


def _train_report(s, data, model, y, hist, warm):
    """The summary lines of ``fastbp train``."""
    if hist is None:
        print(f"epochs run:  {model.epochs_trained:,} (interrupted)")
        return
    if hist.stop_reason == "accuracy":
        stop = f" (stopped: training accuracy reached {s['stop_at_accuracy']})"
    elif hist.interrupted:
        stop = " (interrupted)"
    else:
        stop = ""
    print(f"epochs run:  {hist.epochs_run:,}{stop}")
    if hist.loss:
        print(f"final epoch: loss {hist.loss[-1]:.6g}, accuracy {hist.accuracy[-1]:.4f} "
              f"(over the epoch's training batches)")
    ev = model.evaluate(data.X, y)
    print(f"train set:   loss {ev['loss']:.6g}, accuracy {ev['accuracy']:.4f} (eval mode)")
    if data.X_test is not None:
        yt = C.targets(data.labels_test, s["sizes"], s["loss"], data.X.dtype)
        et = model.evaluate(data.X_test, yt)
        print(f"test set:    loss {et['loss']:.6g}, accuracy {et['accuracy']:.4f} "
              f"({data.X_test.shape[0]} samples)")
    print(f"time:        {C.fmt_time(hist.seconds)} training "
          f"({1e6 * hist.seconds / max(1, hist.epochs_run * data.X.shape[0]):.3g} us per "
          f"sample), after a {C.fmt_time(warm)} warm-up (loading the kernels)", flush=True)


def _train_plots(s, data, model, hist, plot_path):
    """Write the loss curve (and for 2-D data the result figure); their paths."""
    figures = []
    if plot_path is None:
        return figures
    from . import plot as fbplot
    figures.append(fbplot.plot_loss(
        hist, plot_path, title=f"{data.name}: {'-'.join(map(str, s['sizes']))}, "
                               f"{C.epochs_text(hist.epochs_run)}"))
    if data.X.shape[1] == 2:
        if model.n_outputs == 1:
            def prob(g):          # the output, thresholded at 0.5 by predict_classes
                return model.predict(g)[:, 0]
        else:
            def prob(g):          # above 0.5 exactly where output 1 beats output 0
                out = model.predict(g)
                return 0.5 + 0.5 * (out[:, 1] - out[:, 0])
        figures.append(fbplot.plot_result(
            data.X, data.labels, model.predict_classes(data.X), C.result_path(plot_path),
            predict_fn=prob, title=f"{data.name} data after {C.epochs_text(hist.epochs_run)}"))
    return figures
