"""Least-squares sums of a sparse design, never forming a dense (n, p) matrix or ``X - mean``.

A sparse X keeps its zeros only uncentred, so the passes here use the raw columns and leave the
centring to algebra on the (p+2)-square result (:meth:`gradfit.numerics.moments.Moments.shifted`):

* :func:`add_gram` sums ``X'SX`` from sparse products of row blocks (each block's product is sparse
  and is added into one dense p x p accumulator; :meth:`gradfit.numerics.moments.Moments.add_sparse`
  adds the rest). Memory: the p x p result plus one block's sparse product.
* :func:`sparse_gradient_pass` is the residual pass of iterative refinement: ``r = y - X w - b``
  and ``X'S r`` accumulated in extended precision (``np.longdouble``, 64-bit mantissa on x86)
  instead of double-double: about three more digits than float64 sums, so refinement reaches
  ~1e-13 relative on moderately ill-conditioned sparse designs (the dense path reaches ~1e-15).

Centring algebraically loses digits when a column's mean is large against its spread (a
column that is mostly one non-zero value); such columns are rare in sparse data, and the exact
solver's condition check sends a badly conditioned Gram to the row-chunked QR.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

F64 = torch.float64
BLOCK_PRODUCTS = 4_000_000  # entries of one row block's X'SX product (each row adds up to its nnz^2)


def _row_blocks(csr, target: int):
    n = csr.shape[0]
    if n == 0:
        return
    per_row = max(csr.nnz / n, 1.0)
    rows = max(256, int(target / (per_row * per_row)))
    for a in range(0, n, rows):
        yield a, min(a + rows, n)


def add_gram(G: np.ndarray, csr, weight: np.ndarray | None = None) -> None:
    """``G += X' diag(weight) X`` for a CSR ``X`` (weight None: 1), block by block of rows."""
    import scipy.sparse as sp
    for a, b in _row_blocks(csr, BLOCK_PRODUCTS):
        Xb = csr[a:b]
        if weight is not None:
            Xw = sp.diags(weight[a:b]) @ Xb
        else:
            Xw = Xb
        P = (Xb.T @ Xw).tocoo()  # canonical: no duplicate (i, j), so fancy-index addition is exact
        G[P.row, P.col] += P.data


def sparse_gradient_pass(X, y: Tensor, weight: Tensor | None, w: Tensor, b: float) -> tuple[Tensor, Tensor, Tensor]:
    """``(X'S r, sum S r, sum S r^2)`` with ``r = y - X w - b``, summed in extended precision."""
    ld = np.longdouble
    csr = X.csr
    data = csr.data.astype(ld)
    wv = w.detach().cpu().to(F64).numpy().astype(ld)
    # X w row by row: products of the stored values, summed per row segment (np.add.reduceat)
    prod = data * wv[csr.indices]
    n = csr.shape[0]
    xw = np.zeros(n, dtype=ld)
    starts = csr.indptr[:-1]
    nonempty = np.flatnonzero(np.diff(csr.indptr))
    if prod.size:
        xw[nonempty] = np.add.reduceat(prod, starts[nonempty])
    r = y.detach().cpu().to(F64).numpy().astype(ld) - xw - ld(b)
    sr = r if weight is None else weight.detach().cpu().to(F64).numpy().astype(ld) * r
    # X'(S r): column by column of the CSC copy, each stored value times its row's S r
    csc = X.tocsc()
    contrib = csc.data.astype(ld) * sr[csc.indices]
    g = np.zeros(csc.shape[1], dtype=ld)
    cols = np.flatnonzero(np.diff(csc.indptr))
    if contrib.size:
        g[cols] = np.add.reduceat(contrib, csc.indptr[:-1][cols])
    dev = w.device
    out = lambda v: torch.tensor(np.asarray(v, dtype=np.float64), dtype=F64, device=dev)  # noqa: E731
    return out(g), out(sr.sum()), out((sr * r).sum())
