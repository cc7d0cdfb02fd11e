"""Exact L1 (absolute) and quantile regression: Frisch–Newton interior point + Portnoy–Koenker.

Minimizes ``F(w, b) = c * sum_i s_i rho_tau(y_i - x_i.w - b) / sum_i s_i + l1 * ||w||_1`` where
``rho_tau`` is the pinball loss (``c = 2, tau = 1/2`` for the absolute loss, ``c = 1`` for the
quantile loss) -- a linear program. Steps:

1. Standardize the columns (centre them when there is an intercept): the optimum maps back
   exactly and the interior point's Cholesky factors stay well conditioned.
2. Solve the LP by Frisch–Newton (:mod:`.lp`) behind Portnoy–Koenker preprocessing (:mod:`.globs`).
   An L1 penalty enters as 2p extra LP rows (``l1|w_j| = rho(w_j) + rho(-w_j)`` scaled).
3. Polish: the q rows with the smallest residuals that are linearly independent define a vertex;
   solve that square system exactly and build its dual (the simplex optimality test).
4. Certificate: ``gap = (P(beta) - D(a)) / P(beta)`` with ``D`` the LP dual value of the better
   of the interior-point and vertex duals (corrected for their tiny infeasibility), a bound on
   the relative objective gap. ``converged`` when ``gap <= tol``.

Rows in memory are solved here; a streamed or distributed source goes to :mod:`.streamed`, the same
scheme in passes over the data (memory: the sample and the kept rows, not n). Only the ``none`` and
``l1`` penalties are linear programs.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import Tensor

from gradfit.numerics.passes import is_sparse_rows
from gradfit.problem.objective import Objective
from gradfit.solvers.base import (FitResult, Settings, Solver, SolverMismatch, ThreadedOptions, materialize,
                                  single_threaded)
from gradfit.solvers.registry import register
from gradfit.solvers.ipm import crossover
from gradfit.solvers.ipm.design import Design, whitening
from gradfit.solvers.ipm.preprocessing import pfn
from gradfit.solvers.ipm.finish import conclude, l1_rows
from gradfit.solvers.ipm.lp import pinball_sum
from gradfit.solvers.ipm.streamed import solve_streamed


def conditioning_scales(X: Tensor, s: Tensor, fit_intercept: bool, rows: int = 16384):
    """(centre, scale of the used columns, used mask) for conditioning only: estimated on at most
    ``rows`` evenly spaced rows (any positive scale gives the same optimum). Columns constant over
    all rows are dropped when there is an intercept (their coefficient is 0); all-zero ones always."""
    step = max(X.shape[0] // rows, 1)
    Xs, ss = X[::step], s[::step]
    if isinstance(Xs, Tensor):  # a strided view: products on it take a slow path
        Xs = Xs.contiguous()
    tot = ss.sum()
    m1 = (ss @ Xs) / tot
    mu = m1 if fit_intercept else torch.zeros(X.shape[1], dtype=X.dtype, device=X.device)
    if is_sparse_rows(Xs):  # sums of squares around mu without forming Xs - mu
        sd = (Xs.square_sums(ss) / tot - 2 * mu * m1 + mu * mu).clamp_min(0.0).sqrt()
        sd = torch.where(sd > 1e-12 * mu.abs(), sd, torch.zeros_like(sd))
    else:
        sd = ((ss @ (Xs - mu).square()) / tot).sqrt()
    used = torch.ones(X.shape[1], dtype=torch.bool, device=X.device)
    for j in torch.nonzero(sd == 0).flatten().tolist():
        col = X[:, j]
        if is_sparse_rows(col):  # one column, dense: n values
            col = torch.from_numpy(col.csr.toarray().ravel()).to(X.device)
        constant = bool((col == col[0]).all())
        if constant and (fit_intercept or float(col[0]) == 0.0):
            used[j] = False
        elif constant:
            sd[j] = abs(float(col[0]))
        else:
            sd[j] = float(col.std()) or 1.0
    return mu, sd[used], used


@register
class InteriorPoint(Solver):
    """Frisch–Newton interior point with Portnoy–Koenker globs: the exact L1/quantile optimum.

    Options: ``subsample`` (m, default ((p+2) n)^(2/3)), ``mm_factor`` (middle rows kept per
    subsample row, 0.8), ``ipm_tol`` (interior-point stop, default 1e-11), ``max_iter`` (per LP,
    default 100), ``polish`` (default True), ``preprocess`` (default True; False solves the full
    LP), ``min_rows`` (smallest n that is preprocessed, 20000), ``whiten`` (whiten an ill-conditioned
    design, default True), ``threads`` (torch intra-op threads while solving, default 1). Data not in memory (a streamed file, the shards of many
    processes) is fitted by :func:`~gradfit.solvers.ipm.streamed.solve_streamed` with the same options.
    """

    name = "ipm"
    losses = ("absolute", "quantile")
    penalties = ("none", "l1")
    runs_distributed = True  # data not in one process goes to solve_streamed

    @dataclass(frozen=True)
    class Options(ThreadedOptions):
        """``threads`` sets torch's threads, as for every solver. The compiled kernels (the Frisch-Newton
        loop, the classifying pass) use the cores ``OMP_NUM_THREADS`` allows (else the CPUs this process
        may run on; ``native.cores``), and their sums are the same bit for bit for any count."""
        subsample: int | None = None
        mm_factor: float = 0.8
        ipm_tol: float = 1e-11
        max_iter: int = 100
        polish: bool = True
        preprocess: bool = True
        min_rows: int = 20000
        whiten: bool = True
        crossover: bool = True

    def check(self, loss, penalty) -> None:
        if loss.name in ("absolute", "quantile") and penalty.name not in self.penalties:
            raise SolverMismatch(f"solver 'ipm' solves linear programs and the {penalty.name} penalty is "
                                 "quadratic; use penalty l1 or none, or solver 'sgd'")
        super().check(loss, penalty)

    @single_threaded
    def solve(self, objective: Objective, settings: Settings, theta0: Tensor) -> FitResult:
        t0 = time.perf_counter()
        opts = settings.options
        tau = getattr(objective.loss, "tau", 0.5)
        scale = 2.0 if objective.loss.name == "absolute" else 1.0  # |r| = 2 rho_1/2(r)
        if objective.data.full_batch() is None:
            return solve_streamed(self.name, objective, settings, tau, scale, t0)
        X, y, s = materialize(objective)
        n, p = X.shape
        positive = s > 0
        if not bool(positive.all()):
            X, y, s = X[positive], y[positive], s[positive]
        weight_sum = float(s.sum())
        if n == 0 or weight_sum <= 0:
            raise SolverMismatch("solver 'ipm' got no rows with positive weight; check sample_weight")
        mu, sd_u, used = conditioning_scales(X, s, objective.fit_intercept)
        Z = Design(X, mu, sd_u, used, objective.fit_intercept)
        T = whitening(Z) if opts.whiten else None
        if T is not None:
            Z.whiten(T)
        extra = l1_rows(Z, objective.penalty.l1, weight_sum, scale)
        gen = torch.Generator().manual_seed(settings.seed)
        res = pfn(Z, y, s, tau, extra, generator=gen, tol=opts.ipm_tol,
                  max_iter=opts.max_iter, m=opts.subsample, mm_factor=opts.mm_factor,
                  min_rows=opts.min_rows if opts.preprocess else 1 << 62, polish_on=opts.polish)
        # certified on the last (reduced) LP; the objective is evaluated on every row
        zero_sum = float(pinball_sum(y, s, tau))
        beta, lower = res.beta, res.lower
        if Z.shape[1] == 0:  # nothing to fit (all columns zero, no intercept): y = 0 is the optimum
            lower = zero_sum
        if T is None:
            r = res.residual if res.residual is not None else y - Z.matvec(beta)
            p_val = res.total if res.total is not None else float(pinball_sum(r, s, tau))
        else:  # ill-conditioned: X @ w cancels digits, evaluate through the whitened rows instead
            r = None
            p_val = sum(float(pinball_sum(y[a:a + 65536] - Z.rows(slice(a, a + 65536)) @ beta,
                                          s[a:a + 65536], tau)) for a in range(0, Z.shape[0], 65536))
        if extra is not None:
            p_val += float(pinball_sum(extra[1] - extra[0] @ beta, extra[2], tau))
        info = {"subsample": res.subsample, "reduced_rows": int(res.Z.shape[0]), "lp_solves": res.rounds,
                "ipm_iterations": res.n_iter, "used": used}
        result = conclude(self.name, objective, settings, Z, beta, p_val, lower, zero_sum, weight_sum, scale,
                          res.n_iter, t0, info)
        if opts.crossover and Z.shape[1] == Z.k + int(objective.fit_intercept):  # full rank
            crossover.onto_vertex(result, X, y, s, tau, objective, lower, zero_sum, weight_sum, scale, settings.tol,
                                  residual=r, value=p_val)
        return result
