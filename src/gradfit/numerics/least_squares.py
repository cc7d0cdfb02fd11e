"""Least squares (and ridge) from weighted moments, refined to the float64 data's exact solution.

:class:`StandardizedSystem` turns one pass of :class:`~gradfit.numerics.moments.Moments` into the normal
equations of the standardized design ``Z`` (columns centred and divided by their spread), with the
maps between standardized and original coordinates. Two refinements reach the least-squares
solution of the float64 data, both with residuals in double-double arithmetic
(:mod:`gradfit.numerics.compensated`):

* :func:`refine`: corrected semi-normal equations, one streamed pass a step; contracts by about
  ``cond(Z)^2 * eps`` a step.
* :func:`augmented_refine`: Björck's refinement of the augmented system with a Householder QR of
  ``Z`` kept in memory; contracts by about ``cond(Z) * eps``, so it reaches ~1e-16 up to
  ``cond(Z) ~ 1e13`` (in-memory, unweighted, unpenalized rows).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from gradfit.numerics.compensated import compensated_gradient_pass, residual_minus, transpose_product
from gradfit.numerics.moments import moments
from gradfit.numerics.passes import F64, is_sparse_rows
from gradfit.problem.batches import Batches

MAX_REFINE = 8
AUGMENTED_MAX = 1 << 24  # rows x columns up to which the ill-conditioned fit keeps Q (128 MB) for refinement


class StandardizedSystem:
    """The standardized problem ``min ||sqrt(s)(t - Z theta)||^2/sw + sum lam_j theta_j^2`` of
    ``min sum s (y - Xw - b)^2 / sw + l2/2 ||w||^2`` (b = 0 without ``intercept``), built from one
    pass of weighted moments over ``data`` (every process's): ``A = Z'SZ/sw``, ``c = Z'St/sw``,
    ``tt = t'St/sw``, constant columns set aside (``constant``; the others are ``keep``)."""

    def __init__(self, data: Batches, intercept: bool, l2: float = 0.0):
        p = data.n_features
        self.p, self.intercept = p, intercept
        sums = moments(data)
        if not bool(torch.isfinite(sums.M).all()):  # a NaN/inf in X or y reaches X'X's diagonal or y'y
            data.validate()  # raises DataError naming the column and row
            kind = str(sums.M.dtype).replace("torch.", "")
            raise ValueError(f"the data's sums are not finite: values too large for {kind}; rescale them"
                             + (", or use --dtype float64" if kind != "float64" else ""))
        sums = sums.allreduce(data)  # every process's sums
        self.sw = sums.weight
        if not self.sw > 0:
            raise ValueError("least squares needs at least one row with positive weight")
        sums = sums.centered()
        M, mx, my = sums.M, sums.shift_x, sums.shift_y[0]
        # centre of the design and of the target: the means with an intercept, else zero
        self.cx = mx if self.intercept else torch.zeros_like(mx)
        self.cy = my if self.intercept else torch.zeros_like(my)
        a = mx - self.cx
        var = (torch.diagonal(M)[:p] + 2 * a * M[p, :p] + a * a * M[p, p]) / self.sw
        D = var.clamp_min(0).sqrt()
        const = (D <= 1e-12 * mx.abs()) | (D == 0)
        self.constant = const.nonzero().flatten()
        self.keep = (~const).nonzero().flatten()
        self.D = D[self.keep]
        nk = self.keep.numel()
        self.k = nk + int(self.intercept)
        # A = T'MT/sw, c = T'Mu/sw for the map T from standardized to raw coordinates (column j:
        # e_keep_j / D_j + e_p a_j / D_j; the intercept: e_p), in O(p^2) and with two k x k
        # temporaries at most (a wide sparse design has k ~ 10^4: 800 MB each)
        all_kept = nk == p
        sc = a[self.keep] / self.D
        MT = (M[:, :p] if all_kept else M[:, self.keep]) / self.D  # M T for the kept columns
        MT.addr_(M[:, p], sc)
        A = torch.empty(self.k, self.k, dtype=F64, device=M.device)
        torch.div(MT[:p] if all_kept else MT[self.keep], self.D[:, None], out=A[:nk, :nk])
        A[:nk, :nk].addr_(sc, MT[p])
        del_y = my - self.cy
        c = torch.empty(self.k, dtype=F64, device=M.device)
        c[:nk] = MT[p + 1] + del_y * MT[p]
        if self.intercept:  # the intercept's column of M T is M[:, p]
            col = M[self.keep, p] / self.D + sc * M[p, p]
            A[:nk, nk], A[nk, :nk], A[nk, nk] = col, col, M[p, p]
            c[nk] = M[p + 1, p] + del_y * M[p, p]
        del MT
        self.A = A.div_(self.sw)
        self.c = c / self.sw
        self.tt = float(M[p + 1, p + 1] + 2 * del_y * M[p, p + 1] + del_y * del_y * M[p, p]) / self.sw
        self.lam = torch.zeros(self.k, dtype=F64, device=M.device)
        self.lam[:nk] = l2 / 2.0 / (self.D * self.D)

    def coefficients(self, theta: Tensor) -> tuple[Tensor, Tensor]:
        """(w over all p columns in original units, intercept b) from standardized theta."""
        w = torch.zeros(self.p, dtype=F64, device=theta.device)
        nk = self.keep.numel()
        w[self.keep] = theta[:nk] / self.D
        tb = theta[nk] if self.intercept else torch.zeros((), dtype=F64, device=theta.device)
        return w, tb + self.cy - self.cx @ w

    def standardized(self, w: Tensor, b: Tensor) -> Tensor:
        """theta from (w, b) in original units (the inverse of :meth:`coefficients`)."""
        nk = self.keep.numel()
        theta = torch.empty(self.k, dtype=F64, device=w.device)
        theta[:nk] = w[self.keep] * self.D
        if self.intercept:
            theta[nk] = b - self.cy + self.cx @ w
        return theta

    def moved(self, w: Tensor, b: Tensor, d: Tensor) -> tuple[Tensor, Tensor]:
        """(w, b) plus a standardized correction ``d``, mapped on its own: the iterate stays in
        original units, so an intercept that is small next to ``cx @ w`` keeps its digits."""
        nk = self.keep.numel()
        dw = torch.zeros(self.p, dtype=F64, device=d.device)
        dw[self.keep] = d[:nk] / self.D
        db = d[nk] - self.cx @ dw if self.intercept else torch.zeros((), dtype=F64, device=d.device)
        return w + dw, b + db

    def residual_gradient(self, data, w: Tensor, b: Tensor) -> tuple[Tensor, float]:
        """One pass: the negative gradient ``(Z'S r)/sw - lam*theta`` at (w, b) and the mean weighted r^2."""
        nk = self.keep.numel()
        theta = self.standardized(w, b)
        gx, g1, rss = compensated_gradient_pass(data, w, float(b) if self.intercept else 0.0)
        gx, g1, rss = (data.allreduce(t) for t in (gx, g1, rss))
        g = torch.empty(self.k, dtype=F64, device=theta.device)
        # Z_j = (x_j - cx_j) / D_j, so Z_j'Sr = (X_j'Sr - cx_j * 1'Sr) / D_j
        g[:nk] = (gx[self.keep] - self.cx[self.keep] * g1) / self.D
        if self.intercept:
            g[nk] = g1
        return g / self.sw - self.lam * theta, float(rss) / self.sw


def refine(system: StandardizedSystem, data, theta: Tensor, solve) -> tuple[Tensor, Tensor, int, float | None]:
    """Corrected semi-normal equations from ``theta``: (w, b) += A^-1 (Z'S r/sw - lam*theta) until
    the step stalls; returns (w, b) in original units, the passes and the mean weighted r^2."""
    w, b = system.coefficients(theta)
    mean_rss, last = None, float("inf")
    for it in range(1, MAX_REFINE + 1):
        g, mean_rss = system.residual_gradient(data, w, b)
        d = solve(g)
        size = float(d.norm())
        if not math.isfinite(size) or size > 0.5 * last:  # stalled at rounding level: keep (w, b)
            return w, b, it, mean_rss
        (w, b), last = system.moved(w, b, d), size
        if size <= 1e-17 * float(system.standardized(w, b).norm()):
            return w, b, it, mean_rss
    return w, b, MAX_REFINE, mean_rss


def augmented_refine(system: StandardizedSystem, data: Batches, theta: Tensor, cond_z: float, ridge: bool = False):
    """Björck's iterative refinement of the augmented system ``r + Z theta = y - cy, Z'r = 0`` with a
    Householder QR ``Z = QR`` kept in memory and both residuals in double-double arithmetic. It
    contracts by about cond(Z) * eps per step (the semi-normal equations: cond(Z)^2 * eps), so it
    reaches the least-squares solution of the float64 data to ~1e-16 up to cond(Z) ~ 1e13.
    In-memory, unweighted, unpenalized (not ``ridge``) rows only; None otherwise."""
    full = data.full_batch()
    if (full is None or full.weight is not None or ridge or is_sparse_rows(full.X)
            or data.distributed or cond_z * 2.2e-16 * 100 > 0.1
            or full.X.shape[0] * system.k > AUGMENTED_MAX):
        return None
    nk = system.keep.numel()
    X, y = full.X.to(F64)[:, system.keep], full.y.to(F64)
    Z = torch.empty(X.shape[0], system.k, dtype=F64, device=X.device)
    Z[:, :nk] = (X - system.cx[system.keep]) / system.D
    if system.intercept:
        Z[:, nk] = 1.0
    Q, R = torch.linalg.qr(Z)
    del Z
    w, b = system.coefficients(theta)
    b = b if system.intercept else torch.zeros((), dtype=F64, device=X.device)
    r = residual_minus(X, y, w[system.keep], float(b), torch.zeros_like(y))
    last, passes = float("inf"), 0
    for passes in range(1, MAX_REFINE + 1):
        f = residual_minus(X, y, w[system.keep], float(b), r)
        g_raw = transpose_product(X, r)  # [X_keep, 1]'r
        g = torch.empty(system.k, dtype=F64, device=X.device)
        g[:nk] = -(g_raw[:nk] - system.cx[system.keep] * g_raw[nk]) / system.D
        if system.intercept:
            g[nk] = -g_raw[nk]
        h = torch.linalg.solve_triangular(R.T, g[:, None], upper=False)[:, 0]
        u = Q.T @ f - h
        d = torch.linalg.solve_triangular(R, u[:, None], upper=True)[:, 0]
        size = float(d.norm())
        if not math.isfinite(size) or size > 0.5 * last:
            break
        r = r + (f - Q @ u)
        (w, b), last = system.moved(w, b, d), size
        if size <= 1e-17 * float(system.standardized(w, b).norm()):
            break
    return w, b, passes, float(r @ r) / system.sw
