"""Every call the model makes into a backend, and the buffers those calls use.

The model validates its inputs, then asks an :class:`Engine` (one per model
and backend) to run: ``predict``, ``evaluate``, ``forward``,
``loss_and_grads`` and ``run_epochs`` each make the backend call with its
full argument list, inside the BLAS thread limit that call's size asks for
(:mod:`fastbp._threads`). Nothing else in fastbp calls a backend's network
functions.

Buffers: :func:`buffer_specs` is the one description of every working array
a call on ``batch`` rows uses (:class:`Workspace` allocates exactly those;
:func:`workspace_bytes` is what the memory budget counts).
"""
import math

import numpy as np

from . import _threads
from . import plan as P
from ._config import SIGMOID

_KEEP_WORKSPACES = 5        # batch sizes whose buffers a model keeps


def buffer_specs(net, batch, dtype):
    """(the plan laid out for ``batch`` rows, {buffer name: (shape, dtype)}).

    ws: every row's outputs and saved values (see :func:`fastbp.plan.layout`);
    ga, gb: the gradient flowing backward (ga in two halves for the
    per-sample kernel); xb, yfb, yib: one batch of inputs and float or
    integer targets; probs: the loss's probabilities.
    """
    plan = net.plan.copy()
    size = P.layout(plan, batch)
    width = P.max_width(plan)
    k = net.n_outputs
    yf_cols = 0 if net.loss_code == P.SOFTMAX_CE else k
    dt, i64 = np.dtype(dtype), np.dtype(np.int64)
    return plan, {
        "ws": ((size,), dt),
        "ga": ((max(batch, 2) * width,), dt),
        "gb": ((batch * width,), dt),
        "xb": ((batch, net.n_inputs), dt),
        "yfb": ((batch if yf_cols else 0, yf_cols), dt),
        "yib": ((batch if not yf_cols else 0,), i64),
        "probs": ((batch * k,), dt),
    }


def workspace_bytes(net, batch, dtype):
    """Bytes of the buffers a :class:`Workspace` for ``batch`` rows allocates."""
    known = net.__dict__.setdefault("_workspace_bytes", {})     # the plan never changes
    key = (int(batch), np.dtype(dtype).str)
    if key not in known:
        _, specs = buffer_specs(net, batch, dtype)
        known[key] = sum(math.prod(shape) * dt.itemsize for shape, dt in specs.values())
    return known[key]


class Workspace:
    """The buffers of :func:`buffer_specs` for ``batch`` rows, as attributes
    (``plan``, ``ws``, ``ga``, ``gb``, ``xb``, ``yfb``, ``yib``, ``probs``)."""

    def __init__(self, net, batch, dtype):
        self.batch = batch
        self.plan, specs = buffer_specs(net, batch, dtype)
        self.macs = _threads.step_macs(self.plan, batch)    # sizes the BLAS pools
        for name, (shape, dt) in specs.items():
            setattr(self, name, np.zeros(shape, dtype=dt))

    def __getitem__(self, name):
        return getattr(self, name)


class Tensors:
    """The model's training state as the kernels take it (all arrays, updated in place)."""

    def __init__(self, params, grads, state, opt_a, opt_b, counters):
        self.params, self.grads, self.state = params, grads, state
        self.opt_a, self.opt_b, self.counters = opt_a, opt_b, counters


