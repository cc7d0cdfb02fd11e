"""scikit-learn estimators built on gradfit's fit (scikit-learn is imported only here)."""
from gradfit.estimators.linear import EstimatorConvergenceWarning, LinearRegressor
from gradfit.estimators.robust import HuberRegressor, QuantileRegressor

__all__ = ["EstimatorConvergenceWarning", "HuberRegressor", "LinearRegressor", "QuantileRegressor"]
