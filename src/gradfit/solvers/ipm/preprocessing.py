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
from gradfit.solvers.ipm.finish import vertex
from gradfit.solvers.ipm import native
from gradfit.solvers.ipm.lp import frisch_newton, pinball_sum

FAST_TOL = 1e-8    # the first stop of an exact LP: see solve_to_vertex
# The middle rows of a round are a band around the trial fit, and a Portnoy-Koenker solve of them
# often fails (20M rows: 32 LP solves, 4-5 s, when m doubled; with one round, 0.56-1.19 s against
# 0.60 s for the direct solve of 300k rows): they are solved directly (a fix-up's warm start aside)
REDUCED_ROUNDS = 0
SAMPLE_TOL = 1e-3  # the sample's fit only has to be as good as the sample (its error is O(m^-1/2))


@dataclass
class PFNResult:
    """The last LP solved: rows ``Z, y, u`` (middle rows, globs, extra rows last) with the same
    optimum as the full problem, its vertex ``beta`` (polished), the objective ``value`` and dual
    lower bound ``lower`` on those rows. Every row's loss is at least its glob's linear part, so
    ``lower`` bounds the full problem too; when every globbed row keeps its side the reduced
    optimum is the full one. ``residual``: ``y - Z beta`` on every row (None when not computed; from
    the used columns of X, not the whitened rows)."""

    Z: Tensor
    y: Tensor
    u: Tensor
    beta: Tensor
    value: float
    lower: float
    n_iter: int         # interior-point iterations over all solves
    rounds: int         # LP solves
    subsample: int      # m (0 when the full problem was solved directly)
    residual: Tensor | None = None
    total: float | None = None  # sum u rho_tau(residual) over the data rows (with the residual)


def kth_fraction(v: Tensor, frac: float) -> Tensor:
    """The ``ceil(frac * len(v))``-th smallest value of v (at least the first, at most the last)."""
    k = min(max(int(math.ceil(frac * v.numel())), 1), v.numel())
    return torch.kthvalue(v, k).values


def classify(Z: Design, y: Tensor, u: Tensor, M: Tensor, lo: float, hi: float, cap: int, block: int = 65536):
    """The rows by a trial fit: ``kappa_i = r_i / ||L^-1 z_i||`` from ``Z M = [Z beta0, Z L^-T]``; below
    ``lo`` or above ``hi`` a row is globbed. Returns ``(globs, middle, side)``: the two globs' sums
    ``[sum u x, sum u y, sum u]`` over the used columns of X (below, above), the middle rows' indices
    (None when more than ``cap``) and each row's side (-1, 0, +1, int8)."""
    A, c = Z.fold(M)
    if native.rows_usable(Z.X):
        G, mid, side, _ = native.classify(Z.X, y, u, A, c, lo, hi, cap, side=True)
        return G, mid, side
    n = Z.shape[0]
    side = torch.empty(n, dtype=torch.int8, device=Z.device)
    ones = torch.ones(A.shape[1] - 1, dtype=Z.dtype, device=Z.device)  # row sums as a GEMV: sum(1) is slower
    for start in range(0, n, block):
        P = Z.matmat_rows(M, slice(start, start + block))
        r = y[start:start + block] - P[:, 0]
        band = (P[:, 1:].square() @ ones).sqrt_()
        side[start:start + block] = (r > band * hi).to(torch.int8) - (r < band * lo).to(torch.int8)
    G = torch.stack([_side_sums(Z, y, torch.where(side == v, u, 0.0)) for v in (-1, 1)])
    mid = torch.nonzero(side == 0).flatten()
    return G, (mid if mid.numel() <= cap else None), side


def _side_sums(Z: Design, y: Tensor, v: Tensor) -> Tensor:
    return torch.cat([v @ Z.X, (v @ y).reshape(1), v.sum().reshape(1)])


def check(Z: Design, y: Tensor, u: Tensor, beta: Tensor, tau: float, side: Tensor, cap: int):
    """``(sum u rho_tau(y - Z beta), the globbed rows whose sign flipped (None past cap), y - Z beta)``."""
    a, c = Z.fold(beta)
    if native.rows_usable(Z.X):
        return native.check(Z.X, y, u, a, float(c), tau, side, cap, residual=True)
    r = y - Z.matvec(beta)
    bad = torch.nonzero(((side < 0) & (r > 0)) | ((side > 0) & (r < 0))).flatten()
    return float(pinball_sum(r, u, tau)), (bad if bad.numel() <= cap else None), r


def glob_rows(Z: Design, G: Tensor) -> list[tuple[Tensor, Tensor, Tensor]]:
    """The LP rows ``(z, y, u)`` of the non-empty globs ``G`` (rows ``[sum u x[used], sum u y, sum u]``):
    each glob's weighted mean row with its total weight."""
    k = Z.k
    out = []
    for g in G:
        if g[-1] > 0:
            out.append(((Z.sum_rows(g[:k], g[-1]) / g[-1])[None], (g[k] / g[-1]).reshape(1), g[-1].reshape(1)))
    return out


