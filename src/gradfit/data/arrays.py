"""In-memory data: numpy arrays, pandas/polars DataFrames, torch tensors and lists."""
from __future__ import annotations

from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch import Tensor

from gradfit.data.batches import Batch, Batches, DataError
from gradfit.data.sparse import SparseRows, check_finite_sparse, is_sparse


def _is_dataframe(obj: Any) -> bool:
    mod = type(obj).__module__
    return hasattr(obj, "columns") and (mod.startswith("pandas") or mod.startswith("polars"))


def feature_names_of(X: Any) -> list[str] | None:
    """Column names of a DataFrame, else None."""
    if _is_dataframe(X):
        return [str(c) for c in X.columns]
    return None


def _column_to_numpy(col: Any, name: str) -> np.ndarray:
    """One DataFrame column (pandas or polars Series) as float64; nulls become NaN."""
    try:
        if type(col).__module__.startswith("pandas"):
            return col.to_numpy(dtype=np.float64, na_value=np.nan)
        return np.asarray(col.to_numpy(), dtype=np.float64)
    except (TypeError, ValueError):
        values = list(col)
        for i, v in enumerate(values):
            try:
                float(v) if v is not None else None
            except (TypeError, ValueError):
                raise DataError(f"column '{name}' has a non-numeric value {v!r} at row index {i} (0-based); "
                                "convert it, or leave the column out") from None
        raise DataError(f"column '{name}' is not numeric ({col.dtype}); convert it, or leave it out") from None


def to_numpy(obj: Any, what: str = "X") -> np.ndarray:
    """Convert array-likes to a float64 numpy array with a clear error for non-numbers.

    DataFrames are converted column by column, so an error names the column and the row.
    """
    if isinstance(obj, Tensor):
        return obj.detach().cpu().numpy()
    if _is_dataframe(obj):
        cols = [_column_to_numpy(obj[c], str(c)) for c in obj.columns]
        return np.stack(cols, axis=1) if cols else np.empty((len(obj), 0))
    if hasattr(obj, "to_numpy") and not isinstance(obj, np.ndarray):  # pandas/polars Series
        return _column_to_numpy(obj, str(getattr(obj, "name", None) or what))
    try:
        arr = np.asarray(obj, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{what} has non-numeric values or rows of different lengths ({exc}); "
                        "convert or drop them") from None
    return arr


def to_tensor(obj: Any, dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu",
              what: str = "X") -> Tensor:
    if isinstance(obj, Tensor):
        return obj.detach().to(device=device, dtype=dtype)
    arr = np.ascontiguousarray(to_numpy(obj, what))
    if not arr.flags.writeable:  # torch.from_numpy wants a writable buffer; the tensor never writes to it
        arr = arr.copy()
    return torch.from_numpy(arr).to(device=device, dtype=dtype)


class ArrayBatches(Batches):
    """Rows held in memory as tensors (X dense, or sparse: a :class:`~gradfit.data.sparse.SparseRows`);
    one pass yields ``batch_size`` rows at a time."""

    def __init__(self, X: Tensor, y: Tensor, weight: Tensor | None = None, *,
                 feature_names: Sequence[str] | None = None, target_name: str | None = None,
                 batch_size: int | None = None):
        if X.ndim != 2:
            raise DataError(f"X must be 2-dimensional (rows x features), got shape {tuple(X.shape)}")
        if y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise DataError(f"y must have one value per row of X: X has {X.shape[0]} rows, y has shape {tuple(y.shape)}")
        if weight is not None and weight.shape != y.shape:
            raise DataError(f"sample_weight must have one value per row: got shape {tuple(weight.shape)}")
        self.X, self.y, self.weight = X, y, weight
        self.feature_names = list(feature_names) if feature_names is not None else [f"x{i}" for i in range(X.shape[1])]
        if len(self.feature_names) != X.shape[1]:
            raise DataError(f"{len(self.feature_names)} feature names for {X.shape[1]} columns")
        self.target_name = target_name
        self.dtype, self.device = X.dtype, X.device
        self.batch_size = batch_size or max(X.shape[0], 1)
        self._n_rows = X.shape[0]
        self._validated = False

    def __iter__(self) -> Iterator[Batch]:
        n, bs = self.X.shape[0], self.batch_size
        for start in range(0, n, bs):
            w = None if self.weight is None else self.weight[start:start + bs]
            yield Batch(self.X[start:start + bs], self.y[start:start + bs], w)

    def validate(self) -> None:
        if not self._validated:
            check_finite(self.X, self.y, self.feature_names, self.target_name)
            self._validated = True

    def full_batch(self) -> Batch:
        return Batch(self.X, self.y, self.weight)

    @property
    def has_weight(self) -> bool:
        return self.weight is not None


def check_finite(X: Tensor, y: Tensor, names: Sequence[str], target: str | None) -> None:
    # NaN and inf survive a sum: one cheap reduction clears the usual all-finite case, and only a
    # column whose sum is not finite (a bad value, or finite values overflowing) is scanned
    if isinstance(X, SparseRows):
        check_finite_sparse(X, names)
    elif bool(torch.isfinite(X.sum())) and bool(torch.isfinite(y.sum())):
        return
    else:
        _check_dense(X, names)
    if not bool(torch.isfinite(y).all()):
        i = int((~torch.isfinite(y)).nonzero()[0])
        raise DataError(f"target '{target or 'y'}' has a missing or infinite value at row index {i} (0-based); "
                        "drop those rows or fill them")


def _check_dense(X: Tensor, names: Sequence[str]) -> None:
    col_sums = X.sum(dim=0)
    suspect = (~torch.isfinite(col_sums)).nonzero().flatten()
    bad_cols = torch.zeros(X.shape[1], dtype=torch.bool, device=X.device)
    for j in suspect.tolist():
        bad_cols[j] = bool((~torch.isfinite(X[:, j])).any())
    if bool(bad_cols.any()):
        j = int(bad_cols.nonzero()[0])
        i = int((~torch.isfinite(X[:, j])).nonzero()[0])
        raise DataError(f"column '{names[j]}' has a missing or infinite value at row index {i} (0-based); "
                        "drop those rows or fill them")


def as_batches(X: Any, y: Any, sample_weight: Any = None, *, dtype: torch.dtype = torch.float64,
               device: str | torch.device = "cpu", batch_size: int | None = None,
               feature_names: Sequence[str] | None = None, target_name: str | None = None,
               validate: bool = True) -> Batches:
    """Wrap in-memory ``X`` (n, p) or (n,), ``y`` (n,) and optional weights as :class:`Batches`.

    ``validate=False`` leaves the NaN/inf scan to the caller (``Batches.validate``), for solvers
    that notice non-finite values in their own pass over the data."""
    if isinstance(X, Batches):
        return X
    names = feature_names or feature_names_of(X)
    if target_name is None and isinstance(getattr(y, "name", None), str) and y.name:
        target_name = y.name
    Xt = SparseRows.from_scipy(X, dtype, device) if is_sparse(X) else to_tensor(X, dtype, device, "X")
    if Xt.ndim == 1:
        Xt = Xt[:, None]
    yt = to_tensor(y, dtype, device, "y").reshape(-1)
    wt = None if sample_weight is None else to_tensor(sample_weight, dtype, device, "sample_weight").reshape(-1)
    batches = ArrayBatches(Xt, yt, wt, feature_names=names, target_name=target_name, batch_size=batch_size)
    if validate:
        batches.validate()
    if wt is not None and bool((wt < 0).any() | ~torch.isfinite(wt).all()):
        raise DataError("sample_weight must be finite and >= 0")
    return batches
