"""The plan: a network described as an integer table both backends can run.

:func:`compile_plan` turns a list of layers, a loss and a seed into a
:class:`Network`: one ``int64`` table (``plan``, one row per step of the
forward pass), one ``float64`` table (``pf``, the steps' real-valued
settings), the loss's settings (``lf``) and the layout of the flat parameter
and state buffers. Each layer adds its own rows (``Layer.add_to_plan``);
this module owns the table's format. Both backends' ``network`` modules walk
the same table, so a Numba kernel can run a whole epoch without touching a
Python object.

A Dense layer followed by an activation layer becomes ONE row (the bias add
and the activation run in the pass after the GEMM). With a
``BinaryCrossEntropy`` loss the final Sigmoid is not a row at all: the loss
takes the logits (stable BCE) and ``predict`` applies the sigmoid.

Workspace layout for a batch of ``B`` rows (one flat buffer ``ws``, see
:func:`layout`): every row's output ``(B, n_out)`` at ``OUT``; BatchNorm keeps
``xhat (B, n)`` then ``inv_std (n,)`` at ``AUX``; Dropout keeps its mask
``(B, n)`` at ``AUX``.
"""
from collections import namedtuple

import numpy as np

# Row kinds
DENSE, ACT, BATCHNORM, DROPOUT = 0, 1, 2, 3
# Columns of ``plan``
KIND, N_IN, N_OUT, ACTV, P_A, P_B, STATE, OUT, AUX, KEY = range(10)
N_COLS = 10
# Columns of ``pf``: BatchNorm momentum, eps; Dropout p
F_A, F_B = 0, 1
# Loss codes and the columns of its float settings ``lf``
MSE, SOFTMAX_CE, BCE = 0, 1, 2
L_HALF, L_SUM = 0, 1
# Optimizer codes and the columns of ``of``
SGD, ADAM = 0, 1
O_MOMENTUM, O_WD, O_NESTEROV, O_BETA1, O_BETA2, O_EPS, O_EPS_HAT = range(7)
N_OPT_SETTINGS = 7
# ``counters``: dropout step counter, optimizer step count
C_DROPOUT, C_OPT = 0, 1
# Status a training call returns: ran to the end, every training point right
# (``stop_correct`` reached), the loss became NaN/inf, the stop flag was set
STATUS_DONE, STATUS_ACCURACY, STATUS_DIVERGED, STATUS_INTERRUPTED = 0, 1, 2, 3

# The kernel interface: the records every training, evaluation and prediction entry
# point takes (both backends, the generic and the generated per-sample kernels).
# Numba reads them as typed tuples, so fields are read by name at no cost.
Net = namedtuple("Net", "plan pf loss_code lf threshold out_sigmoid")
Net.__doc__ = """The network as the kernels run it: ``plan`` laid out for one batch size
(:func:`layout`), ``pf``, the loss (``loss_code``, ``lf``), the accuracy
``threshold`` on the last row's output, and ``out_sigmoid`` (BCE's folded sigmoid)."""
Tensors = namedtuple("Tensors", "params grads state opt_a opt_b counters")
Tensors.__doc__ = """The model's arrays, updated in place: flat parameters and their
gradient, BatchNorm's running statistics, the optimizer's two state vectors and
``counters`` (``C_DROPOUT``, ``C_OPT``)."""
Optim = namedtuple("Optim", "code of l2")
Optim.__doc__ = """How each step updates: optimizer ``code`` (SGD, ADAM), its settings
``of`` (columns ``O_*``) and the Dense-weight L2 term ``l2`` (0: none)."""
Data = namedtuple("Data", "X Yf Yi sw")
Data.__doc__ = """Rows and targets: ``X (n, n_in)``; float targets ``Yf (n, k)`` or
integer labels ``Yi (n,)`` (the other has 0 rows); sample weights ``sw (n,)``
(0 rows: unweighted)."""
Buffers = namedtuple("Buffers", "ws ga gb xb yfb yib probs swb")
Buffers.__doc__ = """The working arrays for one batch size (sized by
:func:`fastbp._engine.buffer_specs`)."""
Run = namedtuple("Run", "order lrs stop_correct stop_flag losses corrects")
Run.__doc__ = """One training call: the sample ``order (E or 1, n)``, learning rate
per epoch ``lrs (E,)``, ``stop_correct`` (0: never), the ``stop_flag (1,)``
checked after every step, and the per-epoch ``losses`` and ``corrects`` out."""


