"""Portnoy–Koenker preprocessing for large-n quantile regression (R quantreg's ``rq.fit.pfn``).

Solve on a random subsample of ``m`` rows; rows whose residual lies far above (below) the
subsample fit, measured in units of their leverage ``||L^-1 z_i||``, are surely positive
(negative) at the full optimum. Their contributions are linear in beta, so each side collapses
into one "glob" row. The reduced problem (about 0.8 m middle rows plus two globs) has the same
optimum as the full one whenever every globbed row keeps its sign; that is checked on all rows
and violators go back into the middle (or m doubles when there are too many).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from gradfit.solvers.ipm.design import Design, LPRows
from gradfit.solvers.ipm.lp import frisch_newton, weighted_gram


@dataclass
class PFNResult:
    """The last LP solved: rows ``Z, y, u`` (middle rows, globs, extra rows last) with the same
    optimum as the full problem, its solution ``beta`` and dual ``a``. A dual of the reduced LP is
    one of the full LP (each glob's multiplier shared by its rows in proportion to u), with the
    same value, so the reduced problem certifies the full one."""

    Z: Tensor
    y: Tensor
    u: Tensor
    beta: Tensor
    dual: Tensor
    n_iter: int         # interior-point iterations over all solves
    rounds: int         # LP solves
    subsample: int      # m (0 when the full problem was solved directly)


def kth_fraction(v: Tensor, frac: float) -> Tensor:
    """The ``ceil(frac * len(v))``-th smallest value of v (at least the first, at most the last)."""
    k = min(max(int(math.ceil(frac * v.numel())), 1), v.numel())
    return torch.kthvalue(v, k).values


def leverage_norms(Z: Design, L: Tensor, block: int = 65536) -> Tensor:
    """||L^-1 z_i|| for every row (L the Cholesky factor of the subsample's Z'Z), in row blocks."""
    Linv_t = torch.linalg.solve_triangular(L, torch.eye(L.shape[0], dtype=L.dtype, device=L.device),
                                           upper=False).T.contiguous()
    out = torch.empty(Z.shape[0], dtype=Z.dtype, device=Z.device)
    ones = torch.ones(L.shape[0], dtype=L.dtype, device=L.device)  # row sums as a GEMV: sum(1) is slower
    for start in range(0, Z.shape[0], block):
        out[start:start + block] = Z.matmat_rows(Linv_t, slice(start, start + block)).square_() @ ones
    return out.sqrt_()


def sample_share(extra, share: float):
    """The penalty rows for an LP on a sample holding ``share`` of the weight: the penalty keeps its
    strength relative to the sample's loss (at full weight it would swamp the sample fit)."""
    return None if extra is None else (extra[0], extra[1], extra[2] * share)


def _solve(Z, y, u, extra, tau, tol, max_iter):
    if isinstance(Z, Design):  # all rows of a sparse design: products and Z'QZ stay sparse
        if extra is not None:
            y, u = torch.cat([y, extra[1]]), torch.cat([u, extra[2]])
        Z = LPRows(Z, None if extra is None else extra[0])
        return (Z, y, u), frisch_newton(Z, y, u, tau, tol, max_iter)
    if extra is not None:
        Z, y, u = torch.cat([Z, extra[0]]), torch.cat([y, extra[1]]), torch.cat([u, extra[2]])
    return (Z, y, u), frisch_newton(Z, y, u, tau, tol, max_iter)


def pfn(Z: Design, y: Tensor, u: Tensor, tau: float, extra: tuple[Tensor, Tensor, Tensor] | None = None,
        *, generator: torch.Generator | None = None, tol: float = 1e-12, max_iter: int = 100,
        m: int | None = None, min_rows: int = 20000, mm_factor: float = 0.8,
        max_fixups: int = 3) -> PFNResult:
    """Minimize ``sum u_i rho_tau(y_i - Z_i beta)`` over the data rows plus the ``extra`` rows
    (kept in every reduced problem: the LP rows of an L1 penalty).

    ``m`` defaults to ``((q + 1) n)**(2/3)`` (quantreg's rule; fewer fix-up rounds than
    ``sqrt(q) n**(2/3)`` in our measurements); problems with fewer than ``max(min_rows, 3 m)``
    rows are solved directly.
    """
    n, q = Z.shape
    if m is None:
        m = int(((q + 1) * n) ** (2.0 / 3.0))
    total_iter, rounds = 0, 0
    while n >= max(min_rows, 3 * m):
        # with replacement: O(m) instead of a permutation of n; a repeated row changes nothing
        idx = torch.randint(n, (m,), generator=generator).to(Z.device)
        Zs = Z.rows(idx)
        us = u[idx]
        _, sol = _solve(Zs, y[idx], us, sample_share(extra, float(us.sum() / u.sum())), tau, max(tol, 1e-5),
                        max_iter)
        total_iter += sol.n_iter
        rounds += 1
        L, info = torch.linalg.cholesky_ex(weighted_gram(Zs, torch.ones(m, dtype=Z.dtype, device=Z.device)))
        if int(info) != 0:  # a singular subsample: fall back to the direct solve
            break
        band = leverage_norms(Z, L)
        r = y - Z.matvec(sol.beta)
        M = mm_factor * m
        # the thresholds from the subsample's kappa: a selection over m values, not n (the kept
        # fraction is then M/n only up to the sample's noise, which the check covers)
        kappa = r[idx] / band[idx].clamp_min(1e-12)
        lo = kth_fraction(kappa, max(1.0 / m, tau - M / (2 * n)))
        hi = kth_fraction(kappa, min(tau + M / (2 * n), (m - 1.0) / m))
        below, above = r < band * lo, r > band * hi
        del kappa, band
        for _ in range(max_fixups):
            middle = ~(below | above)
            Zr, yr, ur = [Z.rows(middle)], [y[middle]], [u[middle]]
            for side in (below, above):
                if bool(side.any()):
                    us = torch.where(side, u, torch.zeros_like(u))
                    tot = us.sum()
                    Zr.append((Z.rmatvec(us) / tot)[None])
                    yr.append((us @ y / tot)[None])
                    ur.append(tot[None])
            rows, sol = _solve(torch.cat(Zr), torch.cat(yr), torch.cat(ur), extra, tau, tol, max_iter)
            total_iter += sol.n_iter
            rounds += 1
            r = y - Z.matvec(sol.beta)
            bad = (above & (r < 0)) | (below & (r > 0))
            n_bad = int(bad.sum())
            if n_bad == 0:
                return PFNResult(*rows, sol.beta, sol.dual, total_iter, rounds, m)
            if n_bad > 0.1 * M:
                break
            above &= ~bad
            below &= ~bad
        m *= 2
    rows, sol = _solve(Z if Z.sparse else Z.full(), y, u, extra, tau, tol, max_iter)
    return PFNResult(*rows, sol.beta, sol.dual, total_iter + sol.n_iter, rounds + 1, 0)
