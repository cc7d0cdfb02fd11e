"""Pure tensor math: per-residual losses, their derivatives, and the soft-threshold.

Every function takes the residual ``r = y - prediction`` (a tensor) and returns a tensor of
the same shape. Classes in :mod:`gradfit.problem.losses` only hold settings and call these.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor


def squared(r: Tensor) -> Tensor:
    """rho(r) = r**2 (the mean of it is the MSE)."""
    return r * r


def squared_d1(r: Tensor) -> Tensor:
    return 2.0 * r


def squared_d2(r: Tensor) -> Tensor:
    return torch.full_like(r, 2.0)


def absolute(r: Tensor) -> Tensor:
    """rho(r) = |r| (the mean of it is the MAE, the seed's L1 loss)."""
    return r.abs()


def absolute_d1(r: Tensor) -> Tensor:
    # sign(0) = 0 is the subgradient torch's autograd uses too.
    return r.sign()


def absolute_d2(r: Tensor) -> Tensor:
    return torch.zeros_like(r)


def huber(r: Tensor, delta: float) -> Tensor:
    """rho(r) = r**2/2 for |r| <= delta, else delta*(|r| - delta/2) (torch.nn.HuberLoss)."""
    a = r.abs()
    return torch.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


def huber_d1(r: Tensor, delta: float) -> Tensor:
    return r.clamp(-delta, delta)


def huber_d2(r: Tensor, delta: float) -> Tensor:
    return (r.abs() <= delta).to(r.dtype)


def pinball(r: Tensor, tau: float) -> Tensor:
    """rho(r) = r*(tau - 1{r < 0}): the check loss of quantile regression."""
    return torch.where(r >= 0, tau * r, (tau - 1.0) * r)


def pinball_d1(r: Tensor, tau: float) -> Tensor:
    # At r = 0 any value in [tau-1, tau] is a subgradient; the midpoint keeps tau=0.5 equal to |r|/2.
    out = torch.where(r > 0, torch.full_like(r, tau), torch.full_like(r, tau - 1.0))
    return torch.where(r == 0, torch.full_like(r, tau - 0.5), out)


def pinball_d2(r: Tensor, tau: float) -> Tensor:
    return torch.zeros_like(r)


def soft_threshold(z: Tensor | float, t: float | Tensor) -> Tensor | float:
    """argmin_x t*|x| + (x - z)**2 / 2, elementwise; a Python float in, a float out (coordinate
    descent's inner loop, where a tensor op per coordinate would cost more than the arithmetic)."""
    if isinstance(z, float):
        return math.copysign(max(abs(z) - t, 0.0), z)
    return z.sign() * (z.abs() - t).clamp_min(0.0)
