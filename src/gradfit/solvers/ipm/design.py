"""The standardized design ``Z = [(X - mu) / sd, 1]`` of the interior point, never formed in full.

Standardizing makes the interior point's normal matrices well conditioned, but a copy of a
1M x 10 matrix costs as much as the rest of a Portnoy–Koenker pass. The full-data steps only
need ``Z @ beta``, ``v @ Z``, ``Z @ M`` and row subsets, each of which is a product with ``X``
followed by a (q x q)-sized correction; only the rows of the reduced problems are materialized.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from gradfit.numerics.passes import is_sparse_rows
from gradfit.numerics.sparse_gram import add_gram


class Design:
    """``Z = [(X[:, used] - mu) / sd, 1]`` (the ones column only with an intercept); ``mu = 0``
    without an intercept."""

    def __init__(self, X: Tensor, mu: Tensor, sd: Tensor, used: Tensor, intercept: bool):
        self.X = X if bool(used.all()) else X[:, used]
        self.mu, self.sd, self.intercept = mu[used], sd, intercept
        self.k = int(used.sum())
        self.shape = (X.shape[0], self.k + int(intercept))
        self.dtype, self.device = X.dtype, X.device
        self.T: Tensor | None = None  # optional whitening: Z = S T with S the standardized columns

    def whiten(self, T: Tensor) -> None:
        self.T = T
        self.shape = (self.shape[0], T.shape[1])

    def fold(self, M: Tensor) -> tuple[Tensor, Tensor]:
        """(A, c) with Z @ M = X[:, used] @ A + c, for M of shape (q,) or (q, r)."""
        if self.T is not None:
            M = self.T @ M
        A = M[:self.k] / (self.sd if M.ndim == 1 else self.sd[:, None])
        c = -(self.mu @ A)
        if self.intercept:
            c = c + M[self.k]
        return A, c

    def matvec(self, beta: Tensor, rows: slice = slice(None)) -> Tensor:
        A, c = self.fold(beta)
        return self.X[rows] @ A + c

    def rmatvec(self, v: Tensor) -> Tensor:
        """v @ Z."""
        return self.sum_rows(v @ self.X, v.sum())

    def sum_rows(self, vx: Tensor, total: Tensor) -> Tensor:
        """``sum_i v_i Z_i`` from ``vx = sum_i v_i X[i, used]`` and ``total = sum_i v_i`` (rows
        that are no longer at hand: the streamed fit's globs)."""
        g = (vx - self.mu * total) / self.sd
        g = torch.cat([g, total.reshape(1)]) if self.intercept else g
        return g if self.T is None else g @ self.T

    def standardized_rows(self, index) -> Tensor:
        """S[index]: the standardized columns (and the ones column), before any whitening."""
        Xs = self.X[index]
        if is_sparse_rows(Xs):  # the rows of a reduced problem (or a bounded block): dense from here
            Xs = Xs.dense_rows()
        S = torch.empty(Xs.shape[0], self.k + int(self.intercept), dtype=self.dtype, device=self.device)
        torch.sub(Xs, self.mu, out=S[:, :self.k])
        S[:, :self.k].div_(self.sd)
        if self.intercept:
            S[:, self.k] = 1.0
        return S

    def rows(self, index) -> Tensor:
        """Z[index] as a tensor (a boolean mask, integer indices or a slice)."""
        S = self.standardized_rows(index)
        return S if self.T is None else S @ self.T

    def full(self) -> Tensor:
        return self.rows(slice(None))

    @property
    def sparse(self) -> bool:
        return is_sparse_rows(self.X)

    def matmat_rows(self, M: Tensor, rows: slice) -> Tensor:
        """Z[rows] @ M for a (q, r) matrix M."""
        A, c = self.fold(M)
        return self.X[rows] @ A + c


def whitening(D: Design, sample_rows: int = 16384, cond_limit: float = 1e8, rank_tol: float = 1e-13,
              block: int = 65536) -> Tensor | None:
    """A (q, r) map T making ``S T`` orthonormal-ish for an ill-conditioned standardized design S,
    or None when S is already well conditioned (judged on a sample of rows).

    T comes from a blocked (TSQR) QR of S over all rows and an SVD of its R factor, so conditions up
    to about 1/rank_tol are resolved; directions with singular value below ``rank_tol`` times the
    largest are numerically null and dropped (r < q): their coefficients are set to 0.
    """
    n = D.shape[0]
    if D.shape[1] == 0:
        return None
    step = max(n // sample_rows, 1)
    Ss = D.standardized_rows(slice(None, None, step))
    sv = torch.linalg.svdvals(Ss)
    if sv.numel() and float(sv[-1]) > float(sv[0]) / cond_limit ** 0.5:
        return None
    Rs = [torch.linalg.qr(D.standardized_rows(slice(a, a + block)), mode="r").R for a in range(0, n, block)]
    R = torch.linalg.qr(torch.cat(Rs), mode="r").R if len(Rs) > 1 else Rs[0]
    _, sig, Vh = torch.linalg.svd(R, full_matrices=False)
    keep = sig > rank_tol * sig[0]
    return Vh[keep].T / sig[keep]


def weighted_gram_sparse(D: Design, q: Tensor) -> Tensor:
    """``Z' diag(q) Z`` for a Design over sparse rows, without forming Z: the sparse product
    ``X'QX`` (p x p) centred and scaled by algebra, then whitened."""
    X, mu, sd = D.X, D.mu, D.sd
    k = D.k
    G = np.zeros((k, k))
    add_gram(G, X.csr, q.detach().cpu().numpy())
    xq, tot = X.T @ q, q.sum()
    S = torch.empty(k + int(D.intercept), k + int(D.intercept), dtype=q.dtype, device=q.device)
    Gt = torch.from_numpy(G).to(q.device)
    Gt -= torch.outer(xq, mu)
    Gt -= torch.outer(mu, xq)
    Gt += tot * torch.outer(mu, mu)
    S[:k, :k] = Gt / torch.outer(sd, sd)
    if D.intercept:
        S[:k, k] = S[k, :k] = (xq - mu * tot) / sd
        S[k, k] = tot
    return S if D.T is None else D.T.T @ S @ D.T


class LPRows:
    """The interior point's ``Z`` when its rows are sparse: all n rows of a :class:`Design` over a
    sparse X (never densified) stacked on dense extra rows ``E`` (an L1 penalty's rows). It offers
    what :func:`gradfit.solvers.ipm.lp.frisch_newton` and the polish use: ``Z @ v``, ``Z.T @ v``,
    :meth:`gram` (``Z'QZ``, p x p from a sparse product) and a few dense rows by index."""

    def __init__(self, D: Design, E: Tensor | None = None):
        self.D, self.E, self.n = D, E, D.shape[0]
        self.shape = (self.n + (0 if E is None else E.shape[0]), D.shape[1])
        self.dtype, self.device = D.dtype, D.device

    def __matmul__(self, v: Tensor) -> Tensor:
        top = self.D.matvec(v) if v.ndim == 1 else self.D.matmat_rows(v, slice(None))
        return top if self.E is None else torch.cat([top, self.E @ v])

    @property
    def T(self) -> "_LPRowsT":
        return _LPRowsT(self)

    def gram(self, q: Tensor) -> Tensor:
        G = weighted_gram_sparse(self.D, q[:self.n])
        if self.E is not None:
            G = G + self.E.T @ (q[self.n:, None] * self.E)
        return G

    def __getitem__(self, index) -> Tensor:
        single = isinstance(index, int) or (isinstance(index, Tensor) and index.ndim == 0)
        idx = torch.as_tensor(index, device=self.device).reshape(-1)
        if idx.dtype == torch.bool:
            idx = idx.nonzero().flatten()
        out = torch.empty(idx.numel(), self.shape[1], dtype=self.dtype, device=self.device)
        in_d = idx < self.n
        if bool(in_d.any()):
            out[in_d] = self.D.rows(idx[in_d])
        if not bool(in_d.all()):
            out[~in_d] = self.E[idx[~in_d] - self.n]
        return out[0] if single else out


class _LPRowsT:
    def __init__(self, Z: LPRows):
        self.Z = Z

    def __matmul__(self, v: Tensor) -> Tensor:
        Z = self.Z
        out = Z.D.rmatvec(v[:Z.n])
        return out if Z.E is None else out + Z.E.T @ v[Z.n:]
