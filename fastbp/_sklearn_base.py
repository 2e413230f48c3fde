"""The training loop behind :mod:`fastbp.sklearn`: scikit-learn's MLP semantics on fastbp.

A fitted estimator holds a :class:`fastbp.Sequential` (``model_``) and drives
its ``fit``, several epochs per call. scikit-learn's stopping rule looks at the
loss curve once per epoch (stop when the loss has not improved by ``tol`` for
more than ``n_iter_no_change`` epochs in a row); that cannot fire before
``n_iter_no_change + 1 - count`` more epochs, so exactly that many run in one
call and the rule is then replayed epoch by epoch: the same epochs are run and
the same decisions taken as one call per epoch would. Early stopping (a
validation score after every epoch) runs one epoch per call.

How scikit-learn's numbers map onto fastbp's engine:

- squared error is ``MSE(half=True)``; log-loss on a softmax output is
  ``SoftmaxCrossEntropy`` on logits; on logistic outputs ``BinaryCrossEntropy``;
- ``alpha`` is ``fit(l2=...)``: ``alpha / (batch rows or batch weight) * W``
  added to the weight gradients, biases untouched;
- Adam is ``Adam(eps_hat=True)`` (scikit-learn adds epsilon to ``sqrt(v)``
  before the bias correction); SGD momentum is PyTorch's form, equal to
  scikit-learn's while the learning rate is constant;
- scikit-learn's gradient sums over the k outputs where fastbp's MSE and BCE
  average over them, so with k outputs fastbp's gradient is 1/k of
  scikit-learn's: SGD runs at ``k * lr``, Adam with ``epsilon / k`` and the L2
  term at ``alpha / k``, which gives scikit-learn's steps exactly.
"""
import warnings

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from . import _memory
from .layers import BatchNorm, Dense, Dropout, ReLU, Sigmoid, Tanh, Identity
from .losses import MSE, BinaryCrossEntropy, SoftmaxCrossEntropy
from .model import Sequential, TrainingDivergedError
from .optim import SGD, Adam

ACTIVATIONS = {"relu": ReLU, "logistic": Sigmoid, "tanh": Tanh, "identity": Identity}
OUTPUTS = {"identity": (Identity, MSE(half=True)), "softmax": (Identity, SoftmaxCrossEntropy()),
           "logistic": (Sigmoid, BinaryCrossEntropy())}


def _dense_input(X):
    """A sparse X densified (fastbp's kernels are dense), after a memory check."""
    if not hasattr(X, "toarray"):
        return X
    need = X.shape[0] * X.shape[1] * X.dtype.itemsize
    limit, where = _memory.budget()
    if limit is not None and need > limit:
        raise _memory.MemoryBudgetError(
            f"X is sparse; fastbp trains on dense arrays and densifying it needs "
            f"{need / 2**20:.1f} MiB, over the memory budget ({where}). Reduce the "
            f"features (e.g. TruncatedSVD) or the rows.")
    return np.ascontiguousarray(X.toarray())