class Engine:
    """One model's backend calls: the ops module, its compiled network, its workspaces."""

    def __init__(self, ops, net, dtype, backend_name):
        self.ops, self.net, self.dtype, self.backend_name = ops, net, np.dtype(dtype), backend_name
        self._spaces = {}

    def workspace(self, batch):
        """Buffers for ``batch`` rows, allocated once per batch size and reused."""
        space = self._spaces.get(batch)
        if space is None:
            space = Workspace(self.net, batch, self.dtype)
            if len(self._spaces) >= _KEEP_WORKSPACES:
                self._spaces.pop(next(iter(self._spaces)))
            self._spaces[batch] = space
        return space

    def _limit(self, space):
        return _threads.limit(_threads.threads_for(space.macs, space.batch))

    def predict(self, params, state, X, batch):
        """The network's eval-mode output (n, n_outputs), ``batch`` rows per pass."""
        net, w = self.net, self.workspace(batch)
        out = np.empty((X.shape[0], net.n_outputs), dtype=self.dtype)
        with self._limit(w):
            self.ops.predict(w.plan, net.pf, params, state, X, net.out_sigmoid, w.ws, batch, out)
        return out

    def evaluate(self, params, state, X, Yf, Yi, batch):
        """(loss, number right) over (X, targets) in eval mode."""
        net, w = self.net, self.workspace(batch)
        with self._limit(w):
            loss, correct = self.ops.evaluate(w.plan, net.pf, net.loss_code, net.lf, params, state,
                                              X, Yf, Yi, net.threshold, batch, w.ws, w.ga, w.probs)
        return float(loss), int(correct)

    def forward(self, params, state, X, training, dropout_step):
        """The output of the last plan row (a copy; ``state`` may be written)."""
        n, w = X.shape[0], self.workspace(X.shape[0])
        self.ops.forward(w.plan, self.net.pf, params, state, X, w.ws, training, dropout_step)
        return self.ops.layer_output(w.plan, w.ws, n)

    def output(self, params, state, X, training, dropout_step):
        """The network's output in either mode (the final sigmoid applied), changing nothing."""
        out = self.forward(params, state.copy(), X, training, dropout_step).copy()
        if self.net.out_sigmoid:
            self.ops.act_forward(out.copy(), SIGMOID, out)
        return out

    def loss_and_grads(self, params, state, X, Yf, Yi, training, dropout_step):
        """(loss, flat gradient) of the whole batch X; changes nothing in the model."""
        net, n, k = self.net, X.shape[0], self.net.n_outputs
        w = self.workspace(n)
        out = self.forward(params, state.copy(), X, training, dropout_step)
        loss = self.ops.loss_and_grad(net.loss_code, net.lf, out, Yf, Yi,
                                      w.probs[:n * k].reshape(n, k), w.ga[:n * k].reshape(n, k))
        grads = np.zeros_like(params)
        self.ops.backward(w.plan, net.pf, params, X, w.ws, w.ga, w.gb, grads, False, 0.0)
        return float(loss), grads

    def trainer(self, batch, loss_code, opt_code, plain=True):
        """The kernel that trains ``batch``-row steps: per-sample or mini-batch.

        plain: no sample weights, no L2 term and no Adam eps_hat (the
        per-sample kernels have none of them; the mini-batch kernel has all)."""
        if batch == 1 and plain:
            return self.ops.select_online(self.workspace(1).plan, loss_code, opt_code,
                                          self.dtype.name)
        return self.ops.train_epochs

    def run_epochs(self, opt, t, X, Yf, Yi, order, lrs, stop_correct, batch, stop_flag,
                   sw=None, l2=0.0, call=None):
        """Train ``len(lrs)`` epochs in one kernel call; (epochs run, status, losses, corrects).

        opt: the optimizer (its code and settings); t: :class:`Tensors`;
        order: (epochs, n) or (1, n) sample order; stop_correct: stop once
        this many training points are right (0: never); stop_flag: (1,)
        int64 the kernel checks after every step. sw: (n,) sample weights or
        None; l2: the Dense-weight L2 term (see ``Sequential.fit``).
        ``call(fn, *args)`` runs
        the kernel (default: directly). Status: see ``plan.STATUS_*``.
        """
        net, w = self.net, self.workspace(batch)
        losses = np.zeros(len(lrs), dtype=np.float64)
        corrects = np.zeros(len(lrs), dtype=np.int64)
        of = np.array(opt.settings(), dtype=np.float64)
        sw = np.zeros(0, dtype=self.dtype) if sw is None else sw
        plain = sw.shape[0] == 0 and l2 == 0.0 and not getattr(opt, "eps_hat", False)
        train = self.trainer(batch, net.loss_code, opt.code, plain)
        extra = () if batch == 1 and plain else (
            sw, np.zeros(batch if sw.shape[0] else 0, dtype=self.dtype), float(l2))
        call = call or (lambda fn, *args: fn(*args))
        with self._limit(w):
            ran, status = call(
                train, w.plan, net.pf, net.loss_code, net.lf, opt.code, of, t.params, t.grads,
                t.state, t.opt_a, t.opt_b, t.counters, X, Yf, Yi, order.astype(np.int64, copy=False),
                lrs, net.threshold, stop_correct, w.ws, w.ga, w.gb, w.xb, w.yfb, w.yib, w.probs,
                stop_flag, losses, corrects, *extra)
        return int(ran), int(status), losses, corrects
