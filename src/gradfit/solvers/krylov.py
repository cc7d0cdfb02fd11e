"""Conjugate gradients on the normal equations of sparse least squares / ridge, never forming ``X'X``.

Minimizes ``F(w, b) = sum_i s_i (y_i - x_i.w - b)^2 / S + l2/2 ||w||^2`` (the squared loss with the
L2 penalty, ``S = sum s``). The intercept is eliminated (``b = ybar - xbar.w``, weighted means), leaving
the normal equations of the centred problem

    H w = c,   H = X_c' S X_c / S + (l2/2) I,   c = X_c' S (y - ybar) / S,

where each product ``H v`` costs two sparse products (``X v``, ``X'(s u)``) and a rank-one
correction for the centring: O(nnz) time and O(n + p) memory, against the sparse Gram route's
p x p matrix and O(p^3) Cholesky. CG runs on the Jacobi-preconditioned (column-standardized) system.

Certificate: F is quadratic, so ``F(w) - F* = g' H^-1 g`` exactly, with ``g = H w - c`` recomputed
from a fresh pass (not the CG recursion). With a ridge penalty ``lambda_min(H) >= l2/2`` bounds it
by ``||g||^2 / (l2/2)``: a rigorous relative gap. Without one, ``lambda_min`` of the preconditioned
system is taken from CG's own Lanczos tridiagonal (its smallest Ritz value, which approaches
``lambda_min`` from above), so the gap is an estimate; ``info["certificate"]`` says which.

:func:`sparse_route` is the exact solver's automatic choice for a sparse in-memory design whose
Gram matrix would cost more than ``CG_MIN_PASSES`` CG steps (:func:`gram_is_big`); CG gets as many
steps as the Gram route would cost (:func:`cg_budget`), and when it does not certify ``tol`` within
them it returns None and the exact Gram route runs instead (at most twice that route's time). Before
it, :func:`gradfit.solvers.design_checks.check_sparse_design` looks for what makes the coefficients
not identified (constant, duplicated or one-hot columns, fewer rows than coefficients) in O(nnz).
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch
from torch import Tensor

from gradfit.exceptions import SolverMismatch
from gradfit.numerics.moments import is_sparse_rows
from gradfit.problem.objective import Objective, relative_gap
from gradfit.solvers.base import FitResult, Settings, Solver
from gradfit.solvers.design_checks import check_sparse_design
from gradfit.solvers.history import History
from gradfit.solvers.registry import register

CG_MIN_PASSES = 20  # the Gram route must cost at least this many CG steps for CG to be tried
CG_MAX_PASSES = 5000
GAP_TARGET = 1e-14


def cg_budget(csr) -> int:
    """CG steps (two sparse products each) that cost what the sparse Gram route would: its
    ``sum_rows nnz_row^2`` products plus a p x p Cholesky (``p^3 / 3``)."""
    p = csr.shape[1]
    row_nnz = np.diff(csr.indptr).astype(np.float64)
    gram = float(row_nnz @ row_nnz) + p ** 3 / 3.0
    return int(min(gram / (2.0 * max(csr.nnz, 1)), CG_MAX_PASSES))


def gram_is_big(csr) -> bool:
    """True when the sparse Gram route would cost more than ``CG_MIN_PASSES`` CG steps (and p > 500).
    CG then gets :func:`cg_budget` steps: falling back to the Gram route at most doubles its time."""
    return csr.shape[1] > 500 and cg_budget(csr) >= CG_MIN_PASSES


class _Normal:
    """Products with ``H`` and the sums of the centred problem, on the rows (CSR, or a dense array)."""

    def __init__(self, csr, y: np.ndarray, s: np.ndarray | None, l2: float, fit_intercept: bool):
        self.csr, self.csr_t = csr, csr.T  # CSR: a CSC view, X'u scatters into a p-vector that stays in cache
        n, p = csr.shape
        self.s = np.ones(n) if s is None else s
        self.S = float(self.s.sum())
        self.mx = np.asarray(self.csr_t @ self.s).ravel() / self.S if fit_intercept else np.zeros(p)
        self.my = float(self.s @ y) / self.S if fit_intercept else 0.0
        self.yc = y - self.my
        self.half_l2 = l2 / 2.0
        self.c = self.xt(self.s * self.yc) / self.S
        sq = np.asarray((csr.power(2) if hasattr(csr, "power") else csr * csr).T @ self.s).ravel()
        self.diag = np.maximum(sq / self.S - self.mx * self.mx, 0.0) + self.half_l2

    def x(self, v: np.ndarray) -> np.ndarray:
        """``X_c v``."""
        return self.csr @ v - float(self.mx @ v)

    def xt(self, u: np.ndarray) -> np.ndarray:
        """``X_c' u``."""
        return self.csr_t @ u - self.mx * float(u.sum())

    def h(self, v: np.ndarray) -> np.ndarray:
        return self.xt(self.s * self.x(v)) / self.S + self.half_l2 * v

    def state(self, w: np.ndarray) -> tuple[np.ndarray, float]:
        """A fresh pass at ``w``: ``(g = H w - c, F(w))``."""
        r = self.yc - self.x(w)
        sr = self.s * r
        g = -self.xt(sr) / self.S + self.half_l2 * w
        return g, float(sr @ r) / self.S + self.half_l2 * float(w @ w)


