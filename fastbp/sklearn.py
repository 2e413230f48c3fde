"""scikit-learn estimators: ``MLPClassifier`` and ``MLPRegressor`` trained by fastbp.

``from fastbp.sklearn import MLPClassifier`` in place of
``from sklearn.neural_network import MLPClassifier``: the same parameter names
and meanings, the same fitted attributes and methods, the same initial weights
for the same integer ``random_state``, and the same update steps (see
:mod:`fastbp._sklearn_base` for how each maps onto fastbp's engine), plus
fastbp's own ``batchnorm``, ``dropout``, ``dtype``, ``backend`` and (classifier)
``class_weight``. Importing :mod:`fastbp` does not import this module or
scikit-learn.

Differences from scikit-learn: no ``solver="lbfgs"`` (fastbp trains by
mini-batches); sparse X is densified (after a memory check); the shuffle order
comes from fastbp's generator, so with ``shuffle=True`` the batches differ from
scikit-learn's; with momentum, a learning rate that changes between epochs
('invscaling', 'adaptive') meets PyTorch's momentum form, which differs
slightly from scikit-learn's at each change.
"""
from numbers import Integral, Real

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.metrics import accuracy_score, r2_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import _check_partial_fit_first_call, type_of_target, unique_labels
from sklearn.utils.validation import column_or_1d, validate_data

from ._sklearn_base import BaseMLP, _dense_input

__all__ = ["MLPClassifier", "MLPRegressor", "EXPECTED_FAILED_CHECKS"]

#: Checks of ``sklearn.utils.estimator_checks`` these estimators fail, with the reason
#: (handed to ``parametrize_with_checks(expected_failed_checks=...)``). None at present:
#: even the sample-weight equivalence checks pass, their data sets being smaller than
#: one batch (a weight of 2 then equals a repeated row exactly).
EXPECTED_FAILED_CHECKS = {}

_COMMON = {
    "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
    "activation": [StrOptions({"identity", "logistic", "tanh", "relu"})],
    "solver": [StrOptions({"sgd", "adam"})],
    "alpha": [Interval(Real, 0, None, closed="left")],
    "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
    "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
    "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
    "power_t": [Interval(Real, 0, None, closed="left")],
    "max_iter": [Interval(Integral, 1, None, closed="left")],
    "shuffle": ["boolean"],
    "random_state": ["random_state"],
    "tol": [Interval(Real, 0, None, closed="left")],
    "verbose": ["verbose"],
    "warm_start": ["boolean"],
    "momentum": [Interval(Real, 0, 1, closed="left")],
    "nesterovs_momentum": ["boolean"],
    "early_stopping": ["boolean"],
    "validation_fraction": [Interval(Real, 0, 1, closed="left")],
    "beta_1": [Interval(Real, 0, 1, closed="left")],
    "beta_2": [Interval(Real, 0, 1, closed="left")],
    "epsilon": [Interval(Real, 0, None, closed="neither")],
    "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), Options(Real, {np.inf})],
    "batchnorm": ["boolean"],
    "dropout": [Interval(Real, 0, 1, closed="left")],
    "dtype": [None, StrOptions({"float32", "float64"})],
    "backend": [StrOptions({"numba", "numpy"})],
}

_DOC_PARAMS = """
    Parameters
    ----------
    hidden_layer_sizes, activation, solver ("sgd" or "adam"), alpha, batch_size,
    learning_rate, learning_rate_init, power_t, max_iter, shuffle, random_state,
    tol, verbose, warm_start, momentum, nesterovs_momentum, early_stopping,
    validation_fraction, beta_1, beta_2, epsilon, n_iter_no_change
        As in scikit-learn's estimator of the same name.
    batchnorm : bool, default=False
        A ``BatchNorm`` after each hidden Dense layer (before its activation).
    dropout : float in [0, 1), default=0.0
        ``Dropout(dropout)`` after each hidden activation.
    dtype : {None, "float32", "float64"}, default=None
        None trains in X's dtype as scikit-learn does (float32 stays float32,
        anything else becomes float64).
    backend : {"numba", "numpy"}, default="numba"
        fastbp's kernels or its NumPy reference.

    Attributes
    ----------
    coefs_, intercepts_ : lists of arrays, views into ``model_``'s parameters
    n_iter_, t_, loss_, loss_curve_, best_loss_, validation_scores_,
    best_validation_score_, n_features_in_, feature_names_in_, n_layers_,
    n_outputs_, out_activation_
        As in scikit-learn.
    model_ : fastbp.Sequential, the trained network
"""


class _Params(BaseMLP):
    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, batchnorm=False,
                 dropout=0.0, dtype=None, backend="numba"):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.batchnorm = batchnorm
        self.dropout = dropout
        self.dtype = dtype
        self.backend = backend

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


