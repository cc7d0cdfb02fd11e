"""Shared math of the penalized smooth-loss solvers (cd, prox): data passes and the duality gap.

For a loss ``rho = c * phi`` with ``phi(r) = r**2/2`` (squared, ``c = 2``) or Huber (``c = 1``),
the objective divided by c is

    P(w, b) = sum_i s_i phi(r_i) / S + lam1 ||w||_1 + lam2/2 ||w||^2,  lam = (l1, l2) / c.

Its Fenchel dual over ``theta`` (``sum s theta = 0`` with an intercept, ``|theta_i| <= delta``
for Huber) is

    D(theta) = (sum s theta y - sum s theta**2 / 2) / S - h*(X' s theta / S),
    h*(g) = sum_j (|g_j| - lam1)_+**2 / (2 lam2)   (lam2 > 0; else 0 when |g| <= lam1).

``theta = phi'(r)`` at the current point, centred (intercept) and shrunk to feasibility, gives
``D <= P* <= P``; ``(P - D) / P`` bounds the relative objective gap (sklearn/skglm's rule).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from gradfit.data.batches import Batches
from gradfit.numerics.moments import moments
from gradfit.numerics.passes import row_chunks
from gradfit.problem.objective import relative_gap


def loss_scale(loss) -> float:
    """c in rho = c * phi."""
    return 2.0 if loss.name == "squared" else 1.0


def dual_box(loss) -> float:
    return float(loss.delta) if loss.name == "huber" else math.inf


PASS_ROWS = 65536  # rows of a chunk of :func:`data_pass` (in-memory rows are sliced, not copied)


@dataclass
class PassStats:
    """Sums over all rows at one (w, b): S, sum s rho(r), and with d = s*rho'(r):
    X'd, sum d, sum d*y, sum s*rho'(r)**2, plus X's and s'y (for centring)."""

    S: float
    loss_sum: float
    xd: Tensor
    d_sum: float
    dy: float
    d2: float
    xs: Tensor
    sy: float


def data_pass(data: Batches, loss, w: Tensor, b: float) -> PassStats:
    """One pass over the data (in memory or streamed); sums combined by ``data.allreduce``."""
    p = w.shape[0]
    acc = torch.zeros(2 * p + 6, dtype=torch.float64, device=w.device)
    for X, y, weight in row_chunks(data, PASS_ROWS):
        X, y = X.to(torch.float64), y.to(torch.float64)
        r = y - X @ w - b
        d1 = loss.derivative(r)
        if weight is not None:
            s = weight.to(torch.float64)
            d, rho_sum, S, sy, xs = s * d1, s @ loss.value(r), s.sum(), s @ y, s @ X
        else:
            d, rho_sum, S, sy, xs = d1, loss.value(r).sum(), torch.full((), float(len(y)), dtype=torch.float64,
                                                                        device=w.device), y.sum(), X.sum(0)
        acc[:p] += X.T @ d
        acc[p:2 * p] += xs
        acc[2 * p:] += torch.stack([S, rho_sum, d.sum(), d @ y, d @ d1, sy])
    acc = data.allreduce(acc)
    S, rho_sum, d_sum, dy, d2, sy = acc[2 * p:].tolist()
    return PassStats(S, rho_sum, acc[:p], d_sum, dy, d2, acc[p:2 * p], sy)


def dual_gap(primal_fit: float, ty: float, t2: float, g: Tensor, w: Tensor, lam1: float, lam2: float,
             shrink: float = 1.0, positive: bool = False, bound: float = math.inf) -> tuple[float, float]:
    """(relative gap, P) from normalized dual sums at theta: ``ty = sum s theta y / S``,
    ``t2 = sum s theta**2 / S``, ``g = X' s theta / S``; ``primal_fit`` = sum s phi(r) / S;
    ``shrink`` <= 1 already makes theta box-feasible.

    ``positive`` (``w >= 0``): the conjugate sees only ``g_j > 0`` (``(g_j - lam1)_+`` in place of
    ``(|g_j| - lam1)_+``). Without any penalty (non-negative least squares) no scaling of theta is
    feasible, so the conjugate of the problem restricted to ``0 <= w <= bound`` is used: ``bound *
    sum (g)_+``, a valid dual bound when ``bound`` is an a-priori bound on the optimum's entries
    (infinite: no certificate unless ``g <= 0``)."""
    pen = lam1 * float(w.abs().sum()) + 0.5 * lam2 * float(w @ w)
    primal = primal_fit + pen
    k = shrink
    ga = g.clamp_min(0.0) if positive else g.abs()
    gmax = float(ga.max()) if ga.numel() else 0.0
    conj = 0.0
    if lam2 == 0.0 and gmax * k > lam1:
        if lam1 == 0.0:
            if not (positive and math.isfinite(bound)):
                return math.inf, primal
            conj = bound * k * float(ga.sum())
        else:
            k = lam1 / gmax
    if lam2 > 0.0:
        conj = float(((k * ga) - lam1).clamp_min(0.0).square().sum()) / (2.0 * lam2)
    dual = k * ty - 0.5 * k * k * t2 - conj
    return relative_gap(primal, dual, max(abs(primal), 1e-300)), primal


def gap_from_pass(st: PassStats, loss, penalty, w: Tensor, fit_intercept: bool,
                  bound: float = math.inf) -> tuple[float, float]:
    """(relative gap bound, objective F) at the point the pass was made at (``bound``: see :func:`dual_gap`)."""
    c = loss_scale(loss)
    lam1, lam2 = penalty.l1 / c, penalty.l2 / c
    # theta = rho'(r)/c, centred with an intercept
    m = st.d_sum / st.S / c if fit_intercept else 0.0
    ty = (st.dy / c - m * st.sy) / st.S
    t2 = st.d2 / (c * c) / st.S - m * m if fit_intercept else st.d2 / (c * c) / st.S
    g = (st.xd / c - m * st.xs) / st.S
    box = dual_box(loss)
    shrink = box / (box + abs(m)) if math.isfinite(box) else 1.0  # |theta - m| <= delta + |m|
    gap, primal = dual_gap(st.loss_sum / c / st.S, ty, max(t2, 0.0), g, w, lam1, lam2, shrink,
                           penalty.positive, bound)
    return gap, c * primal


def weighted_covariance(data: Batches, fit_intercept: bool, with_y: bool = False):
    """(S, mean x, centred weighted X'SX / S) -- raw second moments without intercept -- over every
    process. ``with_y`` treats y as a last column of X (giving X'Sy/S and y'Sy/S in the last row)."""
    sums = moments(data).allreduce(data)
    sums = sums.centered() if fit_intercept else sums.about_zero()
    p = data.n_features
    idx = list(range(p)) + ([p + 1] if with_y else [])
    mean = torch.cat([sums.shift_x, sums.shift_y])[:len(idx)]
    S = sums.weight
    return S, mean, sums.M[idx][:, idx] / S


GAP_TARGET = 1e-14  # 20x the rounding floor of a computed relative gap (relative_gap adds ~4.4e-16)


class GapProgress:
    """When a penalized solver (cd, prox) stops: its certified gap is at most ``min(tol, GAP_TARGET)``,
    or, once it is within ``tol``, it has not halved in ``patience`` epochs (rounding is in the way).

    Going past ``tol`` is on purpose: a relative objective gap ``g`` pins the coefficients only to
    about ``sqrt(g)`` of their size, so the default ``tol`` alone would give 4 digits, and these
    epochs are cheap. ``converged_`` still means ``gap_ <= tol``."""

    def __init__(self, tol: float, patience: int = 10):
        self.tol, self.target, self.patience = tol, min(tol, GAP_TARGET), patience
        self.best, self.since = math.inf, 0

    def done(self, gap: float) -> bool:
        if gap <= self.target:
            return True
        if gap < self.best / 2:
            self.best, self.since = gap, 0
        else:
            self.since += 1
        return gap <= self.tol and self.since >= self.patience