def _ritz_min(alphas: list[float], betas: list[float]) -> float:
    """Smallest eigenvalue of CG's Lanczos tridiagonal (from its step sizes and residual ratios)."""
    k = len(alphas)
    if k == 0:
        return math.nan
    d = np.empty(k)
    e = np.empty(max(k - 1, 0))
    for i, a in enumerate(alphas):
        d[i] = 1.0 / a + (betas[i - 1] / alphas[i - 1] if i else 0.0)
        if i < k - 1:
            e[i] = math.sqrt(max(betas[i], 0.0)) / a
    T = np.diag(d) + np.diag(e, 1) + np.diag(e, -1)
    return float(np.linalg.eigvalsh(T)[0])


def conjugate_gradients(objective: Objective, settings: Settings, theta0: Tensor, max_iter: int,
                        fixed: np.ndarray | None = None, precondition: bool = True) -> FitResult:
    """Preconditioned CG from ``theta0``'s ``w`` until the certified relative gap is within
    ``min(tol, 1e-14)`` (or only within ``tol`` once it stops improving), or ``max_iter`` products.
    The columns ``fixed`` keep their start value; ``precondition=False``: plain CG (from 0, its iterates
    stay in the row space of the centred design, so a singular system ends at the minimum-norm point)."""
    t0 = time.perf_counter()
    full = objective.data.full_batch()
    csr = (full.X.csr.astype(np.float64, copy=False) if is_sparse_rows(full.X)
           else full.X.detach().cpu().to(torch.float64).numpy())
    y = full.y.detach().cpu().to(torch.float64).numpy()
    s = None if full.weight is None else full.weight.detach().cpu().to(torch.float64).numpy()
    l2 = float(objective.penalty.l2)
    eq = _Normal(csr, y, s, l2, objective.fit_intercept)
    pinv = np.where(eq.diag > 0, 1.0 / np.where(eq.diag > 0, eq.diag, 1.0), 0.0)
    if not precondition:
        pinv = (eq.diag > 0).astype(np.float64)
    if fixed is not None and fixed.size:
        pinv[fixed] = 0.0
    w = theta0[:-1].detach().cpu().to(torch.float64).numpy().copy()
    g, value = eq.state(w)
    r = -g
    z = pinv * r
    d = z.copy()
    rz = float(r @ z)
    alphas: list[float] = []
    betas: list[float] = []
    target = min(settings.tol, GAP_TARGET)
    history = History()
    gap, it, certificate = math.inf, 0, "none"

    def certify(g: np.ndarray, value: float) -> tuple[float, str]:
        if l2 > 0:
            excess, kind = float(g @ g) / (l2 / 2.0), "rigorous (lambda_min(H) >= l2/2)"
        else:
            lam = _ritz_min(alphas, betas)  # of the preconditioned system
            if not lam > 0:
                return math.inf, "none"
            excess, kind = float(g @ (pinv * g)) / lam, "estimated (Lanczos lambda_min)"
        return relative_gap(value, value - excess, objective.gap_scale(value)), kind

    best, since = math.inf, 0
    for it in range(1, max_iter + 1):
        if rz <= 0.0:
            break
        Hd = eq.h(d)
        dHd = float(d @ Hd)
        if not dHd > 0.0:
            break
        alpha = rz / dHd
        w += alpha * d
        r -= alpha * Hd
        z = pinv * r
        rz_new = float(r @ z)
        beta = rz_new / rz
        alphas.append(alpha)
        betas.append(beta)
        rz = rz_new
        d = z + beta * d
        if it % 10 == 0 or it == max_iter or rz == 0.0:
            g, value = eq.state(w)  # the true residual: the recursion drifts
            r = -g
            z = pinv * r
            rz = float(r @ z)
            gap, certificate = certify(g, value)
            history.append(value, None, gap, time.perf_counter() - t0)
            if gap <= target:
                break
            if gap < best / 2:
                best, since = gap, 0
            else:
                since += 1
                if gap <= settings.tol and since >= 3:
                    break
    g, value = eq.state(w)
    gap, certificate = certify(g, value)
    b = eq.my - float(eq.mx @ w) if objective.fit_intercept else 0.0
    theta = torch.from_numpy(np.append(w, b)).to(objective.device)
    history.append(value, theta.tolist(), gap, time.perf_counter() - t0)
    converged = gap <= settings.tol
    msg = (f"conjugate gradients on the sparse normal equations: relative gap {gap:.1e} ({certificate})")
    return FitResult(theta.to(objective.dtype), converged, it, history, "cg", gap=gap, message=msg,
                     info={"method": "cg", "certificate": certificate, "products": it})


