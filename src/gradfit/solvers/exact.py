"""Exact least squares (+ ridge) from sufficient statistics in one pass.

Each batch adds to ``X'SX``, ``X'Sy``, the column sums and the weight sum (S = sample weights),
shifted by the first batch's means so the centering does not cancel digits. The normal equations
of the centered problem are solved by Cholesky in float64, falling back to an SVD least-squares
solve (minimum-norm) when the Gram matrix is ill-conditioned.
"""
from __future__ import annotations

import time

import torch

from ..objective import Objective
from ..result import History
from . import register
from .base import FitResult, Settings, Solver


def sufficient_statistics(objective: Objective):
    """One pass: (weight sum, mean x, mean y, centered X'SX, centered X'Sy, centered y'Sy)."""
    data = objective.data
    p = objective.n_features
    f64 = torch.float64
    dev = objective.device
    shift_x = shift_y = None
    sw = torch.zeros((), dtype=f64, device=dev)
    sx = torch.zeros(p, dtype=f64, device=dev)
    sy = torch.zeros((), dtype=f64, device=dev)
    xx = torch.zeros(p, p, dtype=f64, device=dev)
    xy = torch.zeros(p, dtype=f64, device=dev)
    yy = torch.zeros((), dtype=f64, device=dev)
    for batch in data:
        X, y = batch.X.to(f64), batch.y.to(f64)
        if shift_x is None:
            shift_x, shift_y = X.mean(0), y.mean()
        Xc, yc = X - shift_x, y - shift_y
        if batch.weight is None:
            sw += X.shape[0]
            Xw, yw = Xc, yc
        else:
            w = batch.weight.to(f64)
            sw += w.sum()
            Xw, yw = Xc * w[:, None], yc * w
        sx += Xw.sum(0)
        sy += yw.sum()
        xx += Xc.T @ Xw
        xy += Xc.T @ yw
        yy += yc @ yw
    if shift_x is None:
        shift_x, shift_y = torch.zeros(p, dtype=f64, device=dev), torch.zeros((), dtype=f64, device=dev)
    packed = data.allreduce(torch.cat([sw[None], sx, sy[None], xx.reshape(-1), xy, yy[None]]))
    sw, sx, sy = packed[0], packed[1:1 + p], packed[1 + p]
    xx = packed[2 + p:2 + p + p * p].reshape(p, p)
    xy, yy = packed[2 + p + p * p:2 + 2 * p + p * p], packed[-1]
    if not objective.fit_intercept:
        # raw (uncentered) moments: undo the shift exactly
        Sxx = xx + torch.outer(shift_x, sx) + torch.outer(sx, shift_x) + sw * torch.outer(shift_x, shift_x)
        Sxy = xy + shift_x * sy + sx * shift_y + sw * shift_x * shift_y
        Syy = yy + 2 * shift_y * sy + sw * shift_y * shift_y
        zero = torch.zeros(p, dtype=f64, device=dev)
        return sw, zero, zero.sum(), Sxx, Sxy, Syy
    mx, my = sx / sw, sy / sw
    # second moments around the (weighted) mean, from moments around the shift
    Sxx = xx - sw * torch.outer(mx, mx)
    Sxy = xy - sw * mx * my
    Syy = yy - sw * my * my
    return sw, mx + shift_x, my + shift_y, Sxx, Sxy, Syy


def solve_normal(Sxx: torch.Tensor, Sxy: torch.Tensor, ridge: float):
    """Solve (Sxx + ridge I) w = Sxy; returns (w, condition number, method)."""
    p = Sxx.shape[0]
    A = Sxx + ridge * torch.eye(p, dtype=Sxx.dtype, device=Sxx.device)
    if p == 0:
        return Sxy.clone(), 1.0, "cholesky"
    evals = torch.linalg.eigvalsh(A)
    cond = float(evals[-1] / evals[0]) if evals[0] > 0 else float("inf")
    if cond < 1e10:
        L, info = torch.linalg.cholesky_ex(A)
        if int(info) == 0:
            return torch.cholesky_solve(Sxy[:, None], L)[:, 0], cond, "cholesky"
    w = torch.linalg.lstsq(A.cpu(), Sxy.cpu()[:, None], driver="gelsd").solution[:, 0].to(A.device)
    return w, cond, "svd"


@register
class Exact(Solver):
    """Least squares and ridge in closed form: ``w = (X'SX + n*alpha I)^-1 X'Sy`` on centered data."""

    name = "exact"
    losses = ("squared",)
    penalties = ("none", "l2")

    def solve(self, objective: Objective, settings: Settings, theta0: torch.Tensor) -> FitResult:
        t0 = time.perf_counter()
        sw, mx, my, Sxx, Sxy, Syy = sufficient_statistics(objective)
        # F = (1/sw) * ||r||^2 + (l2/2)||w||^2  =>  (Sxx + sw*l2/2 I) w = Sxy
        ridge = float(sw) * objective.penalty.l2 / 2.0
        w, cond, method = solve_normal(Sxx, Sxy, ridge)
        b = my - mx @ w if objective.fit_intercept else torch.zeros((), dtype=w.dtype, device=w.device)
        theta = torch.cat([w, b[None]]).to(objective.dtype)
        rss = float(Syy - 2 * Sxy @ w + w @ Sxx @ w)
        value = max(rss, 0.0) / float(sw) + float(objective.penalty.value(w))
        history = History()
        history.append(value, theta.tolist(), 0.0, time.perf_counter() - t0)
        return FitResult(theta, True, 1, history, self.name, gap=0.0, message=f"solved by {method}",
                         info={"condition_number": cond, "method": method, "n_rows": float(sw)})