class BaseMLP(BaseEstimator):
    """Shared parameters, ``fit``/``partial_fit`` loop and fitted attributes."""

    def _validate_X(self, X, reset):
        X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=reset,
                          dtype=self._dtypes())
        return _dense_input(X)

    def _dtypes(self):
        if self.dtype is None:
            return (np.float64, np.float32)
        return np.dtype(self.dtype).type

    # ------------------------------------------------------------------ fitted views
    def _dense_layers(self):
        check_is_fitted(self, "model_")
        return [layer for layer in self.model_.layers if isinstance(layer, Dense)]

    @property
    def coefs_(self):
        """Weight matrices (n_in, n_out) per layer: views into ``model_``'s parameters."""
        return [layer.W for layer in self._dense_layers()]

    @property
    def intercepts_(self):
        """Bias vectors (n_out,) per layer: views into ``model_``'s parameters."""
        return [layer.b for layer in self._dense_layers()]

    def __getstate__(self):
        """Pickle the model through fastbp's own file format (bit-exact resume)."""
        state = self.__dict__.copy()
        model = state.pop("model_", None)
        if model is not None:
            import os
            import tempfile
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "model.npz")
                model.save(path)
                with open(path, "rb") as f:
                    state["_model_npz"] = (f.read(), model.backend)
        return state

    def __setstate__(self, state):
        blob = state.pop("_model_npz", None)
        self.__dict__.update(state)
        if blob is not None:
            import os
            import tempfile
            from .io import load
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "model.npz")
                with open(path, "wb") as f:
                    f.write(blob[0])
                self.model_ = load(path, backend=blob[1])

    # ------------------------------------------------------------------ building
    def _hidden(self):
        sizes = self.hidden_layer_sizes
        sizes = list(sizes) if hasattr(sizes, "__iter__") else [sizes]
        if any(int(s) != s or s <= 0 for s in sizes):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {sizes}.")
        return [int(s) for s in sizes]

    def _initialize(self, n_features, n_outputs, out_activation, dtype, rs):
        """A new ``model_`` with scikit-learn's Glorot-uniform weights drawn from ``rs``."""
        units = [n_features] + self._hidden() + [n_outputs]
        layers = []
        for i in range(len(units) - 1):
            layers.append(Dense(units[i], units[i + 1]))
            if i == len(units) - 2:
                layers.append(OUTPUTS[out_activation][0]())
                break
            if self.batchnorm:
                layers.append(BatchNorm(units[i + 1]))
            layers.append(ACTIVATIONS[self.activation]())
            if self.dropout:
                layers.append(Dropout(self.dropout))
        factor = 2.0 if self.activation == "logistic" else 6.0
        draws = []
        for fan_in, fan_out in zip(units[:-1], units[1:]):   # scikit-learn's _init_coef
            bound = np.sqrt(factor / (fan_in + fan_out))
            draws.append((rs.uniform(-bound, bound, (fan_in, fan_out)),
                          rs.uniform(-bound, bound, fan_out)))
        # shuffling and dropout: the model's own generators (rs is left to the
        # validation split, which then matches scikit-learn's for an int random_state)
        seed = (self.random_state if isinstance(self.random_state, (int, np.integer))
                and not isinstance(self.random_state, bool) and self.random_state >= 0
                else int(rs.randint(np.iinfo(np.int32).max)))
        self.model_ = Sequential(layers, loss=OUTPUTS[out_activation][1], backend=self.backend,
                                 dtype=np.dtype(dtype).name, seed=seed)
        for layer, (W, b) in zip(self._dense_layers(), draws):
            layer.W[...] = W.astype(dtype)
            layer.b[...] = b.astype(dtype)
        self.n_outputs_, self.n_layers_, self.out_activation_ = n_outputs, len(units), out_activation
        self.n_iter_, self.t_, self.loss_curve_ = 0, 0, []
        self._no_improvement_count = 0
        if self.early_stopping:
            self.validation_scores_, self.best_validation_score_, self.best_loss_ = [], -np.inf, None
        else:
            self.validation_scores_, self.best_validation_score_, self.best_loss_ = None, None, np.inf

    # ------------------------------------------------------------------ the loop
    def _optimizer(self, scale):
        if self.solver == "adam":
            return Adam(betas=(self.beta_1, self.beta_2), eps=self.epsilon / scale, eps_hat=True)
        return SGD(momentum=self.momentum, nesterov=bool(self.nesterovs_momentum and self.momentum))

    def _fit(self, X, y, sample_weight, incremental):
        self._validate_params()
        first = not hasattr(self, "model_") or (not self.warm_start and not incremental)
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        X, Y = self._validate_input(X, y, incremental, reset=first)
        sw = None
        if sample_weight is not None:
            sw = _check_sample_weight(sample_weight, X, dtype=X.dtype, ensure_non_negative=True)
        sw = self._class_weights(Y, sw)
        rs = check_random_state(self.random_state)
        if first:
            self._initialize(X.shape[1], self._n_outputs(Y), self._out_activation(Y), X.dtype, rs)
        elif X.dtype != self.model_.dtype:
            X = X.astype(self.model_.dtype)
        if not incremental or not hasattr(self, "_lr"):
            # scikit-learn starts a new optimizer in every fit (warm_start keeps the
            # weights only); partial_fit continues the last one
            self.model_.reset_state()
            self._lr = float(self.learning_rate_init)
        self._best = None
        try:
            self._fit_stochastic(X, Y, sw, incremental, rs)
        except TrainingDivergedError as exc:
            raise ValueError(f"Solver produced non-finite parameter weights: {exc}") from exc
        return self

    def _split(self, X, Y, sw, rs):
        """scikit-learn's early-stopping split (same random_state, same stratification)."""
        stratify = Y if (self._is_classifier() and self.n_outputs_ == 1) else None
        arrays = (X, Y) if sw is None else (X, Y, sw)
        parts = train_test_split(*arrays, random_state=rs, test_size=self.validation_fraction,
                                 stratify=stratify)
        X_tr, X_val, Y_tr, Y_val = parts[:4]
        if X_val.shape[0] < 2:
            raise ValueError("The validation set is too small. Increase 'validation_fraction' "
                             "or the size of your dataset.")
        sw_tr, sw_val = (parts[4], parts[5]) if sw is not None else (None, None)
        return X_tr, Y_tr, sw_tr, (X_val, self._decode(Y_val), sw_val)

    def _fit_stochastic(self, X, Y, sw, incremental, rs):
        val = None
        if self.early_stopping:
            X, Y, sw, val = self._split(X, Y, sw, rs)
        n = X.shape[0]
        if self.batch_size == "auto":
            batch = min(200, n)
        else:
            if self.batch_size > n:
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. "
                              "It is going to be clipped")
            batch = int(np.clip(self.batch_size, 1, n))
        scale = self._grad_scale()
        opt = self._optimizer(scale)
        target = self._target(Y)
        X = np.ascontiguousarray(X)
        self.n_iter_ = 0
        while True:
            todo = self._chunk(incremental, val)
            lrs = self._chunk_lrs(todo, n)
            start = self.model_.epochs_trained
            schedule = None if np.all(lrs == lrs[0]) else (lambda ep: lrs[ep - start] / lrs[0])
            hist = self.model_.fit(
                X, target, epochs=todo, lr=lrs[0], batch_size=batch, shuffle=bool(self.shuffle),
                optimizer=opt, lr_schedule=schedule, sample_weight=sw,
                l2=float(self.alpha) / scale)
            if self._epochs_done(hist, n, val, incremental):
                break
        if self.early_stopping and self._best is not None:
            self.model_.set_weights(self._best[0])
            self.model_.state[...] = self._best[1]

    def _grad_scale(self):
        """k for MSE/BCE over k outputs (see the module notes), else 1."""
        return 1 if self.out_activation_ == "softmax" else self.n_outputs_

    def _chunk(self, incremental, val):
        """Epochs the next fit call may run before scikit-learn's rule could stop."""
        left = self.max_iter - self.n_iter_
        if incremental or val is not None:
            return 1
        room = self.n_iter_no_change + 1 - self._no_improvement_count
        return int(max(1, min(left, room)))

    def _chunk_lrs(self, todo, n):
        """Per-epoch learning rates of the next call (SGD's 'invscaling' schedule)."""
        lrs = [self._lr]
        for j in range(1, todo):
            lrs.append(self._next_lr(self.t_ + j * n, lrs[-1]))
        scale = self._grad_scale() if self.solver == "sgd" else 1
        return np.array(lrs) * scale

    def _next_lr(self, t, lr):
        if self.solver == "sgd" and self.learning_rate == "invscaling":
            return float(self.learning_rate_init) / (t + 1) ** self.power_t
        return lr

    def _epochs_done(self, hist, n, val, incremental):
        """Replay scikit-learn's per-epoch bookkeeping; True when training stops."""
        loss_scale = self.n_outputs_ if self.out_activation_ == "logistic" else 1
        for loss in hist.loss:
            self.n_iter_ += 1
            self.loss_ = float(loss) * loss_scale
            self.t_ += n
            self.loss_curve_.append(self.loss_)
            if self.verbose:
                print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))
            self._update_no_improvement_count(val)
            self._lr = self._next_lr(self.t_, self._lr)
            if self._no_improvement_count > self.n_iter_no_change:
                if self.solver == "sgd" and self.learning_rate == "adaptive" and self._lr > 1e-6:
                    self._lr /= 5.0
                    self._no_improvement_count = 0
                    if self.verbose:
                        print(f"Setting learning rate to {self._lr:f}")
                else:
                    return True
            if incremental:
                return True
            if self.n_iter_ >= self.max_iter:
                warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) "
                              "reached and the optimization hasn't converged yet.",
                              ConvergenceWarning)
                return True
        return hist.interrupted

    def _update_no_improvement_count(self, val):
        if val is not None:
            score = self._score(*val)
            self.validation_scores_.append(score)
            if self.verbose:
                print("Validation score: %f" % score)
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best = (self.model_.get_weights(), self.model_.state.copy())
            return
        if self.loss_curve_[-1] > self.best_loss_ - self.tol:
            self._no_improvement_count += 1
        else:
            self._no_improvement_count = 0
        if self.loss_curve_[-1] < self.best_loss_:
            self.best_loss_ = self.loss_curve_[-1]

    # ------------------------------------------------------------------ public API
    def fit(self, X, y, sample_weight=None):
        """Fit the model to X and y (from scratch unless ``warm_start=True``).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Sparse input is densified after a memory check.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights: each batch's loss is the weighted mean.

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight, incremental=False)

    def _forward(self, X):
        check_is_fitted(self, "model_")
        X = self._validate_X(X, reset=False)
        return self.model_.predict(np.ascontiguousarray(X, dtype=self.model_.dtype))
