"""statsmodels: OLS and QuantReg, called as their documentation shows (add_constant, fit)."""
from __future__ import annotations

import warnings

import numpy as np

from .base import Peer, with_intercept


class OLS(Peer):
    name = "statsmodels OLS"

    losses = ("squared",)

    def estimate_seconds(self, problem):
        return 17.4 * problem.n * problem.p ** 2 / (1e6 * 1e4)  # issue 3: 17.4 s on 1M x 100

    def fit(self, X, y, problem):
        import statsmodels.api as sm
        params = sm.OLS(y, with_intercept(X)).fit().params
        return np.asarray(params[1:]), float(params[0])


class QuantReg(Peer):
    name = "statsmodels QuantReg"

    losses = ("absolute", "quantile")

    def estimate_seconds(self, problem):
        return 8.5 * problem.n * problem.p / 1e7  # issue 3: 8.5 s on 1M x 10

    def fit(self, X, y, problem):
        import statsmodels.api as sm
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # IterationLimitWarning: the objective column shows it
            res = sm.QuantReg(y, with_intercept(X)).fit(q=problem.tau)
        self.info = {"n_iter": int(getattr(res, "iterations", -1) or -1)}
        return np.asarray(res.params[1:]), float(res.params[0])
