"""scikit-learn's own estimator checks over fastbp.sklearn's estimators.

Every check of ``parametrize_with_checks`` runs; the ones expected to fail
are listed, each with its reason, in ``fastbp.sklearn.EXPECTED_FAILED_CHECKS``.
"""
import pytest

pytest.importorskip("sklearn")
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from fastbp.sklearn import EXPECTED_FAILED_CHECKS, MLPClassifier, MLPRegressor  # noqa: E402

# small networks and few epochs keep the suite quick; the checks' data sets are tiny
ESTIMATORS = [MLPClassifier(hidden_layer_sizes=(8,), max_iter=60, random_state=0,
                            learning_rate_init=0.01),
              MLPRegressor(hidden_layer_sizes=(8,), max_iter=60, random_state=0,
                           learning_rate_init=0.01)]


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
