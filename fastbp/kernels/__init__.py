"""Numba kernels: the same modules, functions and signatures as :mod:`fastbp.reference`."""

import glob as _glob
import hashlib as _hashlib
import os as _os


def _drop_stale_cache(here=None):
    """Delete Numba's cached machine code when any kernel source has changed.

    Numba keys a cached function on its own file only, so a kernel that calls a
    kernel in another module (or reads a constant from plan.py or _config.py)
    would keep running stale code after that other file changed. One stamp of
    all the sources they depend on guards the whole folder.
    """
    here = here or _os.path.dirname(_os.path.abspath(__file__))
    parent = _os.path.dirname(here)
    sources = sorted(_glob.glob(_os.path.join(here, "*.py"))) + [
        _os.path.join(parent, "plan.py"), _os.path.join(parent, "_config.py")]
    digest = _hashlib.sha256()
    for path in sources:
        with open(path, "rb") as f:
            digest.update(f.read())
    stamp = digest.hexdigest()
    cache = _os.path.join(here, "__pycache__")
    stamp_file = _os.path.join(cache, "fastbp-kernels.stamp")
    try:
        with open(stamp_file) as f:
            if f.read() == stamp:
                return
    except OSError:
        pass
    try:
        for path in _glob.glob(_os.path.join(cache, "*.nb[ic]")):
            _os.unlink(path)
        _os.makedirs(cache, exist_ok=True)
        with open(stamp_file, "w") as f:
            f.write(stamp)
    except OSError:     # a read-only install: Numba then caches elsewhere or not at all
        pass


_drop_stale_cache()
from .activations import (act_backward, act_forward, bias_act_forward, identity_backward,
                          identity_forward, relu_backward, relu_forward, sigmoid_backward,
                          sigmoid_forward, tanh_backward, tanh_forward)
from .batchnorm import batchnorm_backward, batchnorm_forward_eval, batchnorm_forward_train
from .dense import dense_backward, dense_forward
from .dropout import dropout_backward, dropout_forward, dropout_mask
from .losses import bce_with_logits, mse_loss, softmax_cross_entropy
from .losses import bce_with_logits_weighted, mse_loss_weighted, softmax_cross_entropy_weighted
from .optim import adam_update, sgd_update
from .rng import hash_uniform, splitmix64
from .network import add_l2, loss_and_grad_weighted
from .network import (backward, count_correct, evaluate, forward, layer_output, loss_and_grad,
                      predict, train_epochs)
from .online import select_online, train_epochs_online
