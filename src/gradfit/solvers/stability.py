"""The largest stable learning rate of the gradient methods, computed from the data.

Full-batch gradient descent on a loss with curvature at most ``c`` (squared: 2, Huber: 1) is
stable exactly when ``lr < 2 / L`` with ``L = c * lambda_max(D'SD / sum s)``, ``D = [X, 1]`` the
design with its intercept column: the iteration matrix ``I - lr * H`` must have every eigenvalue
inside (-1, 1). Heavy-ball momentum ``beta`` widens that to ``2 (1 + beta) / L``, Nesterov's to
``2 (1 + beta) / ((1 + 2 beta) L)``. Adam's step is bounded by ``lr`` per coordinate, so it has no
such limit; nor do the absolute and quantile losses, whose gradient is bounded.

The eigenvalue of the raw design is dominated by the column with the largest mean square, which
:func:`learning_rate_limit` names: standardizing the features removes that scale.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from gradfit.problem.objective import Objective
from gradfit.solvers.coordinates import Coordinates, top_eigenvalue


@dataclass
class LearningRateLimit:
    """``lr_max`` on the raw features and on standardized ones; ``column`` whose scale sets ``L``."""

    solver: str
    loss: str
    lipschitz: float | None
    lr_max: float | None
    lr_max_standardized: float | None
    column: str | None
    column_mean_square: float | None
    standardized: bool = False

    def advice(self, lr: float | None, style: str = "python") -> str:
        """One clause saying why and what to do; ``style`` ``python`` (keywords) or ``cli`` (flags)."""
        flag = {"python": ("lr={:.2g}", "standardize=True"), "cli": ("--lr {:.2g}", "--standardize")}[style]
        if self.lr_max is None:
            if self.loss in ("absolute", "quantile"):
                return (f"the {self.loss} loss has a bounded gradient, so each step moves the parameters by at "
                        f"most lr times the features' scale; use a smaller learning rate such as "
                        f"{flag[0].format((lr or 1.0) / 10)}")
            return f"use a smaller learning rate such as {flag[0].format((lr or 1.0) / 10)}"
        where = "" if lr is None else f"lr {lr:.3g} is {lr / self.lr_max:.3g} times "
        head = (f"{where}the stability limit of {self.solver} on this {self.loss} loss, computed from the data: "
                f"lr < {self._formula()} = {self.lr_max:.3g}")
        safe = flag[0].format(0.9 * self.lr_max)
        if self.standardized or self.column is None or self.lr_max_standardized is None:
            return f"{head}; use a smaller learning rate such as {safe}"
        return (f"{head}, set by the scale of column '{self.column}' (mean square {self.column_mean_square:.3g}); "
                f"standardize the features ({flag[1]}, then lr < {self.lr_max_standardized:.3g} is stable) "
                f"or use a smaller learning rate such as {safe}")

    def _formula(self) -> str:
        L = f"L (L = {self.lipschitz:.3g})"
        return {"momentum": f"2(1+0.9)/{L}", "nesterov": f"2(1+0.9)/((1+1.8) {L})"}.get(self.solver, f"2/{L}")


def _factor(solver: str, momentum: float) -> float | None:
    return {"sgd": 2.0, "gd": 2.0, "momentum": 2 * (1 + momentum),
            "nesterov": 2 * (1 + momentum) / (1 + 2 * momentum)}.get(solver)


def learning_rate_limit(objective: Objective, solver: str, *, standardized: bool = False,
                        momentum: float = 0.9) -> LearningRateLimit:
    """The stable learning rates of ``solver`` for ``objective`` (one power iteration per pass)."""
    names = list(objective.data.feature_names)
    bound = objective.loss.curvature_bound
    factor = _factor(solver, momentum)
    column = mean_square = None
    full = objective.data.full_batch()
    if names:
        sq = torch.zeros(len(names), dtype=torch.float64)
        for batch in ((full,) if full is not None else objective.data):
            X = batch.X.to(torch.float64).cpu()
            sq += (X * X).sum(0) if batch.weight is None else (X * X * batch.weight.cpu()[:, None]).sum(0)
        sq /= float(objective.weight_sum)
        k = int(torch.argmax(sq))
        if float(sq[k]) > 1.0:  # a column whose scale exceeds the intercept's
            column, mean_square = names[k], float(sq[k])
    if bound is None or factor is None:
        return LearningRateLimit(solver, objective.loss.name, None, None, None, column, mean_square, standardized)
    raw = Coordinates.standardized(objective) if standardized else Coordinates.raw(objective)
    L = bound * top_eigenvalue(objective, raw) + float(objective.penalty.l2 or 0.0)
    L_std = bound * top_eigenvalue(objective, Coordinates.standardized(objective)) if not standardized else L
    lr_max = factor / L if L > 0 else math.inf
    return LearningRateLimit(solver, objective.loss.name, L, lr_max, factor / L_std if L_std > 0 else math.inf,
                             column, mean_square, standardized)
