"""Per-sample (online) SGD: the reference for :mod:`fastbp.kernels.online`.

Online SGD is mini-batch SGD with a batch of one: for every sample, in the
epoch's order, forward, loss, backward, and one optimizer step. The NumPy
reference therefore runs :func:`fastbp.reference.network.train_epochs`
itself; the Numba kernel of the same name is a version of that loop written
for a batch of one (no views, no array-taking calls per sample), and must give
the same numbers.
"""
from .network import train_epochs


def train_epochs_online(net, t, opt, data, bufs, run):
    """:func:`fastbp.reference.network.train_epochs` with ``xb`` of one row.

    Same arguments, same meaning; returns (epochs completed, status code).
    Supports Dense, activation and Dropout rows (no BatchNorm: a batch of one
    has no batch statistics), unweighted rows and no L2 term (``data.sw`` and
    ``opt.l2`` are not read).
    """
    bufs = bufs._replace(xb=bufs.xb[:1], yfb=bufs.yfb[:1], yib=bufs.yib[:1])
    return train_epochs(net, t, opt._replace(l2=0.0), data._replace(sw=data.sw[:0]), bufs, run)


def select_online(plan, loss_code, opt_code, dtype_name, fold):
    """The per-sample epoch function for this network (the reference has one for all
    networks and optimizers)."""
    return train_epochs_online


def select_eval(plan, loss_code, dtype_name):
    """None: the reference predicts and evaluates with its batch functions
    (:func:`fastbp.reference.network.predict`, ``evaluate``) at every size."""
    return None
