"""``gradfit.sklearn``: scikit-learn's linear models under their own names, on gradfit's exact solvers.

A thin public entry; the classes live in :mod:`gradfit.estimators`. ``from gradfit.sklearn import
HuberRegressor`` gives the same model as ``from sklearn.linear_model import HuberRegressor``.
:func:`patch` swaps them into ``sklearn.linear_model`` for code you cannot edit; :func:`unpatch`
puts scikit-learn's back.
"""
from gradfit.estimators.coordinate_descent import ElasticNet, Lasso
from gradfit.estimators.least_squares import LinearRegression, Ridge
from gradfit.estimators.patching import patch, patched, unpatch
from gradfit.estimators.robust import HuberRegressor, QuantileRegressor

__all__ = ["ElasticNet", "HuberRegressor", "Lasso", "LinearRegression", "QuantileRegressor", "Ridge", "patch",
           "patched", "unpatch"]
