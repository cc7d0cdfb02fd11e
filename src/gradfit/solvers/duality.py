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

from gradfit.data.batches import Batch, Batches
from gradfit.numerics.moments import is_sparse_rows, reshift
from gradfit.numerics.sparse_gram import sparse_moments
from gradfit.problem.objective import relative_gap


def loss_scale(loss) -> float:
    """c in rho = c * phi."""
    return 2.0 if loss.name == "squared" else 1.0


def dual_box(loss) -> float:
    return float(loss.delta) if loss.name == "huber" else math.inf


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


def _blocks(data: Batches, rows: int = 65536):
    """The data in cache-friendly row blocks (in-memory data is sliced, not copied)."""
    full = data.full_batch()
    if full is None:
        yield from data
        return
    for a in range(0, len(full), rows):
        yield Batch(full.X[a:a + rows], full.y[a:a + rows], None if full.weight is None else full.weight[a:a + rows])


def data_pass(data: Batches, loss, w: Tensor, b: float) -> PassStats:
    """One pass over the data (in memory or streamed); sums combined by ``data.allreduce``."""
    p = w.shape[0]
    acc = torch.zeros(2 * p + 6, dtype=torch.float64, device=w.device)
    for batch in _blocks(data):
        X, y = batch.X.to(torch.float64), batch.y.to(torch.float64)
        r = y - X @ w - b
        d1 = loss.derivative(r)
        if batch.weight is not None:
            s = batch.weight.to(torch.float64)
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
             shrink: float = 1.0) -> tuple[float, float]:
    """(relative gap, P) from normalized dual sums at theta: ``ty = sum s theta y / S``,
    ``t2 = sum s theta**2 / S``, ``g = X' s theta / S``; ``primal_fit`` = sum s phi(r) / S;
    ``shrink`` <= 1 already makes theta box-feasible."""
    pen = lam1 * float(w.abs().sum()) + 0.5 * lam2 * float(w @ w)
    primal = primal_fit + pen
    k = shrink
    gmax = float(g.abs().max()) if g.numel() else 0.0
    if lam2 == 0.0 and gmax * k > lam1:
        if lam1 == 0.0:
            return math.inf, primal
        k = lam1 / gmax
    conj = 0.0
    if lam2 > 0.0:
        conj = float(((k * g).abs() - lam1).clamp_min(0.0).square().sum()) / (2.0 * lam2)
    dual = k * ty - 0.5 * k * k * t2 - conj
    return relative_gap(primal, dual, max(abs(primal), 1e-300)), primal


def gap_from_pass(st: PassStats, loss, penalty, w: Tensor, fit_intercept: bool) -> tuple[float, float]:
    """(relative gap bound, objective F) at the point the pass was made at."""
    c = loss_scale(loss)
    lam1, lam2 = penalty.l1 / c, penalty.l2 / c
    # theta = rho'(r)/c, centred with an intercept
    m = st.d_sum / st.S / c if fit_intercept else 0.0
    ty = (st.dy / c - m * st.sy) / st.S
    t2 = st.d2 / (c * c) / st.S - m * m if fit_intercept else st.d2 / (c * c) / st.S
    g = (st.xd / c - m * st.xs) / st.S
    box = dual_box(loss)
    shrink = box / (box + abs(m)) if math.isfinite(box) else 1.0  # |theta - m| <= delta + |m|
    gap, primal = dual_gap(st.loss_sum / c / st.S, ty, max(t2, 0.0), g, w, lam1, lam2, shrink)
    return gap, c * primal


def moments(data: Batches, fit_intercept: bool, with_y: bool = False):
    """(S, mean x, centred weighted X'SX / S) -- raw second moments without intercept.
    ``with_y`` treats y as a last column of X (giving X'Sy/S and y'Sy/S in the last row).

    Two passes (the means, then the moments around them), so no digits cancel when centring and
    a distributed source gives the same numbers as one process."""
    p = data.n_features
    q = p + int(with_y)
    dev = data.device
    full = data.full_batch()
    if full is not None and is_sparse_rows(full.X):
        return _sparse_moments(data, full, fit_intercept, with_y)
    acc = torch.zeros(q + 1, dtype=torch.float64, device=dev)
    for batch in _blocks(data):
        X, y = batch.X.to(torch.float64), batch.y.to(torch.float64)
        w = None if batch.weight is None else batch.weight.to(torch.float64)
        acc[0] += X.shape[0] if w is None else w.sum()
        acc[1:p + 1] += X.sum(0) if w is None else w @ X
        if with_y:
            acc[p + 1] += y.sum() if w is None else w @ y
    acc = data.allreduce(acc)
    S = float(acc[0])
    mean = acc[1:] / S if fit_intercept else torch.zeros(q, dtype=torch.float64, device=dev)
    xx = torch.zeros(q, q, dtype=torch.float64, device=dev)
    for batch in _blocks(data):
        Xc = torch.empty(len(batch), q, dtype=torch.float64, device=dev)  # centred [X, y], one write
        torch.sub(batch.X.to(torch.float64), mean[:p], out=Xc[:, :p])
        if with_y:
            torch.sub(batch.y.to(torch.float64), mean[p], out=Xc[:, p])
        xx += Xc.T @ (Xc if batch.weight is None else Xc * batch.weight.to(torch.float64)[:, None])
    return S, mean, data.allreduce(xx) / S


def _sparse_moments(data: Batches, full: Batch, fit_intercept: bool, with_y: bool):
    """:func:`moments` of sparse rows: the raw Gram of ``[X, 1, y]`` moved to the means by algebra."""
    p = data.n_features
    M, sx, sy = sparse_moments(full.X, full.y, full.weight)
    M = data.allreduce(reshift(M, sx, sy, sx, torch.zeros_like(sy)))  # y unshifted: processes agree
    S = float(M[p, p])
    mean = torch.cat([M[p, :p], M[p, p + 1:]]) / S if fit_intercept else \
        torch.zeros(p + 1, dtype=torch.float64, device=M.device)
    M = reshift(M, torch.zeros_like(sx), torch.zeros_like(sy), mean[:p], mean[p])
    idx = list(range(p)) + ([p + 1] if with_y else [])
    return S, mean[:p + int(with_y)], M[idx][:, idx] / S


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
