"""fastbp bench's competitors: the same networks in PyTorch eager and scikit-learn.

Each starts from fastbp's weights (``get_weights`` order) and trains on the same
samples in the same order, so its result can be compared with fastbp's.
"""
import warnings

import numpy as np

from ._bench_core import sklearn_mlp, torch_module


# --------------------------------------------------------------------------- PyTorch
def _torch_net(spec, weights, dtype, batchnorm=False, dropout=0.0, masks=None):
    """The same network in PyTorch, from fastbp's weights (get_weights order).

    masks: None (``nn.Dropout``) or a callable (layer index, shape) -> mask array;
    then each dropout multiplies by the mask fastbp itself draws.
    """
    torch = torch_module()
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
        torch = torch_module()
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
        for start in range(0, n, self.batch):
            self.one_step(start)

    def one_step(self, start):
        """One SGD step on the batch starting at row ``start``."""
        B = self.batch
        self.opt.zero_grad()
        loss = self.loss(self.net(self.X[start:start + B]), self.y[start:start + B])
        loss.backward()
        self.opt.step()
        self.step += 1

    def weights(self):
        return _torch_weights(self.net)


def fastbp_masks(model):
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
def sklearn_classifier(hidden, activation, batch, lr, X, y, weights, n_classes):
    """An MLPClassifier set to plain SGD, initialised, then given ``weights``."""
    MLPClassifier = sklearn_mlp()
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


def sklearn_epoch(clf, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.partial_fit(X, y)


def sklearn_weights(clf):
    out = []
    for W, b in zip(clf.coefs_, clf.intercepts_):
        out += [W, b]
    return out
