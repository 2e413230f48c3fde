"""Per-sample (online) SGD: the reference for :mod:`fastbp.kernels.online`.

Online SGD is mini-batch SGD with a batch of one: for every sample, in the
epoch's order, forward, loss, backward, and one optimizer step. The NumPy
reference therefore runs :func:`fastbp.reference.network.train_epochs`
itself; the Numba kernel of the same name is a version of that loop written
for a batch of one (no views, no array-taking calls per sample), and must give
the same numbers.
"""
from .network import train_epochs


def train_epochs_online(plan, pf, loss_code, lf, opt_code, of, params, grads, state, opt_a,
                        opt_b, counters, X, Yf, Yi, order, lrs, threshold, stop_correct, ws, ga,
                        gb, xb, yfb, yib, probs, stop_flag, losses, corrects):
    """:func:`fastbp.reference.network.train_epochs` with ``xb`` of one row.

    Same arguments, same meaning; returns (epochs completed, status code).
    Supports Dense, activation and Dropout rows (no BatchNorm: a batch of one
    has no batch statistics).
    """
    return train_epochs(plan, pf, loss_code, lf, opt_code, of, params, grads, state, opt_a,
                        opt_b, counters, X, Yf, Yi, order, lrs, threshold, stop_correct, ws, ga,
                        gb, xb[:1], yfb[:1], yib[:1], probs, stop_flag, losses, corrects,
                        params[:0], params[:0], 0.0)


def select_online(plan, loss_code, opt_code, dtype_name):
    """The per-sample epoch function for this network (the reference has one for all)."""
    return train_epochs_online
