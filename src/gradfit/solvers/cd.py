"""Cyclic coordinate descent for lasso / elastic net (and ridge) with a smooth loss.

Minimizes ``F(w, b) = sum_i s_i rho(y_i - x_i.w - b) / sum_i s_i + l1 ||w||_1 + l2/2 ||w||^2``.

* Squared loss, p <= ``gram_max`` (option, default 2000): one pass builds the centred Gram matrix
  ``G = X'SX/S`` and ``c = X'Sy/S``; each coordinate is minimized exactly,
  ``w_j = soft(c_j - (Gw)_j + G_jj w_j, l1/2) / (G_jj + l2/2)``, keeping ``Gw`` up to date
  (covariance updates), so an epoch costs O(p^2) whatever n is. Every ``anderson`` (option,
  default 5; 0 turns it off) epochs an Anderson extrapolation is tried and kept if it lowers F.
  The Gram-based duality gap steers the loop; the reported gap comes from an exact data pass.
* Otherwise (Huber, or many columns) the rows are held in memory (a streamed source is read
  once) and each coordinate takes the prox step of its own curvature bound
  ``L_j = sup rho'' * sum s x_j^2 / S`` (exact minimization for squared loss), updating the residual.

``positive`` penalties (``w >= 0``) project every coordinate step (``max(step, 0)``) and the Anderson
guesses; the gap is the one of the constrained problem (:func:`.duality.dual_gap`), with, for
non-negative least squares (no penalty), the a-priori bound ``|w*_j| <= 2 sqrt(var y / lambda_min(G))``.

Coordinate steps do not depend on column scales, so no standardization is needed. Stopping rule:
the duality gap of :mod:`.duality`, relative to the objective, below ``min(tol, 1e-14)`` or no longer
improving once below ``tol`` (:class:`.duality.GapProgress`). Runs with one torch
thread unless the ``threads`` option says otherwise (see :func:`.base.single_threaded`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from gradfit.numerics.passes import is_sparse_rows
from gradfit.problem.derivatives import soft_threshold
from gradfit.problem.objective import Objective
from gradfit.solvers.base import FitResult, Settings, Solver, ThreadedOptions, materialize, single_threaded
from gradfit.solvers.duality import GapProgress, data_pass, dual_gap, gap_from_pass, weighted_covariance
from gradfit.solvers.loop import EpochLoop
from gradfit.solvers.registry import register


def anderson(history: list[np.ndarray]) -> np.ndarray | None:
    """Anderson extrapolation of the last K+1 epoch iterates (as in skglm); None if singular."""
    A = np.stack(history, 1)
    U = np.diff(A, axis=1)
    try:
        z = np.linalg.solve(U.T @ U, np.ones(U.shape[1]))
    except np.linalg.LinAlgError:
        return None
    if not np.all(np.isfinite(z)) or z.sum() == 0:
        return None
    return A[:, 1:] @ (z / z.sum())


def gram_cd(objective: Objective, settings: Settings, theta0: Tensor, loop: EpochLoop):
    data, pen = objective.data, objective.penalty
    S, mean, cov = weighted_covariance(data, objective.fit_intercept, with_y=True)
    p = cov.shape[0] - 1
    # plain floats/numpy in the inner loop: p scalar updates per epoch, torch's per-call cost dominates
    cov, mean = cov.cpu(), mean.cpu()
    G, c, yy = cov[:p, :p].numpy(), cov[:p, p].numpy(), float(cov[p, p])
    lam1, lam2 = pen.l1 / 2.0, pen.l2 / 2.0
    w = theta0[:-1].to(torch.float64).cpu().numpy().copy()
    Gw = G @ w
    diag = np.diag(G).copy()
    mx, my = mean[:p].numpy(), float(mean[p])
    positive = pen.positive
    bound = nnls_bound(G, yy) if positive and pen.alpha == 0 else math.inf
    progress = GapProgress(settings.tol)
    threshold, exact_gap, it = progress.target / 10.0, math.inf, 0
    theta = theta0
    k_anderson = settings.options.anderson
    recent: list[np.ndarray] = []

    def f_value(v, Gv):  # (not named value: the exact pass below binds that name)
        return 0.5 * float(v @ Gv) - float(c @ v) + lam1 * float(np.abs(v).sum()) + 0.5 * lam2 * float(v @ v)

    for it in range(1, settings.epochs + 1):
        for j in range(p):
            if diag[j] <= 0.0:
                continue
            old = w[j]
            new = soft_threshold(c[j] - Gw[j] + diag[j] * old, lam1) / (diag[j] + lam2)
            if positive and new < 0.0:
                new = 0.0
            if new != old:
                Gw += G[:, j] * (new - old)
                w[j] = new
        if k_anderson > 0:  # correlated columns make plain CD crawl; extrapolation fixes most of it
            recent.append(w.copy())
            if len(recent) == k_anderson + 1:
                guess = anderson(recent)
                recent.clear()
                if guess is not None and positive:
                    guess = np.maximum(guess, 0.0)
                if guess is not None:
                    G_guess = G @ guess
                    if f_value(guess, G_guess) < f_value(w, Gw):
                        w, Gw = guess, G_guess
        wt = torch.from_numpy(w.copy()).to(objective.device)
        rr = yy - 2.0 * float(c @ w) + float(w @ Gw)
        gap, primal = dual_gap(0.5 * max(rr, 0.0), yy - float(c @ w), max(rr, 0.0),
                               torch.from_numpy(c - Gw), wt.cpu(), lam1, lam2, positive=positive, bound=bound)
        b = my - float(mx @ w) if objective.fit_intercept else 0.0
        theta = torch.cat([wt, torch.tensor([b], dtype=torch.float64, device=wt.device)])
        loop.record(it, 2.0 * primal, theta, gap)
        stalled = progress.done(gap)  # the Gram gap stopped improving (within tol)
        if gap <= threshold or it == settings.epochs or stalled:
            exact_gap, value = gap_from_pass(data_pass(data, objective.loss, wt, b), objective.loss, pen, wt,
                                             objective.fit_intercept, bound)
            loop.history.loss[-1], loop.history.gap[-1] = value, exact_gap
            if exact_gap <= progress.target or threshold < 1e-17 or (stalled and exact_gap <= settings.tol):
                break
            threshold /= 100.0  # rounding in the Gram expansion: tighten and go on
            progress = GapProgress(settings.tol)
    return theta, exact_gap, it, {"method": "gram"}


def nnls_bound(G: np.ndarray, yy: float) -> float:
    """A bound on every ``|w*_j|`` of ``min 1/2 w'Gw - c'w + yy/2`` over ``w >= 0`` (``G`` the centred
    Gram, ``yy`` the centred variance of y): ``w* = 0`` is feasible, so ``||X_c w* - y_c|| <= ||y_c||``,
    ``w*'G w* <= 4 yy`` and ``||w*|| <= 2 sqrt(yy / lambda_min)``. Infinite for a singular ``G``."""
    if G.size == 0:
        return 0.0
    eig = np.linalg.eigvalsh(G)
    lo = float(eig[0])
    if not lo > float(eig[-1]) * G.shape[0] * np.finfo(np.float64).eps:
        return math.inf
    return 2.0 * math.sqrt(max(yy, 0.0) / lo) * (1.0 + 1e-6)


