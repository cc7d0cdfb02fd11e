"""gradfit: find the line (or hyperplane) that best explains data, and show how it got there."""
from gradfit._version import __version__
from gradfit.exceptions import ConvergenceWarning, DivergenceError

__all__ = ["fit", "load", "LinearModel", "ConvergenceWarning", "DivergenceError", "__version__"]


def __getattr__(name):
    # imported on first use, so that `gradfit --help` (and Ctrl-C while it starts) need not wait for torch
    if name == "fit":
        from gradfit.api import fit
        return fit
    if name in ("LinearModel", "load"):
        from gradfit import model
        return getattr(model, name)
    if name in ("LinearRegressor", "QuantileRegressor", "HuberRegressor"):
        from gradfit import estimators
        return getattr(estimators, name)
    if name in ("LinearRegression", "Ridge", "Lasso", "ElasticNet", "sklearn"):
        import gradfit.sklearn as drop_ins
        return drop_ins if name == "sklearn" else getattr(drop_ins, name)
    raise AttributeError(f"module 'gradfit' has no attribute {name!r}")