class Network:
    """A compiled network: the plan tables and the layout of the flat buffers.

    Attributes
    ----------
    plan : (R, N_COLS) int64, with OUT/AUX unset (see :func:`layout`).
    pf : (R, 2) float64 per-row settings. lf : (2,) float64 loss settings.
    loss_code : int. layer_rows : the plan row of each layer (-1: folded
    into the loss). n_inputs, n_outputs, n_params, n_state : ints.
    out_sigmoid : bool, the final sigmoid is applied outside the plan (BCE).
    threshold : the accuracy threshold on the last row's output (0 on BCE's
    logits, 0.5 on a [0, 1] output).
    """

    def __init__(self, rows, pfs, layer_rows, n_inputs, n_outputs, n_params, n_state, loss,
                 out_sigmoid):
        self.plan = np.array(rows, dtype=np.int64)
        self.pf = np.array(pfs, dtype=np.float64)
        self.lf = np.array(loss.settings(), dtype=np.float64)
        self.loss_code = loss.code
        self.layer_rows = layer_rows
        self.n_inputs, self.n_outputs = n_inputs, n_outputs
        self.n_params, self.n_state = n_params, n_state
        self.out_sigmoid = out_sigmoid
        self.threshold = 0.0 if out_sigmoid else 0.5
        self.kinds = frozenset(int(k) for k in self.plan[:, KIND]) if len(rows) else frozenset()

    def has(self, kind):
        """Whether any plan row is of ``kind`` (e.g. BATCHNORM)."""
        return kind in self.kinds


class Builder:
    """What a layer sees while the plan is compiled: the running width and offsets."""

    def __init__(self, width, seed):
        self.width = width          # features flowing into the next layer
        self.seed = seed
        self.rows, self.pfs = [], []
        self.n_params = self.n_state = 0
        self.fusable = False        # an activation may fuse into the last row

    def alloc_params(self, size):
        """Offset of ``size`` new parameters in the flat buffer."""
        off = self.n_params
        self.n_params += size
        return off

    def alloc_state(self, size):
        """Offset of ``size`` new state entries (BatchNorm's running statistics)."""
        off = self.n_state
        self.n_state += size
        return off

    def add_row(self, kind, n_out, actv=0, floats=(0.0, 0.0), fusable=False):
        """Append a row reading the current width and writing ``n_out``; its index."""
        row = np.zeros(N_COLS, dtype=np.int64)
        row[KIND], row[N_IN], row[N_OUT], row[ACTV] = kind, self.width, n_out, actv
        self.rows.append(row)
        self.pfs.append(list(floats))
        self.width = n_out
        self.fusable = fusable
        return len(self.rows) - 1


def compile_plan(layers, loss, seed):
    """A :class:`Network` for ``layers`` (fastbp layers) and ``loss``; ValueError if invalid."""
    width = layers[0].input_width()
    if width is None:
        raise ValueError("the first layer must be Dense or BatchNorm (it fixes the input width)")
    folded = None
    if loss.code == BCE:
        if getattr(layers[-1], "name", None) != "sigmoid":
            raise ValueError("BinaryCrossEntropy needs a Sigmoid as the last layer "
                             "(it is computed stably from the value before that sigmoid)")
        folded = len(layers) - 1
    b = Builder(width, seed)
    layer_rows = []
    for i, layer in enumerate(layers):
        if i == folded:
            layer_rows.append(-1)
            break
        layer_rows.append(layer.add_to_plan(b, i))
    if not any(r[KIND] == DENSE for r in b.rows):
        raise ValueError("the network needs at least one Dense layer")
    if loss.code == SOFTMAX_CE and b.width < 2:
        raise ValueError("SoftmaxCrossEntropy needs at least 2 outputs; for one output use "
                         "a Sigmoid with BinaryCrossEntropy")
    return Network(b.rows, b.pfs, layer_rows, width, b.width, b.n_params, b.n_state, loss,
                   folded is not None)


def layout(plan, batch):
    """Fill the OUT/AUX columns of ``plan`` (in place) for ``batch`` rows; the ``ws`` size."""
    off = 0
    for row in plan:
        n = int(row[N_OUT])
        row[OUT] = off
        off += batch * n
        if row[KIND] == BATCHNORM:
            row[AUX] = off
            off += batch * n + n
        elif row[KIND] == DROPOUT:
            row[AUX] = off
            off += batch * n
        else:
            row[AUX] = -1
    return off


def dense_macs(plan):
    """Multiply-adds of the Dense products in the forward pass of one row."""
    dense = plan[plan[:, KIND] == DENSE]
    return int(np.sum(dense[:, N_IN] * dense[:, N_OUT]))


def max_width(plan):
    """The widest gradient backward holds: any row's output, or any row's input but
    the first (the gradient of the network's input is never computed)."""
    widest_in = plan[1:, N_IN].max() if plan.shape[0] > 1 else 0
    return int(max(widest_in, plan[:, N_OUT].max()))
