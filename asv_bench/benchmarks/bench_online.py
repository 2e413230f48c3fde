"""Per-sample (online) SGD: one update per sample, whole epochs per call."""
from .common import ONLINE_EPOCHS_PER_CALL, ONLINE_NETS, check_matches_reference, median_time, mlp


class _Online:
    """Data, model and training call of one per-sample network, checked against the reference."""

    def prepare(self, net, backend="numba"):
        spec, data, self.lr = ONLINE_NETS[net]
        self.X, self.y = data()
        self.model = check_matches_reference(lambda be: mlp(spec, be), self.epochs,
                                             what=f"online {net}")
        if backend != "numba":
            self.model = mlp(spec, backend)

    def epochs(self, model, epochs=1):
        model.fit(self.X, self.y, epochs=epochs, lr=self.lr, batch_size=1, shuffle=False)


class OnlineEpochs(_Online):
    """ONLINE_EPOCHS_PER_CALL (50) epochs over 500 samples in one fit call, batch_size=1.

    The kernel's throughput: fit's per-call cost (checks, threads, snapshot) is
    about 1% of this call, so a kernel 1.5x slower makes this 1.5x slower.
    (With one epoch per call, ``OnlineEpoch``, most of the time is spent outside
    the kernel.) Numba only: the reference takes 0.1-0.3 s per epoch.
    """

    params = list(ONLINE_NETS)
    param_names = ["net"]
    timeout = 300
    gate = "quick"         # scripts/perf-compare times it, --quick included

    def setup(self, net):
        self.prepare(net)

    def time_epochs(self, net):
        self.epochs(self.model, ONLINE_EPOCHS_PER_CALL)


class OnlineEpoch(_Online):
    """One epoch over 500 samples per fit call, each backend: fit's per-call cost included."""

    params = (list(ONLINE_NETS), ["numba", "numpy"])
    param_names = ["net", "backend"]
    timeout = 300

    def setup(self, net, backend):
        self.prepare(net, backend)
        self.epochs(self.model)

    def time_epoch(self, net, backend):
        self.epochs(self.model)


class OnlineRatio:
    """fastbp's time per online epoch / the reference's (lower is better)."""

    params = list(ONLINE_NETS)
    param_names = ["net"]
    unit = "fastbp time / reference time"
    timeout = 300

    def setup(self, net):
        spec, data, self.lr = ONLINE_NETS[net]
        self.X, self.y = data()
        self.fast = check_matches_reference(lambda be: mlp(spec, be), self.epoch,
                                            what=f"online {net}")
        self.ref = mlp(spec, "numpy")

    def epoch(self, model, epochs=1):
        model.fit(self.X, self.y, epochs=epochs, lr=self.lr, batch_size=1, shuffle=False)

    def track_time_ratio_vs_reference(self, net):
        n = ONLINE_EPOCHS_PER_CALL
        fast = median_time(lambda: self.epoch(self.fast, n), repeat=5) / n
        ref = median_time(lambda: self.epoch(self.ref), repeat=3)
        return fast / ref
