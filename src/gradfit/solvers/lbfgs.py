"""L-BFGS (``torch.optim.LBFGS`` with a strong Wolfe line search) for smooth losses with an L2 penalty.

It minimizes the same ``F(w, b) = sum_i s_i rho(y_i - x_i.w - b) / sum_i s_i + l2/2 ||w||^2`` as every
solver, but over standardized parameters ``phi`` (``w = phi_w / scale``, ``b = phi_b - mean . w``),
which is the fit on centred, unit-variance features: the conditioning then depends on the
correlation of the columns only, not on their units. One iteration = one L-BFGS step (its line
search may read the data more than once); the history records the accepted points.

Stops when the certified relative gap (against the exact/Newton optimum) is at most ``tol``, or
when a step no longer moves the parameters; where no reference optimum exists, when the largest
standardized gradient entry is below ``tol * max(|F|, 1e-12)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from gradfit.problem.objective import Objective
from gradfit.numerics.moments import column_scales
from gradfit.solvers.coordinates import Coordinates
from gradfit.solvers.base import FitResult, Options, Settings, Solver
from gradfit.solvers.loop import EpochLoop
from gradfit.solvers.newton import Newton
from gradfit.solvers.registry import register


class _Memo:
    """Closure evaluations keyed by the exact parameter values, so restarting ``step()`` at the
    point the last line search accepted costs no extra pass over the data."""

    def __init__(self, size: int = 32):
        self.items: list[tuple[Tensor, Tensor, Tensor]] = []
        self.size = size
        self.passes = 0

    def get(self, phi: Tensor):
        for key, value, grad in reversed(self.items):
            if torch.equal(key, phi):
                return value, grad
        return None

    def put(self, phi: Tensor, value: Tensor, grad: Tensor) -> None:
        self.items.append((phi.clone(), value, grad))
        self.passes += 1
        del self.items[:-self.size]


@register
class LBFGS(Solver):
    """L-BFGS on standardized parameters; ``lr`` scales the first trial step (default 1)."""

    name = "lbfgs"
    losses = ("squared", "huber")
    needs_smooth_loss = True
    penalties = ("none", "l2")
    runs_distributed = True

    @dataclass(frozen=True)
    class Options(Options):
        """``history_size``: curvature pairs L-BFGS keeps (default 20)."""

        history_size: int = 20

    def solve(self, objective: Objective, settings: Settings, theta0: Tensor) -> FitResult:
        s = settings
        mean, scale = column_scales(objective.data, centered=objective.fit_intercept)
        change = Coordinates(mean.to(objective.dtype), scale.to(objective.dtype))
        if objective.loss.name == "huber" and bool((theta0 == 0).all()):
            # from the least-squares fit: where every residual is an outlier Huber is linear and
            # the curvature pairs of L-BFGS carry no information
            theta0 = Newton.start(objective, theta0)[0].to(objective.dtype)
        phi = change.to_working(theta0.detach().clone()).requires_grad_(True)
        memo = _Memo()
        intercept = objective.fit_intercept

        def closure():
            hit = memo.get(phi.detach())
            if hit is None:
                value, g = objective.value_and_grad(change.to_original(phi.detach()))
                g = change.pull_back(g)
                if not intercept:
                    g[-1] = 0.0
                memo.put(phi.detach(), value, g)
                hit = (value, g)
            phi.grad = hit[1].clone()
            return hit[0]

        opt = torch.optim.LBFGS([phi], lr=1.0 if s.lr is None else s.lr, max_iter=1,
                                history_size=s.options.history_size,
                                tolerance_grad=0.0, tolerance_change=0.0, line_search_fn="strong_wolfe")
        loop = EpochLoop(s, self.name, objective)
        value = closure()
        it, restarted = 0, False
        stop = "stopped at the iteration limit ({})".format(s.epochs)
        for it in range(s.epochs + 1):
            g = phi.grad
            if loop.record(it, float(value), change.to_original(phi.detach())):
                stop = loop.stop_reason
                break
            # without a reference optimum to certify against, a small gradient is the only stop
            if not loop.certifies and float(g.abs().max()) <= s.tol * max(abs(float(value)), 1e-12):
                stop = "the gradient is below tol"
                break
            if it == s.epochs:
                break
            before = phi.detach().clone()
            opt.step(closure)
            value = closure()
            if torch.equal(before, phi.detach()):
                if not restarted:  # the curvature pairs misled the line search: forget them once
                    opt.state.clear()
                    restarted = True
                    opt.step(closure)
                    value = closure()
                if torch.equal(before, phi.detach()):
                    stop = "no further progress at float precision"
                    break
            else:
                restarted = False
        theta = change.to_original(phi.detach())
        return FitResult(theta, loop.converged, it, loop.history, self.name, message=stop,
                         info={"passes": memo.passes})


__all__ = ["LBFGS"]
