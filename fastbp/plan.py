"""The plan: a network described as an integer table both backends can run.

The model turns its list of layers into one ``int64`` table (``plan``, one row
per step of the forward pass) and one ``float64`` table (``pf``, the steps'
real-valued settings). Both backends' ``network`` modules walk the same table,
so a Numba kernel can run a whole epoch without touching a Python object.

A Dense layer followed by an activation layer becomes ONE row (the bias add
and the activation run in the pass after the GEMM). With a
``BinaryCrossEntropy`` loss the final Sigmoid is not a row at all: the loss
takes the logits (stable BCE) and ``predict`` applies the sigmoid.

Workspace layout for a batch of ``B`` rows (one flat buffer ``ws``): every
row's output ``(B, n_out)`` at ``OUT``; BatchNorm keeps ``xhat (B, n)`` then
``inv_std (n,)`` at ``AUX``; Dropout keeps its mask ``(B, n)`` at ``AUX``.
"""
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


def workspace_size(plan, batch):
    """Number of elements the workspace needs for ``batch`` rows."""
    size = 0
    for row in plan:
        size = max(size, row[OUT] + batch * row[N_OUT])
        if row[KIND] == BATCHNORM:
            size = max(size, row[AUX] + batch * row[N_OUT] + row[N_OUT])
        elif row[KIND] == DROPOUT:
            size = max(size, row[AUX] + batch * row[N_OUT])
    return size


def layout(plan, batch):
    """Fill the OUT/AUX columns of ``plan`` (in place) for ``batch`` rows."""
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


def max_width(plan):
    """The widest gradient backward holds: any row's output, or any row's input but
    the first (the gradient of the network's input is never computed)."""
    widest_in = plan[1:, N_IN].max() if plan.shape[0] > 1 else 0
    return int(max(widest_in, plan[:, N_OUT].max()))


def new_plan(n_rows):
    return np.zeros((n_rows, N_COLS), dtype=np.int64), np.zeros((n_rows, 2), dtype=np.float64)
