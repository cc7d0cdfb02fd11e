"""QR of a tall design streamed in row chunks (TSQR), for least squares too ill-conditioned for its
Gram matrix: one QR per chunk stacked onto the running R, so the memory is one chunk and R."""
from __future__ import annotations

import torch
from torch import Tensor

from gradfit.numerics.moments import sqrt_weight
from gradfit.numerics.passes import F64, chunk_rows, is_sparse_rows, row_chunks
from gradfit.problem.batches import Batches


def streaming_r(data: Batches, keep: Tensor, center: Tensor, scale: Tensor, center_y: Tensor,
                intercept: bool, extra_rows: Tensor | None = None) -> Tensor:
    """R factor (upper triangular, k+1 square) of ``sqrt(s) * [Z, t]`` with
    ``Z = [(X[:, keep] - center) / scale, 1 (if intercept)]`` and ``t = y - center_y``; rows of
    ``extra_rows`` (e.g. a ridge block, k+1 wide) are appended before the last QR."""
    p = data.n_features
    dev = data.device
    k = int(keep.numel()) + int(intercept)
    rows = chunk_rows(k + 1, dev)
    R = torch.zeros(0, k + 1, dtype=F64, device=dev)
    buf = torch.empty(rows, k + 1, dtype=F64, device=dev)
    nk = int(keep.numel())
    all_cols = nk == p
    for X, y, sw in row_chunks(data, rows):
        m = X.shape[0]
        z = buf[:m]
        Xk = X if all_cols else X[:, keep]
        if is_sparse_rows(Xk):  # a chunk of rows (chunk_rows bounds it), densified for its QR
            Xk = Xk.dense_rows()
        torch.sub(Xk, center, out=z[:, :nk])
        z[:, :nk].div_(scale)
        if intercept:
            z[:, nk] = 1.0
        torch.sub(y, center_y, out=z[:, k])
        if sw is not None:
            z.mul_(sqrt_weight(sw)[:, None])
        R = torch.linalg.qr(torch.cat([R, z]), mode="r").R
    gather = getattr(data, "allgather_rows", None)
    if gather is not None:  # distributed: stack every process's R and factor once more
        R = torch.linalg.qr(gather(R), mode="r").R
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
