"""Optimizer steps over the flat parameter buffer in NumPy (torch.optim formulas).

The readable truth for :mod:`fastbp.kernels.optim`. ``params`` is the model's one
flat parameter vector and ``grads`` the gradient vector of the same layout, so a
step is one elementwise pass whatever the layers are.
"""
import math

import numpy as np


def sgd_update(params, grads, velocity, lr, momentum, weight_decay, nesterov):
    """One step of ``torch.optim.SGD`` (dampening 0), in place.

    Parameters
    ----------
    params : (P,) array, updated in place
    grads : (P,) array, read only (not modified)
    velocity : (P,) array updated in place; (0,) when momentum == 0
        Starts at zeros: ``momentum * 0 + g = g``, which is PyTorch's first-step
        ``buf = g.clone()`` exactly.
    lr, momentum, weight_decay : float
    nesterov : bool

    Step::

        g = grads + weight_decay * params          (skipped when weight_decay == 0)
        if momentum != 0:
            velocity = momentum * velocity + g
            g = g + momentum * velocity if nesterov else velocity
        params -= lr * g
    """
    g = grads + weight_decay * params if weight_decay != 0 else grads  # (P,)
    if momentum != 0:
        velocity *= momentum
        velocity += g
        g = g + momentum * velocity if nesterov else velocity
    params -= lr * g


def adam_update(params, grads, m, v, step, lr, beta1, beta2, eps, weight_decay):
    """One step of ``torch.optim.Adam`` (single-tensor path, amsgrad off), in place.

    Parameters
    ----------
    params : (P,) array, updated in place
    grads : (P,) array, read only
    m, v : (P,) arrays, updated in place: first and second moment estimates
    step : int
        1-based number of this step (the caller increments before calling).
    lr, beta1, beta2, eps, weight_decay : float

    Step::

        g = grads + weight_decay * params          (skipped when weight_decay == 0)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        bc1 = 1 - beta1**step ;  bc2 = 1 - beta2**step
        params -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps)

    The scalars ``lr / bc1`` and ``sqrt(bc2)`` are computed in float64 (Python
    floats) and rounded once to the dtype, as PyTorch does. Bias correction
    divides out the (1 - beta**step) weight that zero-initialised moments lack.
    """
    g = grads + weight_decay * params if weight_decay != 0 else grads  # (P,)
    m *= beta1
    m += (1 - beta1) * g
    v *= beta2
    v += (1 - beta2) * g * g
    step_size = lr / (1.0 - beta1 ** step)
    bc2_sqrt = math.sqrt(1.0 - beta2 ** step)
    params -= step_size * m / (np.sqrt(v) / bc2_sqrt + eps)
