"""gradfit: find the line (or hyperplane) that best explains data, and show how it got there."""
__version__ = "0.1.0"

from .api import fit  # noqa: E402
from .model import LinearModel, load  # noqa: E402
from .solvers import ConvergenceWarning, DivergenceError  # noqa: E402

__all__ = ["fit", "load", "LinearModel", "ConvergenceWarning", "DivergenceError", "__version__"]


def __getattr__(name):  # the estimator imports scikit-learn conventions lazily
    if name in ("LinearRegressor", "QuantileRegressor", "HuberRegressor"):
        from . import estimator
        return getattr(estimator, name)
    raise AttributeError(f"module 'gradfit' has no attribute {name!r}")