def with_rows(rows: list[tuple[Tensor, Tensor, Tensor]], extra):
    """``extra`` (rows kept in every LP: ``(Z, y, u)`` or None) with ``rows`` in front."""
    parts = rows + ([extra] if extra is not None else [])
    if not parts:
        return None
    return tuple(torch.cat([part[j] for part in parts]) for j in range(3))


def sample_share(extra, share: float):
    """The penalty rows for an LP on a sample holding ``share`` of the weight: the penalty keeps its
    strength relative to the sample's loss (at full weight it would swamp the sample fit)."""
    return None if extra is None else (extra[0], extra[1], extra[2] * share)


def stack_rows(Z, y, u, extra):
    """The LP rows ``Z, y, u`` with the ``extra`` rows (or None) below them."""
    if isinstance(Z, Design):  # all rows of a sparse design: products and Z'QZ stay sparse
        if extra is not None:
            y, u = torch.cat([y, extra[1]]), torch.cat([u, extra[2]])
        return LPRows(Z, None if extra is None else extra[0]), y, u
    if extra is not None:
        Z, y, u = torch.cat([Z, extra[0]]), torch.cat([y, extra[1]]), torch.cat([u, extra[2]])
    return Z, y, u


def moving_share(u: Tensor, extra) -> float:
    """The data rows' share of the weight of an LP over them and the ``extra`` rows (globs, penalty)."""
    mine = float(u.sum())
    return 1.0 if extra is None else mine / max(mine + float(extra[2].sum()), 1e-300)


def solve_to_vertex(Z, y, u, tau: float, tol: float, max_iter: int, polish_on: bool, share: float = 1.0):
    """(beta, value, lower bound, iterations, solves) of the LP on these rows, at a vertex.

    With polishing the interior point first stops at ``FAST_TOL``: the rows of its smallest
    residuals almost always span the optimal vertex already, whose dual then certifies it to
    rounding. Only when that certificate is looser than ``tol`` is the LP solved again to ``tol``.
    ``share``: the part of the weight on rows that can move. Below one half (the globs of a reduced
    problem hold 98% of a 20M-row fit's weight) the gap, relative to the whole objective, says little
    of the middle rows at the first stop: its vertex often did not certify and the second solve cost
    20-24 more iterations (+1 s at 70M rows), where going straight to ``tol`` costs one or two.
    """
    iters, solves = 0, 0
    fast = tol if share < 0.5 else max(tol, FAST_TOL)
    for t in ((fast, tol) if polish_on and tol < fast else (tol,)):
        sol = frisch_newton(Z, y, u, tau, t, max_iter)
        iters, solves = iters + sol.n_iter, solves + 1
        beta, value, lower = vertex(Z, y, u, tau, sol.beta, sol.dual, polish_on)
        if value - max(lower, 0.0) <= tol * max(value, 1e-300):
            break
    return beta, value, lower, iters, solves


def solve_rows(Z: Tensor, y: Tensor, u: Tensor, extra, tau: float, tol: float, max_iter: int, polish_on: bool,
               generator: torch.Generator | None, min_rows: int, mm_factor: float, trial: bool = False,
               max_rounds: int | None = None, start: Tensor | None = None):
    """(rows, beta, value, lower, iterations, solves) of the LP over the rows ``Z`` (dense) plus ``extra``:
    by Portnoy-Koenker itself when there are many and ``max_rounds`` allows it (the sample's LP), else
    by :func:`solve_to_vertex` (the reduced LP: ``max_rounds=0``, with only a ``start``'s round). A ``trial`` fit (the sample's)
    only needs beta: value and lower are then None. ``rows``: those of the last LP solved.
    ``max_rounds``: Portnoy-Koenker rounds tried before the direct solve (None: until m is too large;
    a ``start`` adds its round).
    ``start``: a fit close to the optimum (that of nearly the same rows), which replaces the first
    round's sample fit (see :func:`pfn`)."""
    n, q = Z.shape
    if n >= max(min_rows, 3 * int(((q + 1) * n) ** (2.0 / 3.0))):
        D = Design(Z, torch.zeros(q, dtype=Z.dtype), torch.ones(q, dtype=Z.dtype), torch.ones(q, dtype=torch.bool),
                   False)
        res = pfn(D, y, u, tau, extra, generator=generator, tol=tol, max_iter=max_iter, min_rows=min_rows,
                  mm_factor=mm_factor, polish_on=polish_on, max_rounds=max_rounds, start=start)
        return (res.Z, res.y, res.u), res.beta, res.value, res.lower, res.n_iter, res.rounds
    rows = stack_rows(Z, y, u, extra)
    if not trial:
        return (rows, *solve_to_vertex(*rows, tau, tol, max_iter, polish_on, moving_share(u, extra)))
    sol = frisch_newton(*rows, tau, tol, max_iter)
    return rows, sol.beta, None, None, sol.n_iter, 1


