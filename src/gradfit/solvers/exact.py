"""Exact least squares (+ ridge), streamed: ``min_{w,b} sum_i s_i (y_i - x_i.w - b)^2 / sum_i s_i + l2/2 ||w||^2``.

How (all in float64, whatever the data's dtype):

1. One pass accumulates ``M = B'SB`` for chunks ``B = [X - m, 1, y - m_y]`` (shift m: the first
   chunk's mean), i.e. X'SX, X'Sy, the column sums and the weight sum in one matrix product per
   cache-sized chunk; no copy of X is made.
2. Features are standardized from M (centred and divided by their standard deviation; without an
   intercept, divided by their root mean square), giving the Gram matrix ``A`` of the standardized
   design ``Z`` with unit diagonal, and ``cond(Z) = sqrt(cond(A))``.
3. ``cond(A) < 1e6``: one Cholesky solve (forward error ~1e-10). ``cond(A) < 1e13``: Cholesky plus
   iterative refinement, each round one more pass computing the gradient ``X'S r`` on the raw
   data with the residual and the sums in double-double arithmetic, so the refined solution is
   the least-squares solution of the float64 data to ~1e-15 (measured against 50-digit mpmath:
   13-16 digits where numpy's lstsq gets 8-10). Otherwise, or when Cholesky fails: a streaming
   QR (TSQR) pass gives R of ``[Z, t]``, solved through an SVD of R, then refined the same way
   while ``cond(Z)^2 * 1e-16 < 0.05`` (the refinement's contraction factor). Beyond that, rows in
   memory (one process, unweighted) are refined on the augmented system with a Householder QR of
   Z kept in memory (Björck; contraction cond(Z) * eps): >= 12 digits of the float64 problem up to
   cond(Z) ~ 1e13 (NIST's Filip, cond ~1e15 before standardizing: all 16). Iterates stay in
   original units, so a small intercept next to ``cx @ w`` keeps its digits.
4. Exactly singular designs (a constant column with an intercept, duplicated or linearly
   dependent columns; singular values below 1e-13 of the largest) get the minimum-norm solution
   in the original units and a :class:`SingularDesignWarning` naming the columns; designs with
   ``cond(Z) > 1e8`` get the same warning with the number of digits that can be trusted.
   ``FitResult.info`` carries ``condition_number`` (of Z), ``method``, ``rank``,
   ``refinement_passes`` and ``singular_columns``.
"""
from __future__ import annotations

import math
import time
import warnings
import weakref

import torch
from torch import Tensor

from gradfit.problem.objective import Objective
from gradfit.solvers.krylov import sparse_route
from gradfit.solvers.history import History
from gradfit.numerics.least_squares import StandardizedSystem, augmented_refine, refine
from gradfit.numerics.passes import F64, is_sparse_rows, one_torch_thread
from gradfit.numerics.qr import orthonormal_columns, streaming_r
from gradfit.solvers.base import FitResult, Settings, Solver
from gradfit.solvers.design_checks import CHECKS_RUN, column_names, constant_phrase, dependent_phrase
from gradfit.solvers.registry import register

COND_DIRECT = 1e6   # cond(A) below which one Cholesky solve is accurate to about 1e-10
COND_GRAM = 1e13    # cond(A) above which the Gram matrix is not factored at all (streaming QR instead)
RANK_RTOL = 1e-13   # singular values of Z below this fraction of the largest count as zero
COND_WARN = 1e8     # cond(Z) above which fewer than ~8 digits can be trusted: warn
EIGEN_MAX_K = 1500  # above this many columns cond(A) is estimated from the Cholesky factor, not eigvalsh


class SingularDesignWarning(UserWarning):
    """The design matrix is (numerically) singular: some coefficients are not determined by the data."""


def _names(objective: Objective, idx) -> str:
    return column_names(objective.data.feature_names, idx)


def _cholesky_solver(L: Tensor):
    """``g -> A^-1 g`` from A's Cholesky factor, on one torch thread: O(k^2) work that two spinning
    intra-op threads made 25x slower (1.4 s against 0.05 s at k = 2000 on a busy machine)."""
    def solve(g: Tensor) -> Tensor:
        with one_torch_thread():
            return torch.cholesky_solve(g[:, None], L)[:, 0]
    return solve


def _regularized(system: StandardizedSystem) -> Tensor:
    """``A + diag(lam)`` without a dense diag(lam)."""
    A = system.A.clone()
    A.diagonal().add_(system.lam)
    return A


