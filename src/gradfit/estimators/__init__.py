"""scikit-learn estimators built on gradfit's fit (scikit-learn is imported only here)."""
from gradfit.estimators.linear import EstimatorConvergenceWarning, HuberRegressor, LinearRegressor, QuantileRegressor

__all__ = ["EstimatorConvergenceWarning", "HuberRegressor", "LinearRegressor", "QuantileRegressor"]
