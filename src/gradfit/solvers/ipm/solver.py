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

from gradfit.numerics.moments import is_sparse_rows
from gradfit.problem.objective import GAP_FLOOR, Objective, relative_gap
from gradfit.solvers.history import History
from gradfit.solvers.base import FitResult, Settings, Solver, SolverMismatch, ThreadedOptions, single_threaded
from gradfit.solvers.registry import register
from gradfit.solvers.ipm import crossover
from gradfit.solvers.ipm.design import Design, whitening
from gradfit.solvers.ipm.preprocessing import pfn
from gradfit.solvers.ipm.lp import pinball_sum


def materialize(objective: Objective, solver: str = "ipm") -> tuple[Tensor, Tensor, Tensor]:
    """(X, y, s) as float64 tensors; a streamed source is read into memory once."""
    data = objective.data
    if data.total_rows() != data.n_rows:
        raise SolverMismatch(f"solver '{solver}' cannot run across processes (it needs every row in one); "
                             "use sgd, or prox for a smooth loss")
    full = data.full_batch()
    f64 = torch.float64
    if full is not None:  # no copy when already float64
        s = torch.ones_like(full.y, dtype=f64) if full.weight is None else full.weight.to(f64)
        return full.X.to(f64), full.y.to(f64), s
    batches = list(data)
    X = torch.cat([b.X for b in batches]).to(f64)
    y = torch.cat([b.y for b in batches]).to(f64)
    if any(b.weight is not None for b in batches):
        s = torch.cat([b.weight if b.weight is not None else torch.ones(len(b), dtype=b.X.dtype, device=b.X.device)
                       for b in batches]).to(f64)
    else:
        s = torch.ones_like(y)
    return X, y, s


def column_scales(X: Tensor, s: Tensor, fit_intercept: bool, rows: int = 16384):
    """(centre, scale of the used columns, used mask) for conditioning only: estimated on at most
    ``rows`` evenly spaced rows (any positive scale gives the same optimum). Columns constant over
    all rows are dropped when there is an intercept (their coefficient is 0); all-zero ones always."""
    step = max(X.shape[0] // rows, 1)
    Xs, ss = X[::step], s[::step]
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


def independent_rows(Z: Tensor, order: Tensor, rank_tol: float = 1e-9) -> list[int]:
    """Greedily pick rows of Z in ``order`` that are linearly independent of those already picked."""
    q = Z.shape[1]
    basis = torch.empty(0, q, dtype=Z.dtype, device=Z.device)
    chosen: list[int] = []
    for i in order.tolist():
        z = Z[i]
        res = z - basis.T @ (basis @ z)
        res = res - basis.T @ (basis @ res)  # second Gram-Schmidt pass for orthogonality
        nz = float(res.norm())
        if nz > rank_tol * max(float(z.norm()), 1e-300):
            basis = torch.cat([basis, (res / nz)[None]])
            chosen.append(i)
            if len(chosen) == q:
                break
    return chosen


def dual_value(Z: Tensor, y: Tensor, u: Tensor, a: Tensor, tau: float, beta: Tensor) -> float:
    """Lower bound on min P from a box-feasible dual ``a``: y'd - |beta|*|Z'd| with d = a - (1-tau)u."""
    d = a - (1.0 - tau) * u
    infeasibility = float((Z.T @ d).norm()) * float(beta.norm()) * 1.01
    return float(y @ d) - infeasibility


def polish(Z: Tensor, y: Tensor, u: Tensor, tau: float, beta: Tensor, a_ipm: Tensor):
    """Vertex from the q smallest independent residuals; returns (beta, P, lower bound D)."""
    r = y - Z @ beta
    p_ipm = float(pinball_sum(r, u, tau))
    a_box = torch.minimum(a_ipm.clamp_min(0.0), u)
    best = (beta, p_ipm, dual_value(Z, y, u, a_box, tau, beta))
    q = Z.shape[1]
    cand = torch.topk(r.abs(), min(4 * q + 10, r.numel()), largest=False).indices
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
    a = torch.where(r_v > thr, u, torch.where(r_v < -thr, torch.zeros_like(u), a_box))
    a[h_idx] = 0.0
    rhs = (1.0 - tau) * (Z.T @ u) - Z.T @ a
    a_h = torch.linalg.solve(Zh.T, rhs)
    slack = 1e-9 * u[h_idx]
    if bool((a_h >= -slack).all() and (a_h <= u[h_idx] + slack).all()):
        a[h_idx] = torch.minimum(a_h.clamp_min(0.0), u[h_idx])
        d_v = dual_value(Z, y, u, a, tau, beta_v)
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
            from gradfit.solvers.ipm.streamed import solve_streamed
            return solve_streamed(self.name, objective, settings, tau, scale, t0)
        X, y, s = materialize(objective)
        n, p = X.shape
        positive = s > 0
        if not bool(positive.all()):
            X, y, s = X[positive], y[positive], s[positive]
        weight_sum = float(s.sum())
        if n == 0 or weight_sum <= 0:
            raise SolverMismatch("solver 'ipm' got no rows with positive weight; check sample_weight")
        mu, sd_u, used = column_scales(X, s, objective.fit_intercept)
        Z = Design(X, mu, sd_u, used, objective.fit_intercept)
        T = whitening(Z) if opts.whiten else None
        if T is not None:
            Z.whiten(T)
        extra = l1_rows(Z, objective.penalty.l1, weight_sum, scale)
        gen = torch.Generator().manual_seed(settings.seed)
        res = pfn(Z, y, s, tau, extra, generator=gen, tol=opts.ipm_tol,
                  max_iter=opts.max_iter, m=opts.subsample, mm_factor=opts.mm_factor,
                  min_rows=opts.min_rows if opts.preprocess else 1 << 62)
        # polish and certify on the last (reduced) LP; then evaluate the objective on every row
        zero_sum = float(pinball_sum(y, s, tau))
        if Z.shape[1] == 0:  # nothing to fit (all columns zero, no intercept): y = 0 is the optimum
            beta, lower = res.beta, zero_sum
        else:
            beta, _, lower = vertex(res.Z, res.y, res.u, tau, res.beta, res.dual, opts.polish)
        if T is None:
            p_val = float(pinball_sum(y - Z.matvec(beta), s, tau))
        else:  # ill-conditioned: X @ w cancels digits, evaluate through the whitened rows instead
            p_val = sum(float(pinball_sum(y[a:a + 65536] - Z.rows(slice(a, a + 65536)) @ beta,
                                          s[a:a + 65536], tau)) for a in range(0, Z.shape[0], 65536))
        if extra is not None:
            p_val += float(pinball_sum(extra[1] - extra[0] @ beta, extra[2], tau))
        info = {"subsample": res.subsample, "reduced_rows": int(res.Z.shape[0]), "lp_solves": res.rounds,
                "ipm_iterations": res.n_iter, "used": used}
        result = conclude(self.name, objective, settings, Z, beta, p_val, lower, zero_sum, weight_sum, scale,
                          res.n_iter, t0, info)
        if opts.crossover and Z.shape[1] == Z.k + int(objective.fit_intercept):  # full rank
            crossover.onto_vertex(result, X, y, s, tau, objective, lower, zero_sum, weight_sum, scale, settings.tol)
        return result
