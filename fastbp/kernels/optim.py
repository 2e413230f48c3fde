"""Numba kernels of :mod:`fastbp.reference.optim` (see there for the formulas).

One fused pass over the flat parameter vector. Hyper-parameters are rounded to
the dtype first, as NumPy does with Python scalars; Adam's bias corrections are
float64 scalars computed with ``math.pow`` (C ``pow``, as Python's ``**``).
"""
import math

import numpy as np

from .._config import njit


@njit
def sgd_update(params, grads, velocity, lr, momentum, weight_decay, nesterov):
    """Numba kernel of :func:`fastbp.reference.optim.sgd_update`."""
    # params (P,), grads (P,), velocity (P,) or (0,) when momentum == 0
    t = params.dtype.type
    lrf = t(lr)
    mom = t(momentum)
    wd = t(weight_decay)
    use_wd = weight_decay != 0
    use_mom = momentum != 0
    for j in range(params.shape[0]):
        g = grads[j]
        if use_wd:
            g = g + wd * params[j]
        if use_mom:
            vel = mom * velocity[j] + g
            velocity[j] = vel
            if nesterov:
                g = g + mom * vel
            else:
                g = vel
        params[j] -= lrf * g


@njit
def adam_update(params, grads, m, v, step, lr, beta1, beta2, eps, weight_decay):
    """Numba kernel of :func:`fastbp.reference.optim.adam_update`."""
    # params (P,), grads (P,), m (P,), v (P,)
    t = params.dtype.type
    b1 = t(beta1)
    b2 = t(beta2)
    c1 = t(1.0 - beta1)
    c2 = t(1.0 - beta2)
    epsf = t(eps)
    wd = t(weight_decay)
    use_wd = weight_decay != 0
    step_size = t(lr / (1.0 - math.pow(beta1, float(step))))
    bc2_sqrt = t(math.sqrt(1.0 - math.pow(beta2, float(step))))
    for j in range(params.shape[0]):
        g = grads[j]
        if use_wd:
            g = g + wd * params[j]
        mj = b1 * m[j] + c1 * g
        vj = b2 * v[j] + (c2 * g) * g
        m[j] = mj
        v[j] = vj
        params[j] -= step_size * mj / (np.sqrt(vj) / bc2_sqrt + epsf)
