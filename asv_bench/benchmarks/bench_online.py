"""Per-sample (online) SGD: one update per sample, a whole epoch per call."""
from .common import ONLINE_NETS, check_matches_reference, median_time, mlp


class OnlineEpoch:
    """One epoch over 500 samples with batch_size=1, each backend."""

    params = (list(ONLINE_NETS), ["numba", "numpy"])
    param_names = ["net", "backend"]
    timeout = 300

    def setup(self, net, backend):
        spec, data, self.lr = ONLINE_NETS[net]
        self.X, self.y = data()
        fast = check_matches_reference(lambda be: mlp(spec, be), self.epoch,
                                       what=f"online {net}")
        self.model = fast if backend == "numba" else mlp(spec, backend)
        self.epoch(self.model)

    def epoch(self, model, epochs=1):
        model.fit(self.X, self.y, epochs=epochs, lr=self.lr, batch_size=1, shuffle=False)

    def time_epoch(self, net, backend):
        self.epoch(self.model)


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
        fast = median_time(lambda: self.epoch(self.fast, 50), repeat=5) / 50
        ref = median_time(lambda: self.epoch(self.ref), repeat=3)
        return fast / ref
