"""Frisch–Newton interior point for the quantile-regression linear program (Koenker's rqfnb).

Quantile regression ``min_beta sum_i u_i rho_tau(y_i - z_i . beta)`` has the dual

    max_a  y'a - (1 - tau) y'u   subject to  Z'a = (1 - tau) Z'u,  0 <= a <= u,

a bounded LP ``min c'a, A a = b, 0 <= a <= u`` with ``c = -y``, ``A = Z'``. A primal-dual
interior-point method with Mehrotra's predictor-corrector solves it; the coefficients are minus
the multipliers of the equality constraints. Each iteration costs one ``Z' Q Z`` (q x q) product,
one Cholesky factorization and a few passes over n-vectors. Dense float64 rows on the CPU go to
the compiled loop (``_fnb.c``: the same iteration, fused; see :mod:`.native`); everything else, and
an install without the compiled module, runs the torch version below in the tensors' dtype.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from gradfit.solvers.ipm import native

STEP_FRACTION = 0.99995  # of the way to the boundary, as in rqfnb
TINY = 1e-300


@dataclass
class LPSolution:
    beta: Tensor        # coefficients (q,)
    dual: Tensor        # a in [0, u] (n,), nearly feasible for Z'a = (1-tau) Z'u
    n_iter: int
    gap: float          # interior-point complementarity gap relative to the objective
    converged: bool


def pinball_sum(r: Tensor, u: Tensor, tau: float) -> Tensor:
    """sum_i u_i rho_tau(r_i), as ``tau u'r - u'min(r, 0)`` (two products, no n-sized select)."""
    return tau * (u @ r) - u @ r.clamp_max(0.0)


def _cholesky_solve(M: Tensor, rhs: Tensor) -> Tensor:
    L, info = torch.linalg.cholesky_ex(M)
    if int(info) != 0:  # near the end the weights span many decades: regularize slightly
        jitter = 1e-13 * float(M.diagonal().abs().max())
        L, info = torch.linalg.cholesky_ex(M + jitter * torch.eye(M.shape[0], dtype=M.dtype, device=M.device))
        if int(info) != 0:
            if not bool(torch.isfinite(M).all()):
                raise FloatingPointError("the interior point broke down (non-finite normal matrix); "
                                         "check the data for extreme values or try solver 'sgd'")
            return torch.linalg.lstsq(M, rhs[:, None]).solution[:, 0]
    return torch.cholesky_solve(rhs[:, None], L)[:, 0]


def _step(v: Tensor, dv: Tensor) -> float:
    """Largest t <= 1 with v + t*dv >= 0, times the step fraction."""
    # 1 / max(-dv / v): rows moving away from the boundary (dv >= 0) give ratios <= 0 and never bind
    worst = float(torch.div(dv, v).neg_().max())
    return min(1.0, STEP_FRACTION / worst) if worst > 0 else 1.0


def weighted_gram(Z: Tensor, q: Tensor, block: int = 8192) -> Tensor:
    """Z' diag(q) Z, in row blocks: a tall skinny product is several times faster cache-sized
    (an operator over sparse rows, :class:`gradfit.solvers.ipm.design.LPRows`, forms it itself)."""
    if not isinstance(Z, Tensor):
        return Z.gram(q)
    n = Z.shape[0]
    if n <= 2 * block:
        return Z.T @ (q[:, None] * Z)
    out = torch.zeros(Z.shape[1], Z.shape[1], dtype=Z.dtype, device=Z.device)
    for start in range(0, n, block):
        Zb = Z[start:start + block]
        out.addmm_(Zb.T, q[start:start + block, None] * Zb)
    return out


def frisch_newton(Z: Tensor, y: Tensor, u: Tensor, tau: float, tol: float = 1e-12,
                  max_iter: int = 100) -> LPSolution:
    """Solve ``min_beta sum u_i rho_tau(y_i - Z_i beta)`` (all ``u_i > 0``) by Frisch–Newton.

    Stops when the complementarity gap ``x'z + s'w`` is below ``tol`` times the objective.
    """
    if native.usable(Z):
        got = native.fnb(Z, y, u, tau, tol, max_iter)
        if got is not None:
            return LPSolution(*got)
    return frisch_newton_torch(Z, y, u, tau, tol, max_iter)


def frisch_newton_torch(Z: Tensor, y: Tensor, u: Tensor, tau: float, tol: float = 1e-12,
                        max_iter: int = 100) -> LPSolution:
    """:func:`frisch_newton` in torch operations (any device, dtype or row operator)."""
    n, q = Z.shape
    c = -y
    b = (1.0 - tau) * (Z.T @ u)
    x = (1.0 - tau) * u          # primal a, strictly inside the box
    s = u - x
    # dual start: least-squares multipliers, then z - w = c - Z yd with both strictly positive
    G = weighted_gram(Z, torch.ones_like(u))
    yd = _cholesky_solve(G, Z.T @ c)
    r = c - Z @ yd
    shift = max(float(r.abs().mean()), 1e-12)
    z = r.clamp_min(0.0) + shift
    w = (-r).clamp_min(0.0) + shift
    const = (1.0 - tau) * float(y @ u)
    gap_rel, it, converged = float("inf"), 0, False
    for it in range(1, max_iter + 1):
        gap = float(x @ z + s @ w)
        objective = -float(c @ x) - const
        gap_rel = gap / max(abs(objective), 1e-300)
        if gap_rel <= tol:
            converged = True
            it -= 1
            break
        q_w = 1.0 / (z / x + w / s)
        r_b = b - Z.T @ x
        r_c = c - Z @ yd - z + w
        M = weighted_gram(Z, q_w)
        L, info = torch.linalg.cholesky_ex(M)
        if int(info) != 0:
            L = None

        def direction(rhat: Tensor):
            rhs = r_b + Z.T @ (q_w * rhat)
            dy = torch.cholesky_solve(rhs[:, None], L)[:, 0] if L is not None else _cholesky_solve(M, rhs)
            dx = q_w * (Z @ dy - rhat)
            return dy, dx

        # predictor (affine scaling, mu = 0)
        dy, dx = direction(r_c + z - w)
        dz = -z - z * dx / x
        dw = -w + w * dx / s
        ap = min(_step(x, dx), _step(s, -dx))
        ad = min(_step(z, dz), _step(w, dw))
        mu_aff = float((x + ap * dx) @ (z + ad * dz) + (s - ap * dx) @ (w + ad * dw))
        sigma = (mu_aff / gap) ** 3
        mu = sigma * gap / (2 * n)
        # corrector: centre and cancel the second-order term of the predictor
        r_xz = mu - x * z - dx * dz
        r_sw = mu - s * w + dx * dw
        dy, dx2 = direction(r_c - r_xz / x + r_sw / s)
        dz = (r_xz - z * dx2) / x
        dw = (r_sw + w * dx2) / s
        ap = min(_step(x, dx2), _step(s, -dx2))
        ad = min(_step(z, dz), _step(w, dw))
        # s is stepped on its own (not u - x, which cancels for rows with a large weight u);
        # the floor only guards against a rounding to exactly zero, which would give 0/0 = NaN
        x = (x + ap * dx2).clamp_min_(TINY)
        s = (s - ap * dx2).clamp_min_(TINY)
        yd = yd + ad * dy
        z = (z + ad * dz).clamp_min_(TINY)
        w = (w + ad * dw).clamp_min_(TINY)
    return LPSolution(-yd, x, it, gap_rel, converged)
