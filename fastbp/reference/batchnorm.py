"""Batch normalisation over the batch axis in NumPy (PyTorch BatchNorm1d conventions).

The readable truth for :mod:`fastbp.kernels.batchnorm`. Per feature j of a batch
x (n, d): normalise with the batch mean and the BIASED batch variance, then scale
by ``gamma`` and shift by ``beta``; the running statistics, used in evaluation
mode, are exponential moving averages with the UNBIASED batch variance:

    running = (1 - momentum) * running + momentum * batch_statistic
"""
import numpy as np


def batchnorm_forward_train(x, gamma, beta, running_mean, running_var, momentum, eps,
                            xhat, inv_std, out):
    """Training-mode forward: normalise with the batch's own statistics.

    Parameters
    ----------
    x : (n, d) array
        The batch; the caller guarantees n >= 2.
    gamma, beta : (d,) arrays
        Scale and shift.
    running_mean, running_var : (d,) arrays, updated in place
        ``running_mean = (1-momentum)*running_mean + momentum*mean``
        ``running_var  = (1-momentum)*running_var + momentum*var*n/(n-1)``.
    momentum, eps : float
    xhat : (n, d) array, written
        Normalised input ``(x - mean) * inv_std``, kept for the backward pass.
    inv_std : (d,) array, written
        ``1 / sqrt(var + eps)``, kept for the backward pass.
    out : (n, d) array, written
        ``gamma * xhat + beta``.

    ``mean = x.sum(0) / n``; ``var = ((x - mean)**2).sum(0) / n`` -- the two-pass
    form: subtracting the mean before squaring avoids the catastrophic
    cancellation of ``E[x^2] - E[x]^2`` when |mean| >> std. Sums run over rows
    in order.
    """
    n = x.shape[0]
    mean = x.sum(axis=0) / n  # (d,)
    xc = x - mean  # (n, d) centred
    var = (xc * xc).sum(axis=0) / n  # (d,) biased variance
    inv_std[:] = 1 / np.sqrt(var + eps)  # (d,)
    np.multiply(xc, inv_std, out=xhat)  # (n, d)
    running_mean[:] = (1 - momentum) * running_mean + momentum * mean
    running_var[:] = (1 - momentum) * running_var + momentum * var * n / (n - 1)
    np.add(gamma * xhat, beta, out=out)  # (n, d)


def batchnorm_forward_eval(x, gamma, beta, running_mean, running_var, eps, out):
    """Evaluation-mode forward: normalise with the running statistics.

    x : (n, d); gamma, beta, running_mean, running_var : (d,); eps : float;
    out : (n, d) written:
    ``out = gamma * (x - running_mean) / sqrt(running_var + eps) + beta``,
    evaluated left to right.
    """
    std = np.sqrt(running_var + eps)  # (d,)
    np.add(gamma * (x - running_mean) / std, beta, out=out)


def batchnorm_backward(dout, xhat, inv_std, gamma, dx, dgamma, dbeta):
    """Gradients of :func:`batchnorm_forward_train` (batch statistics depend on x).

    Parameters
    ----------
    dout : (n, d) array
        dL/d out.
    xhat : (n, d) array
        Saved normalised input.
    inv_std : (d,) array
        Saved ``1 / sqrt(var + eps)``.
    gamma : (d,) array
    dx : (n, d) array, written; or (0, d) when the input gradient is not wanted
    dgamma : (d,) array, written: ``(dout * xhat).sum(0)``
    dbeta : (d,) array, written: ``dout.sum(0)``

    With ``dxhat = dout * gamma`` the input gradient is

        dx = inv_std / n * (n*dxhat - dxhat.sum(0) - xhat * (dxhat*xhat).sum(0)).

    Since ``dxhat.sum(0) = gamma * dbeta`` and ``(dxhat*xhat).sum(0) = gamma * dgamma``,
    gamma factors out and the same value is computed as

        dx = (gamma * inv_std / n) * (n*dout - dbeta - xhat*dgamma),

    which reuses the two parameter-gradient sums and needs no (d,) scratch.
    """
    n = dout.shape[0]
    np.sum(dout, axis=0, out=dbeta)  # (d,)
    np.sum(dout * xhat, axis=0, out=dgamma)  # (d,)
    if dx.shape[0] != 0:
        k = gamma * inv_std / n  # (d,)
        np.multiply(k, n * dout - dbeta - xhat * dgamma, out=dx)  # (n, d)