class MLPClassifier(ClassifierMixin, _Params):
    __doc__ = ("""A multi-layer perceptron classifier trained by fastbp (scikit-learn's API).

    Binary targets train one logistic output with binary cross-entropy (as
    scikit-learn), several classes a softmax, and an indicator matrix
    (multilabel) one logistic output per label. Labels may be any values
    ``np.unique`` can sort; ``classes_`` holds them.
""" + _DOC_PARAMS + """    class_weight : dict, "balanced" or None, default=None
        Weights of the classes, multiplied into ``sample_weight``
        (``sklearn.utils.class_weight.compute_sample_weight``).
    classes_ : array of the class labels
""")

    _parameter_constraints = dict(_COMMON, class_weight=[None, dict, StrOptions({"balanced"})])

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, batchnorm=False,
                 dropout=0.0, dtype=None, backend="numba", class_weight=None):
        super().__init__(
            hidden_layer_sizes, activation, solver=solver, alpha=alpha, batch_size=batch_size,
            learning_rate=learning_rate, learning_rate_init=learning_rate_init, power_t=power_t,
            max_iter=max_iter, shuffle=shuffle, random_state=random_state, tol=tol,
            verbose=verbose, warm_start=warm_start, momentum=momentum,
            nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
            validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2,
            epsilon=epsilon, n_iter_no_change=n_iter_no_change, batchnorm=batchnorm,
            dropout=dropout, dtype=dtype, backend=backend)
        self.class_weight = class_weight

    def _is_classifier(self):
        return True

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             dtype=self._dtypes(), reset=reset)
        X = _dense_input(X)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer().fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError("warm_start can only be used where `y` has the same classes "
                                     f"as in the previous call to fit. Previously got "
                                     f"{self.classes_}, `y` has {classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has "
                                 f"{self.classes_}. 'y' has {classes}.")
        self._raw_y = y
        return X, self._label_binarizer.transform(y).astype(bool)

    def _class_weights(self, Y, sw):
        y = self.__dict__.pop("_raw_y", None)
        if self.class_weight is None:
            return sw
        cw = compute_sample_weight(self.class_weight, y)
        return cw if sw is None else sw * cw

    def _n_outputs(self, Y):
        return Y.shape[1]

    def _out_activation(self, Y):
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _target(self, Y):
        if self.out_activation_ == "softmax":
            return np.argmax(Y, axis=1)
        return Y.astype(self.model_.dtype)

    def _decode(self, Y):
        return self._label_binarizer.inverse_transform(Y)

    def _score(self, X, y, sample_weight=None):
        y_pred = self._decode_output(self.model_.predict(X))
        return accuracy_score(y, y_pred, sample_weight=sample_weight)

    def _decode_output(self, out):
        if self.n_outputs_ == 1:
            out = out.ravel()
        return self._label_binarizer.inverse_transform(out)

    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over (X, y), continuing the optimizer; ``classes`` on the first call."""
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X):
        """Class labels (n_samples,), or an indicator matrix for multilabel targets."""
        return self._decode_output(self._forward(X))

    def predict_proba(self, X):
        """Class probabilities (n_samples, n_classes), columns in the order of ``classes_``."""
        out = self._forward(X)
        if self.out_activation_ == "softmax":
            out = out - out.max(axis=1, keepdims=True)
            np.exp(out, out=out)
            out /= out.sum(axis=1, keepdims=True)
        elif self.n_outputs_ == 1:
            p = out.ravel()
            return np.vstack([1 - p, p]).T
        return out

    def predict_log_proba(self, X):
        """``log(predict_proba(X))``."""
        return np.log(self.predict_proba(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _Params):
    __doc__ = ("""A multi-layer perceptron regressor trained by fastbp (scikit-learn's API).

    Squared error (``loss="squared_error"``, the only one) on an identity
    output; one target or several.
""" + _DOC_PARAMS)

    _parameter_constraints = dict(_COMMON, loss=[StrOptions({"squared_error"})])

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *,
                 solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, batchnorm=False,
                 dropout=0.0, dtype=None, backend="numba"):
        super().__init__(
            hidden_layer_sizes, activation, solver=solver, alpha=alpha, batch_size=batch_size,
            learning_rate=learning_rate, learning_rate_init=learning_rate_init, power_t=power_t,
            max_iter=max_iter, shuffle=shuffle, random_state=random_state, tol=tol,
            verbose=verbose, warm_start=warm_start, momentum=momentum,
            nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
            validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2,
            epsilon=epsilon, n_iter_no_change=n_iter_no_change, batchnorm=batchnorm,
            dropout=dropout, dtype=dtype, backend=backend)
        self.loss = loss

    def _is_classifier(self):
        return False

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             y_numeric=True, dtype=self._dtypes(), reset=reset)
        X = _dense_input(X)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    def _class_weights(self, Y, sw):
        return sw

    def _n_outputs(self, Y):
        return 1 if Y.ndim == 1 else Y.shape[1]

    def _out_activation(self, Y):
        return "identity"

    def _target(self, Y):
        return Y.reshape(Y.shape[0], -1).astype(self.model_.dtype)

    def _decode(self, Y):
        return Y

    def _score(self, X, y, sample_weight=None):
        return r2_score(y, self._shape_output(self.model_.predict(X)), sample_weight=sample_weight)

    def _shape_output(self, out):
        return out.ravel() if self.n_outputs_ == 1 else out

    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y), continuing the optimizer."""
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X):
        """Predictions (n_samples,) or (n_samples, n_outputs)."""
        return self._shape_output(self._forward(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
