"""Double-double (compensated) arithmetic, and the pass of iterative refinement that uses it.

Error-free transformations (Knuth's two-sum, Dekker's two-product) carry each float64 result's
rounding error alongside it, so a residual and its sums are formed to about eps^2.
"""
from __future__ import annotations

import torch
from torch import Tensor

from gradfit.problem.batches import Batches
from gradfit.numerics.passes import F64, chunk_rows, is_sparse_rows, one_torch_thread, row_chunks
from gradfit.numerics.sparse_gram import sparse_gradient_pass

_SPLIT = 134217729.0  # 2^27 + 1: Dekker's split of a float64 into two 26-bit halves


def _two_sum(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _two_prod(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    p = a * b
    ca, cb = _SPLIT * a, _SPLIT * b
    ah, bh = ca - (ca - a), cb - (cb - b)
    al, bl = a - ah, b - bh
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def _dd_colsum(v: Tensor) -> tuple[Tensor, Tensor]:
    """Column sums of ``v`` (m, k) as hi + lo, exact to about eps^2: a pairwise tree of two_sums."""
    lo = torch.zeros(v.shape[1:], dtype=v.dtype, device=v.device)
    while v.shape[0] > 1:
        if v.shape[0] % 2:  # pad with a zero row: the odd row must go through two_sum too
            v = torch.cat([v, torch.zeros_like(v[:1])])
        v, e = _two_sum(v[0::2], v[1::2])
        lo = lo + e.sum(0)
    hi = v[0] if v.shape[0] else torch.zeros_like(lo)
    return hi, lo


def _residual_dd(X: Tensor, y: Tensor, nw: Tensor, b: float) -> tuple[Tensor, Tensor]:
    """``y + X @ nw - b`` per row as hi + lo (double-double)."""
    hi, lo = y, torch.zeros(X.shape[0], dtype=F64, device=X.device)
    for j in range(X.shape[1]):
        prod, err = _two_prod(X[:, j], nw[j].expand(X.shape[0]))
        hi, e = _two_sum(hi, prod)
        lo = lo + (e + err)
    hi, e = _two_sum(hi, torch.full_like(hi, -float(b)))
    return _two_sum(hi, lo + e)


def residual_minus(X: Tensor, y: Tensor, w: Tensor, b: float, r: Tensor) -> Tensor:
    """``y - X w - b - r`` per row, formed in double-double and rounded once (float64 in memory rows)."""
    hi, lo = _residual_dd(X, y, -w.to(F64), b)
    hi, e = _two_sum(hi, -r)
    return hi + (lo + e)


def transpose_product(X: Tensor, v: Tensor) -> Tensor:
    """``[X, 1]' v`` with the products and the sums in double-double, rounded once."""
    Xr = torch.cat([X, torch.ones_like(v)[:, None]], 1)
    P, E = _two_prod(Xr, v[:, None].expand_as(Xr))
    hi, lo = _dd_colsum(P)
    return hi + (lo + E.sum(0))


def compensated_gradient_pass(data: Batches, w: Tensor, b: float) -> tuple[Tensor, Tensor, Tensor]:
    """One pass on the raw data: ``(X'S r, sum S r, sum S r^2)`` with ``r = y - X w - b``, where the
    residual and both sums are formed in double-double arithmetic. Iterative refinement with these
    reaches the exact least-squares solution of the float64 data to ~1e-16 relative whenever it
    converges (cond(Z)^2 * 1e-16 < 1), instead of the cond(Z)^2 * eps * |r| floor of float64 sums."""
    p, dev = data.n_features, data.device
    full = data.full_batch()
    if full is not None and is_sparse_rows(full.X):  # extended precision instead (see sparse_gram)
        return sparse_gradient_pass(full.X, full.y, full.weight, w, b)
    rows = max(256, chunk_rows(4 * (p + 1), dev))
    g_hi = torch.zeros(p + 1, dtype=F64, device=dev)
    g_lo = torch.zeros(p + 1, dtype=F64, device=dev)
    rss = torch.zeros((), dtype=F64, device=dev)
    nw = -w.to(F64)
    with one_torch_thread():
        for X, y, s in row_chunks(data, rows):
            X = X.to(F64)
            r_hi, r_lo = _residual_dd(X, y.to(F64), nw, b)
            if s is not None:
                s = s.to(F64)
                r_hi, err = _two_prod(r_hi, s)
                r_lo = r_lo * s + err
            rss += (r_hi + r_lo) @ (y.to(F64) - X @ w.to(F64) - b)
            Xr = torch.cat([X, torch.ones_like(r_hi)[:, None]], 1)
            P, E = _two_prod(Xr, r_hi[:, None].expand_as(Xr))
            ph, pl = _dd_colsum(P)
            g_hi, e = _two_sum(g_hi, ph)
            g_lo = g_lo + e + pl + E.sum(0) + Xr.T @ r_lo
    g = g_hi + g_lo
    return g[:p], g[p], rss
