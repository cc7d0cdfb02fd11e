"""Working coordinates for gradient methods: standardized parameters and the Lipschitz bound.

``z`` are the parameters of the standardized design ``Z = [(X - mean) / sd, 1]``: ``w = z_w / sd``,
``b = z_b - mean . w``. The map is applied to the parameters, never to the data (no copy of X),
and the chain rule brings gradients back: GD on ``z`` is preconditioned GD on ``theta``.
:func:`top_eigenvalue` gives ``lambda_max(Z'SZ / sum s)`` by power iteration, one pass per iteration.
"""
from __future__ import annotations

import torch
from torch import Tensor

from gradfit.numerics.moments import column_scales, is_sparse_rows
from gradfit.problem.objective import Objective

CHUNK = 1 << 16  # rows per temporary in the moments pass


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
        """Weighted column means and standard deviations in one pass (shifted sums; temporaries of
        at most ``CHUNK`` rows, never a copy of X)."""
        p, data = objective.n_features, objective.data
        full = data.full_batch()
        if full is not None and is_sparse_rows(full.X):  # raw sums, no centred copy of the rows
            mean, sd = column_scales(data, centered=True)
            mean = mean if objective.fit_intercept else torch.zeros_like(mean)
            return cls(mean.to(objective.dtype), sd.to(objective.dtype))
        shift = None
        acc = torch.zeros(2 * p + 1, dtype=torch.float64, device=objective.device)
        for batch in objective._batches():
            for a in range(0, len(batch), CHUNK):
                X = batch.X[a:a + CHUNK].to(torch.float64)
                if shift is None:
                    shift = X[:1].mean(0)
                Xc = X - shift
                s = None if batch.weight is None else batch.weight[a:a + CHUNK].to(torch.float64)[:, None]
                Xs = Xc if s is None else Xc * s
                acc[:p] += Xs.sum(0)
                acc[p:2 * p] += (Xs * Xc).sum(0)
                acc[-1] += float(len(X)) if s is None else s.sum()
        # processes of a distributed source shifted by their own first row: move to a common shift
        has = float(shift is not None)
        shift = shift if shift is not None else torch.zeros(p, dtype=torch.float64, device=objective.device)
        common = data.allreduce(torch.cat([shift * has, shift.new_full((1,), has)]))
        if float(common[-1]) == 0:
            return cls.raw(objective)
        d = shift - common[:p] / common[-1]  # exactly 0 in one process
        acc[p:2 * p] += 2 * d * acc[:p] + acc[-1] * d * d
        acc[:p] += acc[-1] * d
        shift = shift - d
        acc = data.allreduce(acc)
        m1 = acc[:p] / acc[-1]
        var = (acc[p:2 * p] / acc[-1] - m1 * m1).clamp_min(0.0)
        sd = torch.where(var > 0, var.sqrt(), torch.ones_like(var))
        mean = m1 + shift if objective.fit_intercept else torch.zeros_like(m1)
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