def _derivative(loss, r: np.ndarray) -> np.ndarray:
    """rho'(r) of the smooth losses coordinate descent takes, in numpy (no per-call torch cost)."""
    if loss.name == "huber":
        return np.clip(r, -loss.delta, loss.delta)
    return 2.0 * r


def sparse_residual_cd(objective: Objective, settings: Settings, theta0: Tensor, loop: EpochLoop):
    """:func:`residual_cd` on the columns of a CSC copy of a sparse X: each coordinate step touches
    only its column's stored values (O(nnz_j)). The columns are not centred (that would fill them
    in); the intercept takes its own exact/curvature step after each sweep."""
    loss, pen = objective.loss, objective.penalty
    full = objective.data.full_batch()
    csc = full.X.to(torch.float64).tocsc()
    indptr, indices, vals = csc.indptr, csc.indices, csc.data
    y = full.y.to(torch.float64).cpu().numpy()
    n, p = csc.shape
    s = np.ones(n) if full.weight is None else full.weight.to(torch.float64).cpu().numpy()
    S = float(s.sum())
    w = theta0[:-1].to(torch.float64).cpu().numpy().copy()
    b = float(theta0[-1]) if objective.fit_intercept else 0.0
    r = y - csc @ w - b
    curv = loss.curvature_bound
    sq = csc.multiply(csc).T @ s
    Lj = curv * sq / S
    gap, it, theta = math.inf, 0, theta0
    for it in range(1, settings.epochs + 1):
        for j in range(p):
            if Lj[j] <= 0.0:
                continue
            a, e = indptr[j], indptr[j + 1]
            rows, xj = indices[a:e], vals[a:e]
            g = -float(xj @ (s[rows] * _derivative(loss, r[rows]))) / S
            old = w[j]
            new = soft_threshold(Lj[j] * old - g, pen.l1) / (Lj[j] + pen.l2)
            if pen.positive and new < 0.0:
                new = 0.0
            if new != old:
                r[rows] -= (new - old) * xj
                w[j] = new
        if objective.fit_intercept:
            step = float(s @ _derivative(loss, r)) / S / curv
            b += step
            r -= step
        wt = torch.from_numpy(w.copy()).to(objective.device)
        gap, value = gap_from_pass(data_pass(objective.data, loss, wt, b), loss, pen, wt, objective.fit_intercept)
        theta = torch.cat([wt, torch.tensor([b], dtype=torch.float64, device=wt.device)])
        loop.record(it, value, theta, gap)
        if gap <= settings.tol:
            break
    return theta, gap, it, {"method": "residual-sparse"}


