"""From an interior-point solution to the answer: the vertex it sits near (polish), the dual bound,
the certificate and the :class:`~gradfit.solvers.base.FitResult`, shared by the in-memory and the
streamed interior point."""
from __future__ import annotations

import time

import numpy as np
import torch
from torch import Tensor

from gradfit.problem.objective import GAP_FLOOR, Objective, relative_gap
from gradfit.solvers.base import FitResult, Settings
from gradfit.solvers.history import History
from gradfit.solvers.ipm.design import Design
from gradfit.solvers.ipm.lp import pinball_sum


def independent(rows: np.ndarray, need: int, rank_tol: float = 1e-9) -> list[int]:
    """Greedily the positions of ``rows`` (in order) linearly independent of those already picked,
    up to ``need`` (Gram-Schmidt with a second pass for orthogonality)."""
    basis = np.empty((0, rows.shape[1]))
    chosen: list[int] = []
    for i, z in enumerate(rows):
        res = z - basis.T @ (basis @ z)
        res = res - basis.T @ (basis @ res)
        nz = float(np.sqrt(res @ res))
        if nz > rank_tol * max(float(np.sqrt(z @ z)), 1e-300):
            basis = np.vstack([basis, res / nz])
            chosen.append(i)
            if len(chosen) == need:
                break
    return chosen


