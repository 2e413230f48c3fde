"""Numba kernels: the same modules, functions and signatures as :mod:`fastbp.reference`.

Every kernel is compiled through :func:`fastbp._config.njit`, which caches its
machine code in fastbp's private folder under one key of all these sources,
the compile flags and the Numba version (:mod:`fastbp._cache`): a change of
any kernel, of plan.py or of _config.py never runs stale code.
"""
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
from .network import add_l2, loss_and_grad_weighted, select_batch
from .network import (backward, count_correct, evaluate, forward, layer_output, loss_and_grad,
                      predict, train_epochs)
from .online import select_eval, select_online, train_epochs_online
from .._blas import defer_numba_blas_check

defer_numba_blas_check()    # before Numba first loads its registries: see there
