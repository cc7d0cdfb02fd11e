"""Proximal gradient (FISTA) for smooth losses with ridge, lasso or elastic-net penalties.

Minimizes ``F(w, b) = sum_i s_i rho(y_i - x_i.w - b) / sum_i s_i + l1 ||w||_1 + l2/2 ||w||^2``
for a smooth ``rho`` (squared, Huber). Every iteration is one pass through the batch interface,
so streamed data works. Details:

* Coordinates are standardized internally (``v_j = w_j sd_j``, intercept absorbs the centring);
  the penalty is rescaled per coordinate (``l1/sd_j |v_j| + l2/(2 sd_j^2) v_j^2``), so the problem
  is exactly the same and results are reported in original units.
* The step is ``1/L`` with ``L = sup rho'' * lambda_max`` of the standardized second-moment
  matrix, computed from one extra pass: an exact Lipschitz bound, so no line search is needed.
* Momentum restarts when it points uphill (O'Donoghue & Candes' gradient restart).
* Squared loss with an intercept: the standardized intercept is the weighted mean of ``y`` (its
  exact optimum, since the columns are centred), not iterated.
* Stopping rule: the duality gap (:mod:`.duality`) at the evaluated point, relative to the
  objective, below ``min(tol, 1e-14)`` or no longer improving once below ``tol``
  (:class:`.duality.GapProgress`).
* One torch thread unless the ``threads`` option says otherwise (see :func:`.base.single_threaded`).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from gradfit.problem.derivatives import soft_threshold
from gradfit.problem.objective import Objective
from gradfit.solvers.coordinates import Coordinates
from gradfit.solvers.base import FitResult, Settings, Solver, ThreadedOptions, single_threaded
from gradfit.solvers.loop import EpochLoop
from gradfit.solvers.duality import GapProgress, data_pass, gap_from_pass, weighted_covariance
from gradfit.solvers.registry import register


def lipschitz(loss, cov: Tensor, scale: Tensor, fit_intercept: bool) -> float:
    """sup rho'' * lambda_max(standardized second moments, with the intercept's 1 when fitted)."""
    M = cov / torch.outer(scale, scale)
    top = float(torch.linalg.eigvalsh(M)[-1]) if M.numel() else 0.0
    return loss.curvature_bound * max(top, 1.0 if fit_intercept else top, 1e-300)


def penalty_prox(z: Tensor, step: float, l1_w: Tensor, l2_w: Tensor) -> Tensor:
    """argmin_v ||v - z||^2/(2 step) + sum l1_w|v| + l2_w/2 v^2, coordinate-wise (intercept untouched)."""
    out = z.clone()
    v = z[:-1]
    out[:-1] = soft_threshold(v, step * l1_w) / (1.0 + step * l2_w)
    return out


@register
class ProximalGradient(Solver):
    """FISTA with gradient restart; stops when the duality gap (computed from the same pass as
    the gradient) is below ``tol``; ``epochs`` caps the iterations."""

    name = "prox"
    losses = ("squared", "huber")
    needs_smooth_loss = True
    penalties = ("l2", "l1", "elasticnet")
    runs_distributed = True
    Options = ThreadedOptions

    @single_threaded
    def solve(self, objective: Objective, settings: Settings, theta0: Tensor) -> FitResult:
        data, loss, pen = objective.data, objective.loss, objective.penalty
        fit_intercept = objective.fit_intercept
        # squared loss, centred columns: the intercept's optimum is exactly the weighted mean of y
        exact_b = loss.name == "squared" and fit_intercept
        S, mean, cov = weighted_covariance(data, fit_intercept, with_y=exact_b)
        if exact_b:
            y_mean, mean, cov = float(mean[-1]), mean[:-1], cov[:-1, :-1]
        diag = cov.diagonal().clamp_min(0.0).sqrt()
        scale = torch.where(diag > 0, diag, torch.ones_like(diag))
        coords = Coordinates(mean, scale)
        L = lipschitz(loss, cov, scale, fit_intercept)
        l1_w, l2_w = pen.l1 / scale, pen.l2 / (scale * scale)
        x_prev = coords.to_working(theta0.to(torch.float64))
        if not fit_intercept:
            x_prev[-1] = 0.0
        if exact_b:
            x_prev[-1] = y_mean
        yk, t = x_prev.clone(), 1.0
        loop = EpochLoop(settings, self.name)
        progress = GapProgress(settings.tol)
        gap, it, theta = math.inf, 0, theta0
        for it in range(settings.epochs + 1):
            theta = coords.to_original(yk)
            w, b = theta[:-1], float(theta[-1])
            st = data_pass(data, loss, w, b)
            gap, value = gap_from_pass(st, loss, pen, w, fit_intercept)
            loop.record(it, value, theta, gap)
            if progress.done(gap) or it == settings.epochs:
                break
            grad = coords.pull_back(torch.cat([-st.xd / S, st.xd.new_tensor([-st.d_sum / S if fit_intercept else 0.0])]))
            x_new = penalty_prox(yk - grad / L, 1.0 / L, l1_w, l2_w)
            if not fit_intercept:
                x_new[-1] = 0.0
            if exact_b:
                x_new[-1] = y_mean
            t_new = (1.0 + math.sqrt(1.0 + 4.0 * t * t)) / 2.0
            if float((yk - x_new) @ (x_new - x_prev)) > 0:  # momentum points uphill: restart
                t_new, yk = 1.0, x_new
            else:
                yk = x_new + ((t - 1.0) / t_new) * (x_new - x_prev)
            x_prev, t = x_new, t_new
        converged = gap <= settings.tol
        msg = (f"duality gap {gap:.2e} <= tol" if converged else
               f"stopped at the iteration limit ({settings.epochs}) with duality gap {gap:.2e}")
        return FitResult(theta.to(objective.dtype), converged, it, loop.history, self.name, gap=gap,
                         message=msg, info={"lipschitz": L})
