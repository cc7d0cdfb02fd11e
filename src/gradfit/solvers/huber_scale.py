"""Huber regression with a threshold relative to a scale of the residuals (``Huber(scale=...)``).

``scale="joint"`` is scikit-learn's ``HuberRegressor``: ``w``, ``b`` and the scale ``sigma > 0``
minimize together (Owen 2007, "A robust hybrid of lasso and ridge regression")::

    G(w, b, sigma) = sum_i s_i (sigma + sigma H(r_i / sigma)) / sum_i s_i + l2/2 ||w||^2,
    H(z) = z^2 (|z| <= delta), 2 delta |z| - delta^2 otherwise,

scikit-learn's objective divided by the weight sum (their ``epsilon`` is ``delta``, their
``alpha`` is ``l2 * sum_i s_i / 2``). ``G`` is jointly convex, so the profile
``g(sigma) = min_{w,b} G`` is convex in ``sigma``; for a fixed ``sigma`` the inner problem is the
fixed-threshold Huber fit at ``delta * sigma`` with ridge ``l2 * sigma / 2`` (``G = sigma +
2 F / sigma``), solved exactly by :func:`gradfit.solvers.newton.minimize`, and
``g'(sigma) = 1 - mean_s(clip(r / sigma, -delta, delta)^2)``. The outer loop brackets the root of
``g'`` (steps of 8x from the least-squares scale) and closes the bracket by the Illinois method on
``log sigma``; every step is scale-equivariant, so ``(2X, 2y)`` gives twice the scale exactly.
The certificate is the gap to the lower bound of ``g`` from its tangents at the bracket's ends.
When ``g`` still rises at ``1e-9`` times the starting scale, its infimum is the limit
``sigma -> 0`` (the least-absolute-deviation fit with the ridge); the fit stops there, with the
gap ``g'(sigma) sigma`` (convexity) and ``info["scale_at_bound"] = 1``.

``scale="mad"`` is statsmodels' ``RLM(M=HuberT(t=delta)).fit(scale_est="mad")``: the fixed
point of ``sigma = median|r| / 0.6745`` and the Huber fit of ``sum_i s_i rho_delta(r_i / sigma)``
(+ ridge), by alternating the two (as RLM's IRLS does) with the exact inner fit. Its median needs
every residual in memory (n floats).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from gradfit.numerics.passes import F64
from gradfit.problem.objective import GAP_FLOOR, Objective
from gradfit.solvers.base import FitResult, Settings, SolverMismatch
from gradfit.solvers.loop import EpochLoop
from gradfit.solvers.huber_newton import HuberPass, minimize

INNER_STEPS = 200
INNER_TARGET = 1e-12
BOUND = 1e-9  # the smallest scale tried, relative to the starting one
MAD_C = 0.6744897501960817  # Phi^-1(3/4): MAD / MAD_C estimates a normal sd


def _relative(value: float) -> float:
    return max(abs(value), 1e-300)


class _Profile:
    """``g(sigma)`` and ``g'(sigma)`` by the exact inner fit.

    The inner minimizer is affine in ``sigma`` while the set of rows inside the zone (and the
    signs outside) stays the same, so the start of each inner fit is the line through the last two
    minimizers at the new ``sigma`` when that is better than the last minimizer itself: Newton then
    starts at (or next to) the answer, even when the zone shrinks many-fold.
    """

    def __init__(self, objective: Objective, v0: torch.Tensor | None):
        self.eps, self.l2 = float(objective.loss.delta), float(objective.penalty.l2)
        self.f = HuberPass(objective, self.eps, 0.0)
        self.v, self.evaluations, self.steps = v0, 0, 0
        self.solved: list[tuple[float, torch.Tensor]] = []

    def _start(self, sigma: float) -> torch.Tensor:
        if len(self.solved) < 2:
            return self.v
        (s1, v1), (s2, v2) = self.solved[-2:]
        if s1 == s2:
            return self.v
        line = v2 + (v2 - v1) * ((sigma - s2) / (s2 - s1))
        return line if self.f(line)[0] < self.f(self.v)[0] else self.v

    def __call__(self, sigma: float) -> tuple[float, float, torch.Tensor]:
        f = self.f
        f.delta, f.l2 = self.eps * sigma, self.l2 * sigma / 2
        run = minimize(f, self._start(sigma), INNER_STEPS, INNER_TARGET, _relative)
        self.v, self.evaluations, self.steps = run.v, self.evaluations + 1, self.steps + run.steps
        self.solved.append((sigma, run.v))
        value = sigma + 2.0 * run.value / sigma
        inner = 2.0 * run.gap * abs(run.value) / sigma  # the inner fit's gap in units of G
        return value, 1.0 - f.psi2 / (sigma * sigma), run.v, inner


def _tangent_gap(lo, hi, best: float) -> float:
    """``best - min_sigma max(tangent at lo, tangent at hi)``: a bound on ``best - g*`` (g convex)."""
    (a, ga, da), (b, gb, db) = lo[:3], hi[:3]
    if not (da < 0 < db):
        return float("inf") if da < 0 or db > 0 else 0.0
    # the tangents meet where ga + da (s - a) = gb + db (s - b)
    s = (gb - ga + da * a - db * b) / (da - db)
    return max(best - (ga + da * (s - a)), 0.0)


def joint(solver, objective: Objective, settings: Settings, theta0: torch.Tensor) -> FitResult:
    s = settings
    start, mean_sq = solver.start(objective, theta0)
    prof = _Profile(objective, None)
    prof.v = solver.centred(prof.f, start)
    y_size = _residual_rms(objective, torch.zeros_like(start))  # the zero model's size: floors, fallbacks
    relative = lambda value: max(abs(value), GAP_FLOOR * y_size, 1e-300)  # noqa: E731  (as Objective.gap_scale)
    sigma = s.options.scale0
    warm = sigma is not None and float(sigma) > 0
    ls_scale = math.sqrt(mean_sq) if mean_sq == mean_sq and mean_sq >= 0 else _residual_rms(objective, start)
    if ls_scale <= 1e-6 * y_size:  # the value from the moments cancels to ~1e-15 y^2: measure the residuals
        ls_scale = _residual_rms(objective, start, zero=0.0)
    interpolates = max(1e-12, 10 * torch.finfo(objective.dtype).eps)  # residuals at the data's rounding
    if warm:
        sigma = float(sigma)
        floor = sigma * BOUND
    elif ls_scale <= interpolates * y_size and objective.penalty.l2 == 0:
        return _interpolant(solver, objective, s, prof, ls_scale, y_size, relative)
    elif ls_scale <= 1e-12 * y_size:  # least squares interpolates: so does Huber, and g is least at sigma -> 0
        sigma = floor = 1e-15 * y_size
    else:
        sigma, floor = ls_scale, ls_scale * BOUND
    loop = EpochLoop(s, solver.name)
    theta = lambda v: solver.to_theta(prof.f, v, objective.dtype)  # noqa: E731

    point = (sigma, *prof(sigma))
    best, lo, hi = point, None, None
    if s.options.scale0 is not None:  # a warm start: is it already the optimum?
        for h in (-1e-7, 1e-7):
            probe = (sigma * (1 + h), *prof(sigma * (1 + h)))
            lo, hi = (probe, hi) if probe[2] < 0 else (lo, probe)
        prof.v = point[3]
    it, gap, at_bound, message = 0, float("inf"), False, f"stopped at the iteration limit ({s.epochs})"
    w_lo = w_hi = jump = 1.0
    side = 0
    while True:
        bracketed = lo is not None and hi is not None
        if point[2] < 0:
            if lo is None or point[0] > lo[0]:
                lo = point
            if bracketed:  # Illinois: an end kept twice in a row counts half
                w_lo, w_hi, side = 1.0, w_hi * 0.5 if side == -1 else w_hi, -1
        else:
            if hi is None or point[0] < hi[0]:
                hi = point
            if bracketed:
                w_lo, w_hi, side = w_lo * 0.5 if side == 1 else w_lo, 1.0, 1
        if point[1] <= best[1]:
            best = point
        if lo is not None and hi is not None:
            gap = (_tangent_gap(lo, hi, best[1]) + max(lo[4], hi[4], best[4])) / relative(best[1])
        elif lo is None and hi[0] <= floor:  # g rises all the way down: its infimum is at sigma -> 0
            at_bound, best = True, hi
            gap = (hi[2] * hi[0] + hi[4]) / relative(hi[1])
        loop.record(it, best[1], theta(best[3]), gap)
        # one more cheap step buys many digits (superlinear): stop early only where the start is good
        if gap <= (s.tol if it == 0 else min(s.tol, 1e-12)) or at_bound:
            break
        if it >= s.epochs:
            break
        it += 1
        if lo is None:  # steps of 8x (the minimizer is affine in sigma between zone changes: cheap)
            jump = 8.0
            nxt = max(hi[0] / jump, floor)
        elif hi is None:
            nxt = lo[0] * 8
        else:
            la, lb = math.log(lo[0]), math.log(hi[0])
            fa, fb = lo[2] * w_lo, hi[2] * w_hi
            t = la - fa * (lb - la) / (fb - fa)
            nxt = math.exp(min(max(t, la + 1e-6 * (lb - la)), lb - 1e-6 * (lb - la)))
            if not lo[0] < nxt < hi[0]:  # the bracket is as narrow as floats allow
                break
        point = (nxt, *prof(nxt))
    converged = gap <= s.tol
    if converged:
        message = ("converged (the scale's infimum is 0: the least-absolute-deviation limit)" if at_bound
                   else "converged (certified by the tangents of the convex profile in the scale)")
    sigma = best[0]
    return FitResult(theta(best[3]), converged, it, loop.history, solver.name, gap=gap, message=message,
                     info={"scale": sigma, "scale_at_bound": int(at_bound), "outer_evaluations": prof.evaluations})


def _interpolant(solver, objective: Objective, s: Settings, prof: _Profile, rms: float, y_size: float,
                 relative) -> FitResult:
    """The least-squares fit interpolates the data (its residuals are 0 at float precision): it is the joint
    Huber fit too. ``G >= 0`` and ``G(interpolant, sigma) -> 0`` as ``sigma -> 0``, so its gap is ``G`` at
    ``sigma = rms(r)`` (one pass). (The scale search would shrink sigma with inner fits that cannot reach a
    relative decrement of 1e-12 on residuals of 1e-16: minutes for 30 rows.)"""
    sigma = rms if rms > 0 else 1e-15 * y_size
    f = prof.f
    f.delta, f.l2 = prof.eps * sigma, 0.0
    value = sigma + 2.0 * float(f(prof.v)[0]) / sigma
    gap = value / relative(value)
    loop = EpochLoop(s, solver.name)
    theta = solver.to_theta(f, prof.v, objective.dtype)
    loop.record(0, value, theta, gap)
    converged = gap <= s.tol
    message = ("converged (the least-squares fit interpolates the data, so the scale is 0 at float precision)"
               if converged else f"the least-squares fit interpolates the data to {rms:.1e}: the scale's infimum "
               "is 0, gap measured at the residuals' size")
    return FitResult(theta, converged, 0, loop.history, solver.name, gap=gap, message=message,
                     info={"scale": sigma, "scale_at_bound": 1, "outer_evaluations": 1})


def _residual_rms(objective: Objective, theta: torch.Tensor, zero: float = 1.0) -> float:
    """sqrt(sum_i s_i r_i^2 / sum_i s_i) at ``theta``: one pass, combined across processes (``zero`` when
    it is 0)."""
    th = theta.to(objective.dtype)
    sums = torch.zeros(2, dtype=F64)
    full = objective.data.full_batch()
    for b in [full] if full is not None else objective.data:
        r = (b.y - objective.predict(b.X, th)).to("cpu", F64)
        s = torch.ones_like(r) if b.weight is None else b.weight.to("cpu", F64)
        sums += torch.stack([s @ (r * r), s.sum()])
    sums = objective.data.allreduce(sums.to(objective.device)).cpu()
    rms = math.sqrt(float(sums[0] / sums[1])) if float(sums[1]) > 0 else 1.0
    return rms if rms > 0 else zero  # y == 0: any positive size


def _residuals(objective: Objective, theta: torch.Tensor) -> np.ndarray:
    """All residuals at ``theta`` (one pass; n floats in memory)."""
    th = theta.to(objective.dtype)
    full = objective.data.full_batch()
    parts = [full] if full is not None else objective.data
    return np.concatenate([(b.y - objective.predict(b.X, th)).detach().to("cpu", F64).numpy() for b in parts])


def mad(objective: Objective, settings: Settings, theta0: torch.Tensor, solver) -> FitResult:
    """statsmodels RLM's Huber M-estimate with the MAD scale (see the module docstring)."""
    s = settings
    if objective.data.total_rows() != objective.data.n_rows:
        raise SolverMismatch("huber_scale='mad' needs every residual in one process for its median; use the "
                             "joint scale (the default) across processes")
    eps, l2 = float(objective.loss.delta), float(objective.penalty.l2)
    start, _ = solver.start(objective, theta0)
    f = HuberPass(objective, eps, 0.0)
    v = solver.centred(f, start)
    loop = EpochLoop(s, solver.name)
    sigma = float(np.median(np.abs(_residuals(objective, start)))) / MAD_C
    converged, gap, it, value = False, float("nan"), 0, float("nan")
    message = f"stopped at the iteration limit ({s.epochs})"
    for it in range(s.epochs + 1):
        if not sigma > 0:
            message = "the scale is 0: more than half the residuals are 0 (the fit interpolates them)"
            break
        f.delta, f.l2 = eps * sigma, l2 * sigma * sigma
        run = minimize(f, v, INNER_STEPS, INNER_TARGET, _relative)
        v, value = run.v, run.value / (sigma * sigma)
        new = float(np.median(np.abs(_residuals(objective, solver.to_theta(f, v, F64))))) / MAD_C
        change = abs(new - sigma) / max(sigma, 1e-300)
        gap = max(change, run.gap)  # the fixed point's residual: no objective is minimized jointly
        loop.record(it, value, solver.to_theta(f, v, objective.dtype), gap)
        sigma = new
        if change <= min(s.tol, 1e-12) or (it == 0 and change <= s.tol):
            converged, message = True, "converged (the MAD scale is a fixed point)"
            break
    return FitResult(solver.to_theta(f, v, objective.dtype), converged, it, loop.history, solver.name, gap=gap,
                     message=message, info={"scale": sigma})


def solve(solver, objective: Objective, settings: Settings, theta0: torch.Tensor, mode: str) -> FitResult:
    if mode == "joint":
        return joint(solver, objective, settings, theta0)
    if mode == "mad":
        return mad(objective, settings, theta0, solver)
    raise ValueError(f"unknown huber scale {mode!r}; choose joint, mad or absolute")


__all__ = ["solve", "joint", "mad"]