def smallest(v: Tensor, k: int) -> Tensor:
    """Indices of the k smallest values of the 1-D ``v``, smallest first (``torch.topk(largest=False)``).

    On many rows (topk's selection slows down past the cache: 43 ms on 3M rows, 2 ms on 300k): topk on
    the rows at most a threshold that about 8k rows of a strided sample of 16k undercut (one compare over
    v, 11 ms on 3M rows); on all of v when fewer than k get through."""
    n = v.numel()
    k = min(k, n)
    if n < (1 << 19) or n < 64 * k:
        return torch.topk(v, k, largest=False, sorted=True).indices
    sample = v[::n // 16384]
    j = min(sample.numel(), (8 * k * sample.numel()) // n + 8)
    idx = torch.nonzero(v <= torch.kthvalue(sample, j).values).squeeze(1)
    if idx.numel() < k:
        return torch.topk(v, k, largest=False, sorted=True).indices
    return idx[torch.topk(v[idx], k, largest=False, sorted=True).indices]


def independent_rows(Z: Tensor, order: Tensor, rank_tol: float = 1e-9) -> list[int]:
    """Greedily pick rows of Z in ``order`` that are linearly independent of those already picked.
    (A few dozen rows of q values: numpy, whose per-operation cost is a tenth of torch's here.)"""
    q = Z.shape[1]
    idx = order.tolist()
    rows = Z[order].detach().to("cpu", torch.float64).numpy() if len(idx) else np.empty((0, q))
    return [idx[j] for j in independent(rows, q, rank_tol)]


def dual_value(Z: Tensor, y: Tensor, u: Tensor, a: Tensor, tau: float, beta: Tensor) -> float:
    """Lower bound on min P from a box-feasible dual ``a``: y'd - |beta|*|Z'd| with d = a - (1-tau)u."""
    d = a - (1.0 - tau) * u
    return _bound(float(y @ d), Z.T @ d, beta)


def _bound(yd: float, Zd: Tensor, beta: Tensor) -> float:
    """:func:`dual_value` from its products ``y'd`` and ``Z'd`` (the infeasibility taken 1% larger)."""
    return yd - float(Zd.norm()) * float(beta.norm()) * 1.01


def polish(Z: Tensor, y: Tensor, u: Tensor, tau: float, beta: Tensor, a_ipm: Tensor):
    """Vertex from the q smallest independent residuals; returns (beta, P, lower bound D)."""
    r = y - Z @ beta
    p_ipm = float(pinball_sum(r, u, tau))
    a_box = torch.minimum(a_ipm.clamp_min(0.0), u)
    best = (beta, p_ipm, dual_value(Z, y, u, a_box, tau, beta))
    q = Z.shape[1]
    cand = smallest(r.abs(), 4 * q + 10)
    h = independent_rows(Z, cand)
    if len(h) < q:
        return best
    h_idx = torch.tensor(h, device=Z.device)
    Zh = Z[h_idx]
    try:
        beta_v = torch.linalg.solve(Zh, y[h_idx])
    except RuntimeError:
        return best
    r_v = y - Z @ beta_v
    p_v = float(pinball_sum(r_v, u, tau))
    thr = 1e-10 * max(float(y.abs().max()), 1.0)
    a = torch.where(r_v > thr, u, a_box).masked_fill_(r_v < -thr, 0.0)
    a[h_idx] = 0.0
    # the vertex's dual: a fixed off the basis rows h, a_h from Z'a = (1-tau) Z'u; with d = a - (1-tau) u
    # (a_h = 0 in it) that is Zh' a_h = -Z'd, and the bound's products then change on the rows h alone
    d = a - (1.0 - tau) * u
    Zd = Z.T @ d
    a_h = torch.linalg.solve(Zh.T, -Zd)
    slack = 1e-9 * u[h_idx]
    if bool((a_h >= -slack).all() and (a_h <= u[h_idx] + slack).all()):
        a_h = torch.minimum(a_h.clamp_min(0.0), u[h_idx])
        d_v = _bound(float(y @ d) + float(y[h_idx] @ a_h), Zd + Zh.T @ a_h, beta_v)
    else:
        d_v = best[2]
    lower = max(best[2], d_v)
    if p_v <= p_ipm:
        return beta_v, p_v, lower
    return beta, p_ipm, lower


def l1_rows(D: Design, l1: float, weight_sum: float, scale: float):
    """The LP rows of an L1 penalty: ``l1*|w_j| = l1/sd_j * (rho(v_j) + rho(-v_j))`` in the LP's units
    (times ``weight_sum/scale``); None without one."""
    if l1 <= 0:
        return None
    k = D.k
    E = torch.zeros(2 * k, k + int(D.intercept), dtype=D.dtype, device=D.device)
    idx = torch.arange(k, device=D.device)
    E[idx, idx], E[k + idx, idx] = 1.0 / D.sd, -1.0 / D.sd
    if D.T is not None:
        E = E @ D.T
    return (E, torch.zeros(2 * k, dtype=D.dtype, device=D.device),
            torch.full((2 * k,), l1 * weight_sum / scale, dtype=D.dtype, device=D.device))


def vertex(Zr: Tensor, yr: Tensor, ur: Tensor, tau: float, beta: Tensor, dual: Tensor, polish_on: bool):
    """(beta, P on these rows, dual lower bound) for the last reduced LP, polished to a vertex."""
    if polish_on:
        return polish(Zr, yr, ur, tau, beta, dual)
    lower = dual_value(Zr, yr, ur, torch.minimum(dual.clamp_min(0.0), ur), tau, beta)
    return beta, float(pinball_sum(yr - Zr @ beta, ur, tau)), lower


def conclude(name: str, objective: Objective, settings: Settings, D: Design, beta: Tensor, p_val: float,
             lower: float, zero_sum: float, weight_sum: float, scale: float, n_iter: int, t0: float,
             info: dict) -> FitResult:
    """The certificate ``gap = (P - D) / P`` (``P`` floored as in :meth:`Objective.gap_scale`) and
    beta mapped back to ``theta = [w, b]`` in the data's units."""
    lower = max(lower, 0.0)  # the objective is never negative
    denom = max(p_val, GAP_FLOOR * zero_sum)
    gap = relative_gap(p_val, lower, denom) if denom > 0 else 0.0
    if D.T is not None:
        beta = D.T @ beta
    p = objective.n_features
    w_used = beta[:D.k] / D.sd
    w = torch.zeros(p, dtype=torch.float64, device=D.device)
    w[info.pop("used")] = w_used
    b = beta[D.k] - D.mu @ w_used if objective.fit_intercept else torch.zeros((), dtype=torch.float64,
                                                                              device=D.device)
    theta = torch.cat([w, b.reshape(1)]).to(objective.dtype)
    value = scale * p_val / weight_sum
    history = History()
    history.append(value, theta.tolist() if settings.record_path else None, gap, time.perf_counter() - t0)
    if settings.on_epoch is not None:
        settings.on_epoch(n_iter, value, theta)
    converged = gap <= settings.tol
    msg = (f"LP optimum certified to relative gap {gap:.2e}" if converged else
           f"interior point stopped at relative gap {gap:.2e} > tol {settings.tol:g}")
    q, full_rank = D.shape[1], D.k + int(objective.fit_intercept)
    if q < full_rank:
        msg += (f"; the design is numerically singular (rank {q} of {full_rank}): "
                "coefficients along its null directions were set to 0")
    info.update({"whitened": D.T is not None, "rank": q, "full_rank": full_rank})
    return FitResult(theta, converged, n_iter, history, name, gap=gap, message=msg, info=info)
