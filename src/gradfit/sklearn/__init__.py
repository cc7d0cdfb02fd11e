"""``gradfit.sklearn``: scikit-learn's linear models under their own names, on gradfit's exact solvers.

A thin public entry; the classes live in :mod:`gradfit.estimators`. ``from gradfit.sklearn import
HuberRegressor`` gives the same model as ``from sklearn.linear_model import HuberRegressor``.
"""
from gradfit.estimators.robust import HuberRegressor, QuantileRegressor

__all__ = ["HuberRegressor", "QuantileRegressor"]
