"""scikit-learn: LinearRegression, QuantileRegressor (HiGHS), HuberRegressor, SGDRegressor."""
from __future__ import annotations

import warnings

import numpy as np

from .base import Peer


class _Sklearn(Peer):
    def _fit(self, est, X, y):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning: the objective column shows it
            est.fit(X, y)
        self.info = {k: int(np.max(getattr(est, k))) for k in ("n_iter_",) if hasattr(est, k)}
        return np.asarray(est.coef_, dtype=np.float64).reshape(-1), float(np.ravel(est.intercept_)[0])


class LinearRegression(_Sklearn):
    name = "sklearn LinearRegression"

    losses = ("squared",)

    def estimate_seconds(self, problem):
        return 3.5 * problem.n * problem.p ** 2 / (1e7 * 100)  # issue 3: 3.5 s on 10M x 10

    def fit(self, X, y, problem):
        from sklearn.linear_model import LinearRegression as LR
        return self._fit(LR(), X, y)


class QuantileRegressor(_Sklearn):
    name = "sklearn QuantileRegressor(highs)"
    slow = True

    losses = ("absolute", "quantile")

    def estimate_seconds(self, problem):
        # issue 3: 7.9 s on 10k x 10, 691 s on 100k x 10 (about n^1.94)
        return 7.9 * (problem.n / 1e4) ** 1.94 * (problem.p / 10)

    def fit(self, X, y, problem):
        from sklearn.linear_model import QuantileRegressor as QR
        return self._fit(QR(quantile=problem.tau, alpha=0.0, solver="highs"), X, y)


class HuberRegressor(_Sklearn):
    name = "sklearn HuberRegressor"

    losses = ("huber_scale",)

    def estimate_seconds(self, problem):
        return 3.8 * problem.n * problem.p / 1e7  # issue 3: 3.8 s on 1M x 10

    def fit(self, X, y, problem):
        from sklearn.linear_model import HuberRegressor as HR
        est = HR(epsilon=problem.epsilon, alpha=0.0)
        out = self._fit(est, X, y)
        self.info["scale"] = float(est.scale_)
        return out


class SGDRegressor(_Sklearn):
    """Plain per-sample SGD on the squared loss, no penalty, for ``epochs`` passes."""

    name = "sklearn SGDRegressor"

    def __init__(self, epochs: int = 1):
        super().__init__()
        self.epochs = epochs

    losses = ("squared",)

    def fit(self, X, y, problem):
        from sklearn.linear_model import SGDRegressor as SGD
        return self._fit(SGD(penalty=None, max_iter=self.epochs, tol=None, shuffle=True, random_state=0), X, y)
