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
    integer targets; probs: the loss's probabilities; swb: the batch's
    sample weights.
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
        "swb": ((batch,), dt),
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
    """Everything a call on ``batch`` rows passes besides the model's arrays and the data:
    ``plan`` laid out for ``batch``, ``net`` (:class:`fastbp.plan.Net`) and ``bufs``
    (:class:`fastbp.plan.Buffers`, the arrays of :func:`buffer_specs`)."""

    def __init__(self, net, batch, dtype):
        self.batch = batch
        self.plan, specs = buffer_specs(net, batch, dtype)
        self.macs = _threads.step_macs(self.plan, batch)    # sizes the BLAS pools
        self.net = P.Net(self.plan, net.pf, net.loss_code, net.lf, net.threshold,
                         net.out_sigmoid)
        self.bufs = P.Buffers(**{name: np.zeros(shape, dtype=dt)
                                 for name, (shape, dt) in specs.items()})

    def __getitem__(self, name):
        """``"plan"`` or a buffer of :func:`buffer_specs` by name."""
        return self.plan if name == "plan" else getattr(self.bufs, name)


class Engine:
    """One model's backend calls: the ops module, its compiled network, its workspaces."""

    def __init__(self, ops, net, dtype, backend_name):
        self.ops, self.net, self.dtype, self.backend_name = ops, net, np.dtype(dtype), backend_name
        self._spaces = {}
        self._no_weights = np.zeros(0, dtype=self.dtype)
        self._rows = None           # see _rows_kernels
        self._batch = None          # see _batch_module

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

    def _rows_kernels(self):
        """(predict, evaluate, loss_and_grads or None) that run a row at a time,
        generated for a small per-sample-capable network (``ops.select_eval``), or ()."""
        if self._rows is None:
            rows = self.ops.select_eval(self.workspace(1).plan, self.net.loss_code,
                                        self.dtype.name)
            self._rows = tuple(rows) if rows else ()
        return self._rows

    def _batch_module(self, opt_code=P.SGD, fold=True, weighted=False, l2=False):
        """The functions generated for this network's mini-batches (``ops.select_batch``),
        or None. Eval-mode calls use the module the last training run used, whose
        ``forward`` is compiled already; before any, the plain-SGD one."""
        case = (opt_code, fold, weighted, l2)
        if self._batch is None or case != self._batch[0]:
            self._batch = (case, self.ops.select_batch(self.workspace(1).plan, self.net.loss_code,
                                                       opt_code, self.dtype.name, *case[1:]))
        return self._batch[1]

    def _eval_module(self):
        return self._batch[1] if self._batch else self._batch_module()

    def _eval(self, batch):
        """(predict, evaluate, workspace) for eval-mode passes of ``batch`` rows: the
        generated row-at-a-time pair on one row's buffers, else those generated for
        the network's batches, else the generic batch functions."""
        rows = self._rows_kernels()
        if rows:
            return rows[0], rows[1], self.workspace(1)
        fns = self._eval_module() or self.ops
        return fns.predict, fns.evaluate, self.workspace(batch)

    def predict(self, params, state, X, batch):
        """The network's eval-mode output (n, n_outputs), ``batch`` rows per pass."""
        predict, _, w = self._eval(batch)
        out = np.empty((X.shape[0], self.net.n_outputs), dtype=self.dtype)
        with self._limit(w):
            predict(w.net, params, state, X, w.bufs.ws, w.batch, out)
        return out

    def evaluate(self, params, state, X, Yf, Yi, batch):
        """(loss, number right) over (X, targets) in eval mode."""
        _, evaluate, w = self._eval(batch)
        with self._limit(w):
            loss, correct = evaluate(w.net, params, state, self._data(X, Yf, Yi), w.bufs,
                                     w.batch)
        return float(loss), int(correct)

    def forward(self, params, state, X, training, dropout_step):
        """The output of the last plan row (a copy; ``state`` may be written)."""
        n, w = X.shape[0], self.workspace(X.shape[0])
        self.ops.forward(w.plan, self.net.pf, params, state, X, w.bufs.ws, training, dropout_step)
        return self.ops.layer_output(w.plan, w.bufs.ws, n)

    def output(self, params, state, X, training, dropout_step):
        """The network's output in either mode (the final sigmoid applied), changing nothing."""
        module = self._eval_module()
        if module is not None:
            w = self.workspace(X.shape[0])
            out = np.empty((X.shape[0], self.net.n_outputs), dtype=self.dtype)
            module.output(w.net, params, state.copy(), X, w.bufs.ws, out, training, dropout_step)
            return out
        out = self.forward(params, state.copy(), X, training, dropout_step).copy()
        if self.net.out_sigmoid:
            self.ops.act_forward(out.copy(), SIGMOID, out)
        return out

    def loss_and_grads(self, params, state, X, Yf, Yi, training, dropout_step):
        """(loss, flat gradient) of the whole batch X; changes nothing in the model."""
        net, n, k = self.net, X.shape[0], self.net.n_outputs
        rows = self._rows_kernels()
        if rows and rows[2] is not None:        # no Dropout: training and eval passes agree
            grads = np.zeros_like(params)
            w = self.workspace(1)
            loss = rows[2](w.net, params, self._data(X, Yf, Yi), w.bufs, grads)
            return float(loss), grads
        w = self.workspace(n)
        module = self._eval_module()
        if module is not None:
            grads = np.zeros_like(params)
            loss = module.loss_and_grads(w.net, params, state.copy(), self._data(X, Yf, Yi),
                                         w.bufs, grads, training, dropout_step)
            return float(loss), grads
        b = w.bufs
        out = self.forward(params, state.copy(), X, training, dropout_step)
        loss = self.ops.loss_and_grad(net.loss_code, net.lf, out, Yf, Yi,
                                      b.probs[:n * k].reshape(n, k), b.ga[:n * k].reshape(n, k))
        grads = np.zeros_like(params)
        self.ops.backward(w.plan, net.pf, params, X, b.ws, b.ga, b.gb, grads, False, 0.0)
        return float(loss), grads

    def trainer(self, batch, loss_code, opt, weighted=False):
        """The kernel that trains ``batch``-row steps with ``opt`` (a :class:`fastbp.plan.Optim`,
        its L2 term included), with sample weights or not: the per-sample one generated
        for the network (batch 1 without weights, L2 or Adam eps_hat, which it has
        not), else the mini-batch one generated for it, else the generic one."""
        fold = bool(opt.code == P.SGD and opt.of[P.O_MOMENTUM] == 0.0 and opt.of[P.O_WD] == 0.0)
        if batch == 1 and not weighted and opt.l2 == 0.0 and opt.of[P.O_EPS_HAT] == 0.0:
            train = self.ops.select_online(self.workspace(1).plan, loss_code, opt.code,
                                           self.dtype.name, fold)
            if getattr(train, "rows", None):    # its row-at-a-time eval passes, compiled with it
                self._rows = train.rows
            return train
        module = self._batch_module(opt.code, fold, weighted, opt.l2 != 0.0)
        return self.ops.train_epochs if module is None else module.train_epochs

    def _data(self, X, Yf, Yi, sw=None):
        return P.Data(X, Yf, Yi, self._no_weights if sw is None else sw)

    def run_epochs(self, opt, t, X, Yf, Yi, order, lrs, stop_correct, batch, stop_flag,
                   sw=None, l2=0.0, call=None):
        """Train ``len(lrs)`` epochs in one kernel call; (epochs run, status, losses, corrects).

        opt: the optimizer (its code and settings); t: :class:`fastbp.plan.Tensors`;
        order: (epochs, n) or (1, n) sample order; stop_correct: stop once
        this many training points are right (0: never); stop_flag: (1,)
        int64 the kernel checks after every step. sw: (n,) sample weights or
        None; l2: the Dense-weight L2 term (see ``Sequential.fit``).
        ``call(fn, *args)`` runs the kernel (default: directly). Status: see
        ``plan.STATUS_*``.
        """
        w = self.workspace(batch)
        run = P.Run(order.astype(np.int64, copy=False), lrs, int(stop_correct), stop_flag,
                    np.zeros(len(lrs), dtype=np.float64), np.zeros(len(lrs), dtype=np.int64))
        step = P.Optim(opt.code, np.array(opt.settings(), dtype=np.float64), float(l2))
        data = self._data(X, Yf, Yi, sw)
        train = self.trainer(batch, self.net.loss_code, step, data.sw.shape[0] > 0)
        call = call or (lambda fn, *args: fn(*args))
        with self._limit(w):
            ran, status = call(train, w.net, t, step, data, w.bufs, run)
        return int(ran), int(status), run.losses, run.corrects