def _estimated_condition(A: Tensor) -> tuple[float, Tensor | None]:
    """(cond(A), Cholesky factor or None) for a large A without an eigendecomposition (O(k^3) with
    a large constant: 10k columns took ~20 min on 2 busy cores): the factor, then power iteration
    for the largest eigenvalue and inverse iteration through the factor for the smallest, each
    O(k^2) per step. The estimate is a lower bound on cond(A), typically within a few percent."""
    L, info = torch.linalg.cholesky_ex(A)
    if int(info) != 0:
        return float("inf"), None
    gen = torch.Generator(device="cpu").manual_seed(0)
    v0 = torch.rand(A.shape[0], generator=gen, dtype=F64).to(A.device) + 0.5

    def top(apply) -> float:
        v, lam = v0 / v0.norm(), 0.0
        for _ in range(60):  # (matrix-vector steps: one thread, see _cholesky_solver)
            t = apply(v)
            new = float(v @ t)
            v = t / t.norm()
            if abs(new - lam) <= 1e-2 * abs(new):  # cond only picks among methods decades apart
                return new
            lam = new
        return lam
    solve = _cholesky_solver(L)
    with one_torch_thread():
        big = top(lambda v: A @ v)
    inv = top(solve)
    return (big * inv if inv > 0 else float("inf")), L


def _solve_gram(system: StandardizedSystem, data, cond_a: float, L: Tensor | None = None):
    if L is None:
        A = _regularized(system)
        L, info = torch.linalg.cholesky_ex(A)
        del A
        if int(info) != 0:
            return None
    solve = _cholesky_solver(L)
    theta = solve(system.c)
    if cond_a < COND_DIRECT:
        return theta, None, "cholesky", 0, None
    w, b, passes, mean_rss = refine(system, data, theta, solve)
    return theta, (w, b), "cholesky+refinement", passes, mean_rss


def _solve_qr(system: StandardizedSystem, objective: Objective):
    """Streaming QR, SVD of R; minimum-norm (original units) when rank-deficient."""
    data, k = objective.data, system.k
    sw = system.sw
    ridge = None
    if objective.penalty.l2 > 0:
        ridge = torch.zeros(k, k + 1, dtype=F64, device=system.A.device)
        ridge[:k, :k] = torch.diag((system.lam * sw).sqrt())
    R = streaming_r(data, system.keep, system.cx[system.keep], system.D, system.cy, system.intercept, ridge)
    R = R / math.sqrt(sw)
    R11, q = R[:k, :k], R[:k, k]
    U, S, Vh = torch.linalg.svd(R11)
    rank = int((S > S[0] * RANK_RTOL).sum()) if S.numel() and S[0] > 0 else 0
    theta = Vh[:rank].T @ ((U[:, :rank].T @ q) / S[:rank])
    cond_z = float(S[0] / S[-1]) if S.numel() and S[-1] > 0 else float("inf")
    passes, method, null, wb, mean_rss = 0, "qr", Vh[rank:].T, None, None
    if rank == k and cond_z ** 2 * 2.2e-16 < 0.05:
        solve = lambda g: torch.linalg.solve_triangular(  # noqa: E731  R'R d = g
            R11, torch.linalg.solve_triangular(R11.T, g[:, None], upper=False), upper=True)[:, 0]
        w, b, passes, mean_rss = refine(system, data, theta, solve)
        wb, method = (w, b), "qr+refinement"
    elif rank == k:
        out = augmented_refine(system, data, theta, cond_z, ridge=objective.penalty.l2 > 0)
        if out is not None:
            wb, passes, mean_rss, method = out[:2], out[2], out[3], "qr+augmented-refinement"
    elif rank < k:
        method = "svd-minimum-norm"
    return theta, wb, method, passes, mean_rss, cond_z, rank, null, Vh[-1]


def _diagnose(objective: Objective, system: StandardizedSystem, cond_z: float, rank: int, null: Tensor | None,
              smallest: Tensor | None, solved: bool = True) -> tuple[list[int], str]:
    """(columns causing singularity, warning text or ''); ``solved``: words for this solver's answer,
    else for any solver's (the coefficients are not identified)."""
    nk = system.keep.numel()
    parts, cols = [], []
    names = objective.data.feature_names
    if system.constant.numel():
        parts.append(constant_phrase(names, system.constant.tolist(), system.intercept, solved))
        cols += system.constant.tolist()
    if null is not None and null.shape[1]:
        dep = [int(system.keep[j]) for j in range(nk) if float(null[j].abs().max()) > 0.05]
        cols += dep
        parts.append(dependent_phrase(names, dep, f"rank {rank} of {system.k}", solved))
    elif cond_z > COND_WARN:
        dep = [int(system.keep[j]) for j in range(nk)
               if smallest is not None and float(smallest[j].abs()) > 0.05]
        digits = max(0, int(15.6 - math.log10(cond_z)))
        cols += dep
        parts.append(f"the design is nearly singular (condition number {cond_z:.2g} after standardizing): "
                     f"a change in the data's last digit can change the coefficients after about {digits} digits; "
                     f"columns {_names(objective, dep)} are nearly collinear, drop or combine them")
    return sorted(set(cols)), "; ".join(parts)


