"""The one change of variables of the iterative solvers (gd, sgd..., prox, lbfgs), and the Lipschitz bound.

``z`` are the parameters of the standardized design ``Z = [(X - mean) / sd, 1]``: ``w = z_w / sd``,
``b = z_b - mean . w``. The map is applied to the parameters, never to the data (no copy of X),
and the chain rule brings gradients back: GD on ``z`` is preconditioned GD on ``theta``.
:func:`top_eigenvalue` gives ``lambda_max(Z'SZ / sum s)`` by power iteration, one pass per iteration.
"""
from __future__ import annotations

import torch
from torch import Tensor

from gradfit.numerics.moments import column_scales
from gradfit.problem.objective import Objective


class Coordinates:
    """The linear map between working coordinates ``z`` and ``theta = [w, b]`` in original units:
    ``w = z_w / sd``, ``b = z_b - mean . w``. Identity when ``mean = 0, sd = 1``."""

    def __init__(self, mean: Tensor, sd: Tensor, identity: bool = False):
        self.mean, self.sd, self.identity = mean, sd, identity

    @classmethod
    def raw(cls, objective: Objective) -> "Coordinates":
        one = torch.ones(objective.n_features, dtype=objective.dtype, device=objective.device)
        return cls(one * 0, one, identity=True)

    @classmethod
    def standardized(cls, objective: Objective) -> "Coordinates":
        """Weighted column means (zero without an intercept) and standard deviations, one pass."""
        mean, sd = column_scales(objective.data, centered=True)
        mean = mean if objective.fit_intercept else torch.zeros_like(mean)
        return cls(mean.to(objective.dtype), sd.to(objective.dtype))

    def to_original(self, z: Tensor) -> Tensor:
        if self.identity:
            return z
        w = z[:-1] / self.sd
        return torch.cat([w, (z[-1] - self.mean @ w).reshape(1)])

    def to_working(self, theta: Tensor) -> Tensor:
        if self.identity:
            return theta.clone()
        w = theta[:-1]
        return torch.cat([w * self.sd, (theta[-1] + self.mean @ w).reshape(1)])

    def pull_back(self, g: Tensor) -> Tensor:
        """Gradient with respect to ``z`` from the gradient with respect to ``theta`` (chain rule)."""
        if self.identity:
            return g
        return torch.cat([(g[:-1] - self.mean * g[-1]) / self.sd, g[-1:]])


def top_eigenvalue(objective: Objective, coords: Coordinates, iters: int = 30, rtol: float = 1e-4) -> float:
    """lambda_max of ``Z'SZ / sum s`` (Z: the working design with its intercept column) by power
    iteration, one pass over the batches per iteration."""
    p, dev, dt = objective.n_features, objective.device, objective.dtype
    v = 1.0 + torch.arange(p + 1, dtype=dt, device=dev) / (p + 1)  # deterministic, not orthogonal to e_1
    if not objective.fit_intercept:
        v[-1] = 0.0
    v /= v.norm()
    lam = 0.0
    for _ in range(iters):
        theta = coords.to_original(v)
        acc = torch.zeros(p + 1, dtype=dt, device=dev)
        for batch in objective._batches():
            u = objective.predict(batch.X, theta)
            if batch.weight is not None:
                u = u * batch.weight
            acc[:-1] += batch.X.T @ u
            acc[-1] += u.sum()
        t = coords.pull_back(objective.data.allreduce(acc)) / objective.weight_sum
        if not objective.fit_intercept:
            t[-1] = 0.0
        new = float(v @ t)
        norm = float(t.norm())
        if norm == 0.0:
            return max(new, 0.0)
        v = t / norm
        if abs(new - lam) <= rtol * abs(new):
            return new
        lam = new
    return lam