def sparse_route(objective: Objective, settings: Settings, theta0: Tensor) -> FitResult | None:
    """CG instead of the sparse Gram when that Gram would be big (:func:`gram_is_big`) and the rows are
    in memory on one process; None (use the Gram route) otherwise or when CG does not certify ``tol``.

    The design is first checked in O(nnz) (:func:`check_sparse_design`): constant columns are held at
    0, and when a check proves the columns dependent (and no ridge penalty makes the answer unique) CG
    runs unpreconditioned from 0, whose iterates stay in the row space of the centred design: the
    minimum-norm solution, as the exact solver returns. ``info["design"]`` holds the findings."""
    data = objective.data
    full = data.full_batch()
    if full is None or data.distributed or not is_sparse_rows(full.X) or objective.penalty.l1 > 0:
        return None
    if not gram_is_big(full.X.csr):
        return None
    weight = None if full.weight is None else full.weight.detach().cpu().to(torch.float64).numpy()
    design = check_sparse_design(full.X.csr, weight, objective.fit_intercept)
    min_norm = design.dependent and objective.penalty.l2 == 0
    start = theta0.clone()
    if min_norm:
        start.zero_()
    start[torch.as_tensor(design.constant, dtype=torch.long)] = 0
    result = conjugate_gradients(objective, settings, start, max_iter=cg_budget(full.X.csr),
                                 fixed=design.constant, precondition=not min_norm)
    if not result.converged:
        return None
    result.info["design"] = design
    return result


@register
class ConjugateGradients(Solver):
    """CG on the normal equations of rows held in memory (sparse or dense), certified by the gap of
    the quadratic. The exact solver calls it by itself for wide sparse designs (:func:`sparse_route`)."""

    name = "cg"
    streams = False  # the rows are held in memory (sparse), read by every product
    losses, penalties = ("squared",), ("none", "l2")

    def solve(self, objective: Objective, settings: Settings, theta0: Tensor) -> FitResult:
        full = objective.data.full_batch()
        if full is None or objective.data.distributed:
            raise SolverMismatch("solver 'cg' needs the rows in memory on one process; use 'exact' (or 'auto') "
                                 "for streamed or distributed data")
        return conjugate_gradients(objective, settings, theta0, max_iter=max(settings.epochs, 1))