_DESIGN_NOTES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # data -> {fit_intercept: text}


def forget_design(data) -> None:
    """Drop what :func:`design_warning` remembers of ``data``: a source kept by the caller may be
    read again after its rows changed (a rewritten file, a tensor changed in place)."""
    _DESIGN_NOTES.pop(data, None)


def record_design_note(data, fit_intercept: bool, note: str) -> None:
    """Remember ``note`` as :func:`design_warning`'s answer for ``data``: a solver that settled it from
    its own passes (the streamed L1 fit's bound on the condition number) spares the moments pass."""
    _DESIGN_NOTES.setdefault(data, {})[fit_intercept] = note


def design_warning(data, fit_intercept: bool) -> str:
    """The :class:`SingularDesignWarning` text for the unpenalized design ``[X, 1]`` of ``data`` ('' when
    every coefficient is identified and the condition number is below ``COND_WARN``), decided as the exact
    solver decides it (one moments pass; remembered per data source, so a fit whose certificate already
    solved the least-squares problem pays nothing). What :func:`gradfit.fit` warns with for every other
    solver, whatever the loss. Wide designs (more than ``EIGEN_MAX_K`` columns) are not checked."""
    known = _DESIGN_NOTES.get(data, {})
    if fit_intercept in known:
        return known[fit_intercept]
    if data.n_features > EIGEN_MAX_K:
        return ""
    from gradfit.problem.losses import get_loss
    from gradfit.problem.penalties import get_penalty
    objective = Objective(get_loss("squared"), get_penalty(None), data, fit_intercept)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            note = _gram_diagnosis(objective)
            if note is None:  # singular or ill-conditioned (or sparse): the exact solver's QR decides
                Exact().solve(objective, Settings(), objective.zeros())
                return _DESIGN_NOTES.get(data, {}).get(fit_intercept, "")
        except ValueError:  # values beyond float64's range: the fit's own checks speak for them
            return ""
    _DESIGN_NOTES.setdefault(data, {})[fit_intercept] = note
    return note


def _gram_diagnosis(objective: Objective) -> str | None:
    """The diagnosis :meth:`Exact.solve` reaches when its Gram route succeeds, from the moments pass
    alone: no solve and no refinement passes over the data (the coefficients are not needed). None
    when the exact solver would go further (a sparse design, ``cond(A) >= COND_GRAM``, Cholesky failing)."""
    full = objective.data.full_batch()
    if full is not None and is_sparse_rows(full.X):  # may take the CG route, which diagnoses nothing
        return None
    system = StandardizedSystem(objective.data, objective.fit_intercept, 0.0)
    if system.k == 0:
        return None
    A = _regularized(system)
    evals = torch.linalg.eigvalsh(A)
    cond_a = float(evals[-1] / evals[0]) if evals[0] > 0 else float("inf")
    if not cond_a < COND_GRAM or int(torch.linalg.cholesky_ex(A)[1]) != 0:
        return None
    return _diagnose(objective, system, math.sqrt(cond_a), system.k, None, None, solved=False)[1]


