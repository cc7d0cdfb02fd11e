"""Gradient methods on any loss: SGD, momentum, Nesterov and Adam through ``torch.optim``.

One epoch is one pass over the data: a single step on the full batch (the seed's program), or one
step per mini-batch when ``batch_size`` is set. The gradient is the analytic one from the loss's
derivative (the same number autograd gives, without building a graph).
"""
from __future__ import annotations

import torch

from ..objective import Objective
from . import register
from .base import EpochLoop, FitResult, Settings, Solver

DEFAULT_LR = {"sgd": 0.01, "momentum": 0.01, "nesterov": 0.01, "adam": 0.01}


class TorchOptimizer(Solver):
    losses = None
    penalties = ("none", "l2", "l1", "elasticnet")  # the L1 part enters as a subgradient

    def make(self, theta: torch.Tensor, s: Settings) -> torch.optim.Optimizer:
        raise NotImplementedError

    def solve(self, objective: Objective, settings: Settings, theta0: torch.Tensor) -> FitResult:
        s = settings
        if s.lr is None:
            s.lr = DEFAULT_LR[self.name]
        theta = theta0.detach().clone().requires_grad_(True)
        opt = self.make(theta, s)
        loop = EpochLoop(s, self.name)
        data = objective.data
        n = data.n_rows
        minibatch = s.batch_size is not None and s.batch_size < n
        gen = torch.Generator().manual_seed(s.seed)
        epoch = 0
        for epoch in range(s.epochs):
            if not minibatch:
                value, grad = objective.value_and_grad(theta.detach())
                if loop.record(epoch, float(value), theta.detach()):
                    break
                theta.grad = grad
                opt.step()
            else:
                total, rows = 0.0, 0
                for batch in data.shuffled(s.batch_size, gen):
                    value, grad = objective.minibatch_value_and_grad(batch, theta.detach())
                    theta.grad = grad
                    opt.step()
                    total += float(value) * len(batch)
                    rows += len(batch)
                if loop.record(epoch, total / max(rows, 1), theta.detach()):
                    break
        else:
            epoch = s.epochs
            final = float(objective.value(theta.detach()))
            loop.record(epoch, final, theta.detach())
        return FitResult(theta.detach(), loop.converged, epoch, loop.history, self.name,
                         message="converged" if loop.converged else f"stopped at the epoch limit ({s.epochs})")


@register
class SGD(TorchOptimizer):
    name = "sgd"

    def make(self, theta, s):
        return torch.optim.SGD([theta], lr=s.lr)


@register
class Momentum(TorchOptimizer):
    name = "momentum"

    def make(self, theta, s):
        return torch.optim.SGD([theta], lr=s.lr, momentum=s.momentum)


@register
class Nesterov(TorchOptimizer):
    name = "nesterov"

    def make(self, theta, s):
        return torch.optim.SGD([theta], lr=s.lr, momentum=s.momentum, nesterov=True)


@register
class Adam(TorchOptimizer):
    name = "adam"

    def make(self, theta, s):
        return torch.optim.Adam([theta], lr=s.lr)
