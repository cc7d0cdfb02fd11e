"""Sparse designs: a ``scipy.sparse`` X carried through the batch interface without densifying.

:class:`SparseRows` holds the rows of a sparse X in CSR form and offers the few tensor operations
the solvers apply to a batch's ``X`` -- ``X @ v``, ``X.T @ d``, ``v @ X``, ``X.sum(0)``, row slices
and row gathers, ``.to(dtype)`` and ``torch.addmv(b, X, w)`` -- each returning dense torch tensors
of length n or p, never an (n, p) array. Products run in scipy on the CPU and in
``torch.sparse_csr`` on a GPU. A solver that needs a centred design (``X - mean``) does the
centring algebraically (a rank-one correction of each product) or, for bounded chunks of rows,
asks for :meth:`SparseRows.dense_rows` explicitly.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from gradfit.exceptions import DataError

_NP = {torch.float64: np.float64, torch.float32: np.float32}


def is_sparse(obj: Any) -> bool:
    """True for a scipy.sparse matrix or array (any format) and for :class:`SparseRows`."""
    if isinstance(obj, SparseRows):
        return True
    try:
        import scipy.sparse as sp
    except ImportError:  # pragma: no cover - scipy is a dependency
        return False
    return sp.issparse(obj)


def _numpy(v: Tensor | np.ndarray, dtype) -> np.ndarray:
    if isinstance(v, Tensor):
        v = v.detach().cpu().numpy()
    return np.asarray(v, dtype=dtype)


class SparseRows:
    """Rows of a sparse design (CSR), with the tensor interface of a batch's ``X``.

    Parameters
    ----------
    csr : scipy.sparse CSR matrix, canonical (sorted indices, no duplicates)
    device : torch.device
        Where results go; on CUDA the products use ``torch.sparse_csr`` copies of X and X'.
    """

    ndim = 2
    is_sparse = True
    __array_priority__ = 1000  # numpy defers ``v @ X`` to __rmatmul__

    def __init__(self, csr, device: torch.device | str = "cpu"):
        self.csr = csr
        self.device = torch.device(device)
        self.dtype = torch.float32 if csr.dtype == np.float32 else torch.float64
        self._gpu: tuple[Tensor, Tensor] | None = None
        self._csc = None

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def from_scipy(cls, X, dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu",
                   what: str = "X") -> "SparseRows":
        """CSR copy of any scipy.sparse matrix/array in ``dtype`` (CSR input of that dtype is shared)."""
        import scipy.sparse as sp
        if isinstance(X, SparseRows):
            return X.to(dtype).to(device)
        if X.ndim != 2:
            raise DataError(f"{what} must be 2-dimensional (rows x features), got shape {X.shape}")
        if X.dtype.kind not in "biuf":
            raise DataError(f"{what} is a sparse matrix of {X.dtype} values; gradfit needs real numbers")
        csr = sp.csr_matrix(X, dtype=_NP.get(dtype, np.float64))  # no copy for CSR of the right dtype
        if not csr.has_canonical_format:
            csr = csr.copy()
            csr.sum_duplicates()  # sorts indices too
        return cls(csr, device)

    @property
    def shape(self) -> tuple[int, int]:
        return self.csr.shape

    @property
    def nnz(self) -> int:
        return int(self.csr.nnz)

    def __len__(self) -> int:
        return self.csr.shape[0]

    def size(self, dim: int | None = None):
        return self.shape if dim is None else self.shape[dim]

    def _like(self, csr) -> "SparseRows":
        return SparseRows(csr, self.device)

    # -- rows ------------------------------------------------------------------------------
    def __getitem__(self, key) -> "SparseRows":
        if isinstance(key, tuple):  # X[rows, cols]
            rows, cols = key
            out = self[rows] if not (isinstance(rows, slice) and rows == slice(None)) else self
            return out._like(out.csr[:, _numpy(cols, None) if isinstance(cols, Tensor) else cols])
        if isinstance(key, Tensor):
            key = key.detach().cpu().numpy()
        if isinstance(key, (int, np.integer)):
            key = slice(key, key + 1)
        return self._like(self.csr[key])

    def index_select(self, dim: int, index: Tensor) -> "SparseRows":
        if dim != 0:
            return self[:, index]
        return self[index]

    def to(self, *args, **kwargs) -> "SparseRows":
        dtype, device = kwargs.get("dtype"), kwargs.get("device")
        for a in args:
            if isinstance(a, torch.dtype):
                dtype = a
            elif a is not None:
                device = a
        out = self
        if dtype is not None and dtype != self.dtype:
            out = SparseRows(self.csr.astype(_NP.get(dtype, np.float64)), self.device)
        if device is not None and torch.device(device) != out.device:
            out = SparseRows(out.csr, device)
        return out

    def double(self) -> "SparseRows":
        return self.to(torch.float64)

    def float(self) -> "SparseRows":
        return self.to(torch.float32)

    def cpu(self) -> "SparseRows":
        return self.to(device="cpu")

    def detach(self) -> "SparseRows":
        return self

    def contiguous(self) -> "SparseRows":
        return self

    def dense_rows(self) -> Tensor:
        """This block of rows as a dense tensor: for bounded chunks only (callers cap the rows)."""
        return torch.from_numpy(self.csr.toarray()).to(self.device)

    def tocsc(self):
        """The same matrix in CSC form (columns for coordinate descent), built once."""
        if self._csc is None:
            self._csc = self.csr.tocsc()
            self._csc.sort_indices()
        return self._csc

    # -- products --------------------------------------------------------------------------
    def _torch_pair(self) -> tuple[Tensor, Tensor]:
        if self._gpu is None:
            def to_t(m):
                return torch.sparse_csr_tensor(torch.from_numpy(m.indptr.astype(np.int64)),
                                               torch.from_numpy(m.indices.astype(np.int64)),
                                               torch.from_numpy(m.data), size=m.shape).to(self.device)
            self._gpu = (to_t(self.csr), to_t(self.csr.T.tocsr()))
        return self._gpu

    def _product(self, v: Tensor, transpose: bool) -> Tensor:
        if self.device.type != "cpu":
            A = self._torch_pair()[1 if transpose else 0]
            return A @ v.to(A.dtype)
        A = self.csr.T if transpose else self.csr
        out = A @ _numpy(v, self.csr.dtype)
        return torch.from_numpy(np.ascontiguousarray(out)).to(v.device if isinstance(v, Tensor) else self.device)

    def __matmul__(self, v) -> Tensor:
        return self._product(v, transpose=False)

    def __rmatmul__(self, v) -> Tensor:
        """``v @ X`` = ``X' v`` (v of length n, or (k, n) giving (k, p))."""
        if isinstance(v, Tensor) and v.ndim == 2:
            return self._product(v.T, transpose=True).T
        return self._product(v, transpose=True)

    @property
    def T(self) -> "_Transposed":
        return _Transposed(self)

    mT = T

    def sum(self, dim: int | None = None) -> Tensor:
        if dim is None:
            return torch.tensor(float(self.csr.sum()), dtype=self.dtype)
        return torch.from_numpy(np.asarray(self.csr.sum(axis=dim)).ravel()).to(self.device)

    def square_sums(self, weight: Tensor | None = None) -> Tensor:
        """``sum_i s_i x_ij**2`` per column (``weight`` None: s = 1)."""
        sq = self.csr.multiply(self.csr).tocsr()
        if weight is None:
            return torch.from_numpy(np.asarray(sq.sum(axis=0)).ravel()).to(self.device)
        return torch.from_numpy(np.ascontiguousarray(sq.T @ _numpy(weight, self.csr.dtype))).to(self.device)

    # -- torch functions applied to a SparseRows -------------------------------------------
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.addmv:  # addmv(b, X, w) = b + X @ w
            b, X, w = args[:3]
            return X @ w + b
        if func in (torch.matmul, Tensor.matmul, Tensor.__matmul__):
            a, b = args
            return a @ b if isinstance(a, SparseRows) else b.__rmatmul__(a)
        if func is torch.cat and all(isinstance(t, SparseRows) for t in args[0]):
            import scipy.sparse as sp
            parts = args[0]
            return SparseRows(sp.vstack([t.csr for t in parts], format="csr"), parts[0].device)
        raise TypeError(f"{getattr(func, '__name__', func)} would turn the sparse X into a dense "
                        "matrix; this solver step has no sparse path (report it)")

    def __repr__(self) -> str:
        return f"SparseRows(shape={self.shape}, nnz={self.nnz}, dtype={self.dtype})"


class _Transposed:
    """``X.T`` of a :class:`SparseRows`: only products (``X.T @ d``)."""

    def __init__(self, X: SparseRows):
        self.X = X
        self.shape = (X.shape[1], X.shape[0])

    def __matmul__(self, d) -> Tensor:
        return self.X._product(d, transpose=True)

    @property
    def T(self) -> SparseRows:
        return self.X


def check_finite_sparse(X: SparseRows, names, where: str = "X") -> None:
    """DataError naming the column and row of the first NaN/inf stored in a sparse X."""
    data = X.csr.data
    if data.size == 0 or bool(np.isfinite(data).all()):
        return
    bad = np.flatnonzero(~np.isfinite(data))
    k = int(bad[0])
    i = int(np.searchsorted(X.csr.indptr, k, side="right") - 1)
    j = int(X.csr.indices[k])
    raise DataError(f"column '{names[j]}' has a missing or infinite value at row index {i} (0-based); "
                    "drop those rows or fill them")