@register
class Exact(Solver):
    """Least squares and ridge in closed form (see the module docstring for the method)."""

    name = "exact"
    checks_finite = True
    runs_distributed = True
    losses = ("squared",)
    penalties = ("none", "l2")

    def solve(self, objective: Objective, settings: Settings, theta0: Tensor) -> FitResult:
        routed = sparse_route(objective, settings, theta0)  # a wide sparse design: CG, not the p x p Gram
        if routed is not None:
            return self._sparse_diagnosis(objective, routed)
        t0 = time.perf_counter()
        data = objective.data
        system = StandardizedSystem(objective.data, objective.fit_intercept, objective.penalty.l2)
        k, nk = system.k, system.keep.numel()
        null = smallest = mean_rss = wb = None
        if k == 0:
            theta_s = torch.zeros(0, dtype=F64, device=objective.device)
            method, passes, cond_z, rank = "trivial", 0, 1.0, 0
        else:
            L = None
            if k <= EIGEN_MAX_K:
                evals = torch.linalg.eigvalsh(_regularized(system))
                cond_a = float(evals[-1] / evals[0]) if evals[0] > 0 else float("inf")
            else:  # many columns (a wide sparse design): estimate from the Cholesky factor
                cond_a, L = _estimated_condition(_regularized(system))
            out = _solve_gram(system, data, cond_a, L) if cond_a < COND_GRAM else None
            if out is not None:
                theta_s, wb, method, passes, mean_rss = out
                cond_z, rank = math.sqrt(cond_a), k
            else:
                theta_s, wb, method, passes, mean_rss, cond_z, rank, null, smallest = _solve_qr(system, objective)
        w, b = system.coefficients(theta_s) if wb is None else wb
        if null is not None and null.shape[1]:  # minimum norm in original units: drop w's null-space part
            null_w = torch.zeros(objective.n_features, null.shape[1], dtype=F64, device=null.device)
            null_w[system.keep] = null[:nk] / system.D[:, None]
            N = orthonormal_columns(null_w)
            w = w - N @ (N.T @ w)
            tb = theta_s[nk] if system.intercept else 0.0
            b = tb + system.cy - system.cx @ w
            mean_rss = None
        cols, warning = _diagnose(objective, system, cond_z, rank, null, smallest)
        if objective.penalty.alpha == 0:  # the design's own diagnosis: fit() reuses it for other solvers
            _DESIGN_NOTES.setdefault(data, {})[objective.fit_intercept] = \
                _diagnose(objective, system, cond_z, rank, null, smallest, solved=False)[1]
        if warning:
            warnings.warn(warning, SingularDesignWarning, stacklevel=3)
        if mean_rss is None:
            mean_rss = self._mean_rss(system, theta_s)
        value = mean_rss + float(objective.penalty.value(w))
        theta = torch.cat([w, b.reshape(1) if objective.fit_intercept else torch.zeros(1, dtype=F64, device=w.device)])
        gap = self._rounding_gap(system, theta, objective, value)
        theta = theta.to(objective.dtype)
        history = History()
        history.append(value, theta.tolist(), gap, time.perf_counter() - t0)
        info = {"condition_number": cond_z, "method": method, "rank": rank, "refinement_passes": passes,
                "weight_sum": system.sw, "singular_columns": _names(objective, cols)}
        return FitResult(theta, True, 1 + passes, history, self.name, gap=gap,
                         message=warning or f"solved by {method}", info=info)

    @staticmethod
    def _sparse_diagnosis(objective: Objective, routed: FitResult) -> FitResult:
        """Warn with (and remember) what the CG route's O(nnz) checks proved about the design."""
        design = routed.info.pop("design")
        names, intercept = objective.data.feature_names, objective.fit_intercept
        warning = design.note(names, intercept, solved=True, penalized=objective.penalty.l2 > 0)
        if objective.penalty.alpha == 0:
            _DESIGN_NOTES.setdefault(objective.data, {})[intercept] = design.note(names, intercept, solved=False)
        if warning:
            warnings.warn(warning, SingularDesignWarning, stacklevel=4)
            routed.message = f"{warning}; {routed.message}"
        routed.info["singular_columns"] = column_names(
            names, design.constant if objective.penalty.l2 > 0 else design.columns)
        routed.info["design_checks"] = CHECKS_RUN
        return routed

    @staticmethod
    def _rounding_gap(system: StandardizedSystem, theta: Tensor, objective: Objective, value: float) -> float:
        """Relative objective gap of ``theta`` once rounded to the data's dtype (0 in float64): the
        objective is quadratic with zero gradient at the float64 solution, so rounding it by ``d``
        costs exactly ``d'(A + diag(lam))d`` in standardized coordinates."""
        if objective.dtype == F64 or system.k == 0:
            return 0.0
        d = theta.to(objective.dtype).to(F64) - theta
        nk = system.keep.numel()
        ds = torch.zeros(system.k, dtype=F64, device=theta.device)
        ds[:nk] = d[:-1][system.keep] * system.D
        if system.intercept:
            ds[nk] = d[-1] + system.cx @ d[:-1]
        cost = float(ds @ (system.A @ ds)) + float((system.lam * ds * ds).sum())
        return cost / objective.gap_scale(value)

    @staticmethod
    def _mean_rss(system: StandardizedSystem, theta: Tensor) -> float:
        if theta.numel() == 0:
            return system.tt
        return max(system.tt - 2 * float(theta @ system.c) + float(theta @ system.A @ theta), 0.0)