def residual_cd(objective: Objective, settings: Settings, theta0: Tensor, loop: EpochLoop):
    loss, pen = objective.loss, objective.penalty
    full = objective.data.full_batch()
    if full is not None and is_sparse_rows(full.X):
        return sparse_residual_cd(objective, settings, theta0, loop)
    X, y, s = materialize(objective, "cd")
    S = float(s.sum())
    mean = (s @ X) / S if objective.fit_intercept else torch.zeros(X.shape[1], dtype=X.dtype, device=X.device)
    Xc = X - mean if objective.fit_intercept else X
    w = theta0[:-1].to(torch.float64).clone()
    bc = float(theta0[-1]) + float(mean @ w) if objective.fit_intercept else 0.0
    r = y - Xc @ w - bc
    curv = loss.curvature_bound
    Lj = (curv * (s @ Xc.square()) / S).tolist()
    gap, it, theta = math.inf, 0, theta0
    progress = GapProgress(settings.tol)
    for it in range(1, settings.epochs + 1):
        for j in range(X.shape[1]):
            if Lj[j] <= 0.0:
                continue
            xj = Xc[:, j]
            g = -float(xj @ (s * loss.derivative(r))) / S
            old = float(w[j])
            new = soft_threshold(Lj[j] * old - g, pen.l1) / (Lj[j] + pen.l2)
            if pen.positive and new < 0.0:
                new = 0.0
            if new != old:
                r -= (new - old) * xj
                w[j] = new
        if objective.fit_intercept:
            step = float(s @ loss.derivative(r)) / S / curv
            bc += step
            r -= step
        b = bc - float(mean @ w)
        gap, value = gap_from_pass(data_pass(objective.data, loss, w, b), loss, pen, w, objective.fit_intercept)
        theta = torch.cat([w, torch.tensor([b], dtype=torch.float64, device=w.device)])
        loop.record(it, value, theta, gap)
        if progress.done(gap):
            break
    return theta, gap, it, {"method": "residual"}


@register
class CoordinateDescent(Solver):
    """Cyclic coordinate descent; Gram/covariance updates for squared loss with few columns."""

    name = "cd"
    losses = ("squared", "huber")
    needs_smooth_loss = True
    penalties = ("l2", "l1", "elasticnet")
    runs_distributed = True  # the Gram path; the residual path refuses a sharded source (materialize)
    bounds = True  # positive=True: every coordinate step is projected onto w_j >= 0

    @dataclass(frozen=True)
    class Options(ThreadedOptions):
        """``gram_max``: most columns for the Gram path (default 2000); ``anderson``: epochs between
        Anderson extrapolations (default 5, 0: off); ``threads`` (default 1)."""

        gram_max: int = 2000
        anderson: int = 5

    @single_threaded
    def solve(self, objective: Objective, settings: Settings, theta0: Tensor) -> FitResult:
        loop = EpochLoop(settings, self.name)
        gram_max = settings.options.gram_max
        if objective.loss.name == "squared" and objective.n_features <= gram_max:
            theta, gap, it, info = gram_cd(objective, settings, theta0, loop)
        else:
            theta, gap, it, info = residual_cd(objective, settings, theta0, loop)
        converged = gap <= settings.tol
        msg = (f"duality gap {gap:.2e} <= tol" if converged else
               f"stopped at the epoch limit ({settings.epochs}) with duality gap {gap:.2e}")
        return FitResult(theta.to(objective.dtype), converged, it, loop.history, self.name, gap=gap,
                         message=msg, info=info)
