"""Newton's method for Huber regression, on the exact (piecewise quadratic) objective.

Fixed threshold ``delta`` (``Huber(scale="absolute")``)::

    F(w, b) = sum_i s_i rho_delta(y_i - x_i.w - b) / sum_i s_i + l2/2 ||w||^2,
    rho_delta(r) = r^2/2 (|r| <= delta), delta (|r| - delta/2) otherwise.

Each iteration is one pass over the data that returns the value, gradient and Hessian (the
Gram matrix of the rows inside the quadratic zone) at a point; the Newton step is accepted by
an Armijo backtracking search on the exact objective. Once the set of rows inside the zone stops
changing, the step lands on the exact minimizer, so the method ends after finitely many steps.
It starts from the least-squares fit (one more pass). ``gap`` is the Newton decrement
``g' H^-1 g / 2`` relative to ``|F|``, exact when the last step kept the zone unchanged; the
iteration runs until it is below ``min(tol, 1e-12)``.

A threshold relative to a scale (``scale="joint"``, scikit-learn's; ``scale="mad"``, statsmodels
RLM's) is an outer loop over that scale whose every step is this fixed-threshold fit: see
:mod:`gradfit.solvers.huber_scale`.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import Tensor

from gradfit.problem.losses import Squared
from gradfit.problem.objective import Objective
from gradfit.problem.penalties import Penalty
from gradfit.numerics.passes import F64
from gradfit.solvers import huber_scale
from gradfit.solvers.base import FitResult, Options, Settings, Solver
from gradfit.solvers.huber_newton import HuberPass, NewtonRun, minimize  # noqa: F401  (re-exported)
from gradfit.solvers.loop import EpochLoop
from gradfit.solvers.registry import REGISTRY, register


@register
class Newton(Solver):
    """Newton's method with an Armijo line search for the Huber loss (+ ridge), any scale mode."""

    name = "newton"
    losses = ("huber",)
    penalties = ("none", "l2")
    runs_distributed = True
    scaled_huber = True

    @dataclass(frozen=True)
    class Options(Options):
        """``scale0``: the starting scale of a relative-threshold fit (a warm start; default: the
        least-squares residuals' root mean square)."""

        scale0: float | None = None

    def solve(self, objective: Objective, settings: Settings, theta0: Tensor) -> FitResult:
        mode = getattr(objective.loss, "scale", "absolute")
        if mode != "absolute":
            return huber_scale.solve(self, objective, settings, theta0, mode)
        s = settings
        f = HuberPass(objective, objective.loss.delta, objective.penalty.l2)
        start, _ = self.start(objective, theta0)
        loop = EpochLoop(s, self.name)
        record = lambda it, val, v, gap: loop.record(it, val, self.to_theta(f, v, objective.dtype), gap)  # noqa: E731
        run = minimize(f, self.centred(f, start), s.epochs, min(s.tol, 1e-12), objective.gap_scale, record)
        return FitResult(self.to_theta(f, run.v, objective.dtype), run.converged, run.steps, loop.history,
                         self.name, gap=run.gap, message=run.message)

    @staticmethod
    def centred(f: HuberPass, theta: Tensor) -> Tensor:
        p, m = f.p, f.center
        return torch.cat([theta[:p], (theta[p] + m @ theta[:p]).reshape(1)]).to(F64)

    @staticmethod
    def to_theta(f: HuberPass, v: Tensor, dtype: torch.dtype) -> Tensor:
        p, m = f.p, f.center
        return torch.cat([v[:p], (v[p] - m @ v[:p]).reshape(1)]).to(dtype)

    @staticmethod
    def start(objective: Objective, theta0: Tensor) -> tuple[Tensor, float]:
        """The ridge/least-squares fit and its mean squared residual: one pass, and close to the
        Huber fit when outliers are few (``r^2/2 + l2/2 w^2`` is half of ``r^2 + l2 w^2``)."""
        exact = REGISTRY.get("exact")
        if exact is None or not bool((theta0 == 0).all()):
            return theta0.to(F64), float("nan")
        ls = Objective(Squared(), Penalty(2.0 * objective.penalty.l2, 0.0), objective.data,
                       objective.fit_intercept)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = exact.solve(ls, Settings(options=exact.Options()), theta0)
        return out.theta.to(F64), out.history.loss[-1]


__all__ = ["Newton", "HuberPass", "minimize", "NewtonRun"]