def pfn(Z: Design, y: Tensor, u: Tensor, tau: float, extra: tuple[Tensor, Tensor, Tensor] | None = None,
        *, generator: torch.Generator | None = None, tol: float = 1e-12, max_iter: int = 100,
        m: int | None = None, min_rows: int = 20000, mm_factor: float = 0.8,
        max_fixups: int = 3, polish_on: bool = True, max_rounds: int | None = None,
        start: Tensor | None = None) -> PFNResult:
    """Minimize ``sum u_i rho_tau(y_i - Z_i beta)`` over the data rows plus the ``extra`` rows
    (kept in every reduced problem: the LP rows of an L1 penalty).

    ``start``: the optimum of nearly the same problem (a few rows changed sides). The first round
    then classifies every row by it, in the metric of all rows' ``Z'Z``, and keeps the
    ``max(min_rows, n / 8)`` rows nearest to it: no sample LP, and a band far narrower than a
    sample's error would need.

    ``m`` defaults to ``((q + 1) n)**(2/3)`` (quantreg's rule; fewer fix-up rounds than
    ``sqrt(q) n**(2/3)`` in our measurements); problems with fewer than ``max(min_rows, 3 m)``
    rows are solved directly.
    """
    n, q = Z.shape
    if m is None:
        m = int(((q + 1) * n) ** (2.0 / 3.0))
    total_iter, rounds, tries = 0, 0, 0
    while n >= max(min_rows, 3 * m) and (max_rounds is None or tries < max_rounds + (start is not None)):
        tries += 1
        if start is not None and tries == 1:
            idx, beta0, M = torch.arange(n, device=Z.device), start, float(max(min_rows, n // 8))
            Zs = Z.full()
        else:
            # with replacement: O(m) instead of a permutation of n; a repeated row changes nothing
            idx = torch.randint(n, (m,), generator=generator).to(Z.device)
            Zs = Z.rows(idx)
            us = u[idx]
            _, beta0, _, _, it, k = solve_rows(Zs, y[idx], us, sample_share(extra, float(us.sum() / u.sum())), tau,
                                               max(tol, SAMPLE_TOL), max_iter, False, generator, min_rows, mm_factor,
                                               trial=True)
            total_iter, rounds = total_iter + it, rounds + k
            M = mm_factor * m
        L, info = torch.linalg.cholesky_ex(Zs.T @ Zs)
        if int(info) != 0:  # a singular subsample: fall back to the direct solve
            break
        Linv_t = torch.linalg.solve_triangular(L, torch.eye(q, dtype=L.dtype, device=L.device), upper=False).T
        Mfold = torch.cat([beta0[:, None], Linv_t], 1)
        Ps = Zs @ Mfold
        kappa = (y[idx] - Ps[:, 0]) / Ps[:, 1:].norm(dim=1).clamp_min(1e-12)
        # the thresholds from the subsample's kappa: a selection over m values, not n (the kept
        # fraction is then M/n only up to the sample's noise, which the check covers), centred on the
        # sample's share of rows below the fit: tau for data rows, about 1/2 when these rows are the
        # middle band of a larger problem (its globs in ``extra``)
        below, nk = float((kappa < 0).to(kappa.dtype).mean()), kappa.numel()
        lo = float(kth_fraction(kappa, max(1.0 / nk, below - M / (2 * n))))
        hi = float(kth_fraction(kappa, min(below + M / (2 * n), (nk - 1.0) / nk)))
        G, middle, side = classify(Z, y, u, Mfold, lo, hi, cap=int(4 * M) + 1000)
        if middle is None:  # far more rows near the fit than the sample promised
            m *= 2
            continue
        beta = None
        for _ in range(max_fixups):
            # the globs join the penalty's rows: in every LP of a recursive solve, never sampled away;
            # after a fix-up the last optimum starts the solve of nearly the same rows
            fixed = with_rows(glob_rows(Z, G), extra)
            rows, beta, value, lower, it, k = solve_rows(Z.rows(middle), y[middle], u[middle], fixed, tau, tol,
                                                         max_iter, polish_on, generator, min_rows, mm_factor,
                                                         max_rounds=REDUCED_ROUNDS, start=beta)
            total_iter, rounds = total_iter + it, rounds + k
            total, bad, r = check(Z, y, u, beta, tau, side, cap=int(0.1 * M))
            if bad is not None and bad.numel() == 0:
                return PFNResult(*rows, beta, value, lower, total_iter, rounds, m, r, total)
            if bad is None:
                break
            # the flipped rows leave their globs for the middle
            for v, g in ((-1, G[0]), (1, G[1])):
                b = bad[side[bad] == v]
                if b.numel():
                    g -= _side_sums(Z, y, torch.zeros_like(u).index_fill_(0, b, 1.0) * u)
            side[bad] = 0
            middle = torch.cat([middle, bad])
        m *= 2
    rows = stack_rows(Z if Z.sparse else Z.full(), y, u, extra)
    beta, value, lower, it, k = solve_to_vertex(*rows, tau, tol, max_iter, polish_on, moving_share(u, extra))
    return PFNResult(*rows, beta, value, lower, total_iter + it, rounds + k, 0)
