"""gradfit: find the line (or hyperplane) that best explains data, and show how it got there."""
from gradfit._version import __version__
from gradfit.api import fit
from gradfit.exceptions import ConvergenceWarning, DivergenceError
from gradfit.model import LinearModel, load

__all__ = ["fit", "load", "LinearModel", "ConvergenceWarning", "DivergenceError", "__version__"]


def __getattr__(name):  # the estimator imports scikit-learn conventions lazily
    if name in ("LinearRegressor", "QuantileRegressor", "HuberRegressor"):
        from gradfit import estimators
        return getattr(estimators, name)
    if name in ("LinearRegression", "Ridge", "Lasso", "ElasticNet", "sklearn"):
        import gradfit.sklearn as drop_ins
        return drop_ins if name == "sklearn" else getattr(drop_ins, name)
    raise AttributeError(f"module 'gradfit' has no attribute {name!r}")
