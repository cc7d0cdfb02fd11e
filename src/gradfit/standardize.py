"""Streaming passes for least squares: shifted moments, the residual pass and a streaming QR.

Every pass walks the data once in row chunks small enough to stay in cache. A chunk is copied,
shifted by a per-column centre, into one float64 buffer ``B = sqrt(s) * [X - m, 1, y - m_y]``
(s: sample weights), so no copy of ``X`` is ever made and the products never see large means.

* :func:`moments` returns ``M = B'B`` summed over all rows (one pass; the Gram of the shifted,
  augmented data) together with the shift it used.
* :func:`residual_pass` returns ``X_c' S r``, ``sum S r`` and ``sum S r^2`` for given coefficients:
  the second pass of iterative refinement.
* :func:`streaming_r` returns the R factor of ``sqrt(s) * [Z, t]`` (TSQR: one QR per chunk,
  stacked onto the running R) for a standardized design ``Z``; used when the Gram matrix is too
  ill-conditioned to factor.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
from torch import Tensor

from .data.batches import Batches

F64 = torch.float64
CACHE_BYTES = 3_200_000  # a chunk buffer of about this size stays in L2/L3 (measured best on 10 and 100 columns)


def chunk_rows(n_cols: int) -> int:
    return max(256, CACHE_BYTES // (8 * n_cols))


def _chunks(data: Batches, rows: int) -> Iterator[tuple[Tensor, Tensor, Tensor | None]]:
    for batch in data:
        n = batch.X.shape[0]
        for a in range(0, n, rows):
            w = None if batch.weight is None else batch.weight[a:a + rows]
            yield batch.X[a:a + rows], batch.y[a:a + rows], w


def _sqrt_weight(w: Tensor) -> Tensor:
    w = w.to(F64)
    if bool((w < 0).any()):
        raise ValueError("sample weights must be >= 0 for least squares")
    return w.sqrt()


def _gram_into(M: Tensor, b: Tensor) -> None:
    """M += b'b. numpy's ``b.T @ b`` is a symmetric rank-k update (half the flops of torch's
    general matmul), which wins once the product is compute-bound (many columns)."""
    if b.device.type == "cpu" and b.shape[1] > 32:
        bn = b.numpy()
        M += torch.from_numpy(bn.T @ bn)
    else:
        M.addmm_(b.T, b)


def moments(data: Batches) -> tuple[Tensor, Tensor, Tensor]:
    """One pass: ``(M, shift_x, shift_y)`` with ``M = sum B'B``, ``B = sqrt(s)[X - shift_x, 1, y - shift_y]``.

    The shift is the first chunk's mean (close to the column means, so nothing cancels); processes
    of a distributed source each use their own shift and :func:`reshift` moves them to a common
    one before the sums are combined.
    """
    p = data.n_features
    dev = data.device
    rows = chunk_rows(p + 2)
    M = torch.zeros(p + 2, p + 2, dtype=F64, device=dev)
    buf = torch.empty(rows, p + 2, dtype=F64, device=dev)
    buf[:, p] = 1.0
    sx = torch.zeros(p, dtype=F64, device=dev)
    sy = torch.zeros((), dtype=F64, device=dev)
    first = True
    for X, y, w in _chunks(data, rows):
        m = X.shape[0]
        if m == 0:
            continue
        if first:
            sx, sy, first = X.to(F64).mean(0), y.to(F64).mean(), False
        b = buf[:m]
        torch.sub(X, sx, out=b[:, :p])
        torch.sub(y, sy, out=b[:, p + 1])
        if w is not None:
            b[:, p] = 1.0
            b.mul_(_sqrt_weight(w)[:, None])
        _gram_into(M, b)
    return M, sx, sy


def reshift(M: Tensor, shift_x: Tensor, shift_y: Tensor, new_x: Tensor, new_y: Tensor) -> Tensor:
    """Moments of ``[X - new_x, 1, y - new_y]`` from those of ``[X - shift_x, 1, y - shift_y]`` (exact algebra)."""
    p = shift_x.shape[0]
    T = torch.eye(p + 2, dtype=F64, device=M.device)
    T[p, :p] = shift_x - new_x
    T[p, p + 1] = shift_y - new_y
    return T.T @ M @ T


def residual_pass(data: Batches, center: Tensor, center_y: Tensor, w: Tensor, b0: float | Tensor
                  ) -> tuple[Tensor, Tensor, Tensor]:
    """One pass with ``r = (y - center_y) - (X - center) @ w - b0``: returns
    ``((X - center)' S r, sum S r, sum S r^2)``, all accumulated in float64."""
    p = data.n_features
    dev = data.device
    rows = chunk_rows(p + 1)
    buf = torch.empty(rows, p, dtype=F64, device=dev)
    gx = torch.zeros(p, dtype=F64, device=dev)
    g1 = torch.zeros((), dtype=F64, device=dev)
    rss = torch.zeros((), dtype=F64, device=dev)
    w = w.to(F64)
    for X, y, sw in _chunks(data, rows):
        m = X.shape[0]
        xc = buf[:m]
        torch.sub(X, center, out=xc)
        r = (y.to(F64) - center_y) - xc @ w - b0
        sr = r if sw is None else r * sw.to(F64)
        gx.addmv_(xc.T, sr)
        g1 += sr.sum()
        rss += r @ sr
    return gx, g1, rss


def streaming_r(data: Batches, keep: Tensor, center: Tensor, scale: Tensor, center_y: Tensor,
                intercept: bool, extra_rows: Tensor | None = None) -> Tensor:
    """R factor (upper triangular, k+1 square) of ``sqrt(s) * [Z, t]`` with
    ``Z = [(X[:, keep] - center) / scale, 1 (if intercept)]`` and ``t = y - center_y``; rows of
    ``extra_rows`` (e.g. a ridge block, k+1 wide) are appended before the last QR."""
    p = data.n_features
    dev = data.device
    k = int(keep.numel()) + int(intercept)
    rows = chunk_rows(k + 1)
    R = torch.zeros(0, k + 1, dtype=F64, device=dev)
    buf = torch.empty(rows, k + 1, dtype=F64, device=dev)
    nk = int(keep.numel())
    all_cols = nk == p
    for X, y, sw in _chunks(data, rows):
        m = X.shape[0]
        z = buf[:m]
        Xk = X if all_cols else X[:, keep]
        torch.sub(Xk, center, out=z[:, :nk])
        z[:, :nk].div_(scale)
        if intercept:
            z[:, nk] = 1.0
        torch.sub(y, center_y, out=z[:, k])
        if sw is not None:
            z.mul_(_sqrt_weight(sw)[:, None])
        R = torch.linalg.qr(torch.cat([R, z]), mode="r").R
    if extra_rows is not None:
        R = torch.linalg.qr(torch.cat([R, extra_rows]), mode="r").R
    if R.shape[0] < k + 1:  # fewer rows than columns: pad to square
        R = torch.cat([R, torch.zeros(k + 1 - R.shape[0], k + 1, dtype=F64, device=dev)])
    return R


def orthonormal_columns(V: Tensor) -> Tensor:
    """Orthonormal basis of the column span of ``V`` (V has full column rank)."""
    if V.shape[1] == 0:
        return V
    return torch.linalg.qr(V).Q
