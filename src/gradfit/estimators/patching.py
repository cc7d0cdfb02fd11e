"""Swap gradfit's drop-ins into ``sklearn.linear_model`` (as scikit-learn-intelex's ``patch_sklearn`` does).

Code that does ``from sklearn.linear_model import Ridge`` *after* :func:`patch` gets gradfit's Ridge;
names imported before keep what they were bound to. :func:`unpatch` restores scikit-learn's classes.
"""
from __future__ import annotations

import contextlib
import sys

from gradfit.estimators.coordinate_descent import ElasticNet, Lasso
from gradfit.estimators.least_squares import LinearRegression, Ridge
from gradfit.estimators.robust import HuberRegressor, QuantileRegressor

OURS = {c.__name__: c for c in (LinearRegression, Ridge, Lasso, ElasticNet, QuantileRegressor, HuberRegressor)}
NAMES = tuple(OURS)
_ORIGINALS: dict[str, type] = {}


def patch(names: tuple[str, ...] | list[str] | None = None, verbose: bool = False) -> list[str]:
    """Replace scikit-learn's classes in ``sklearn.linear_model`` by gradfit's.

    Parameters
    ----------
    names : sequence of str or None
        Which of ``LinearRegression, Ridge, Lasso, ElasticNet, QuantileRegressor, HuberRegressor``
        (None: all six).
    verbose : bool
        Print one line naming what was swapped.

    Returns
    -------
    list of str
        The names now served by gradfit.
    """
    import sklearn.linear_model as lm

    chosen = list(NAMES if names is None else names)
    unknown = [n for n in chosen if n not in NAMES]
    if unknown:
        raise ValueError(f"gradfit has no drop-in for {', '.join(unknown)}; choose from {', '.join(NAMES)}")
    for name in chosen:
        _ORIGINALS.setdefault(name, getattr(lm, name))
        setattr(lm, name, OURS[name])
    if verbose:
        print(f"gradfit: sklearn.linear_model.{{{', '.join(chosen)}}} now run on gradfit", file=sys.stderr)
    return chosen


def unpatch() -> None:
    """Put scikit-learn's own classes back in ``sklearn.linear_model``."""
    import sklearn.linear_model as lm
    for name, cls in _ORIGINALS.items():
        setattr(lm, name, cls)
    _ORIGINALS.clear()


@contextlib.contextmanager
def patched(names=None):
    """``with gradfit.sklearn.patched(): ...`` patches for the block only."""
    patch(names)
    try:
        yield
    finally:
        unpatch()


__all__ = ["patch", "unpatch", "patched", "NAMES"]
