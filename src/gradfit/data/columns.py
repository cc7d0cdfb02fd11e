"""Record batches to a float64 matrix, with the checks that name a bad column and row.

A batch of k selected columns becomes one (k, n) float64 array (one contiguous copy per column);
``X`` is then its first rows transposed (a column-major view), ``y`` and the weights the next.
Finite values are checked with one sum per column; only a non-finite sum triggers the exact search.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from gradfit.data.batches import DataError
from gradfit.data.csv_errors import first_bad_index
from gradfit.data.sources import show


def to_float(arr, name: str, at: Callable[[int], str]) -> np.ndarray:
    """A pyarrow column as float64 numpy (nulls become NaN); DataError naming the first bad row."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    t = arr.type
    if not pa.types.is_float64(t):
        if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t) or pa.types.is_boolean(t) \
                or pa.types.is_null(t):
            arr = pc.cast(arr, pa.float64(), safe=False)
        elif pa.types.is_string(t) or pa.types.is_large_string(t):
            try:
                arr = pc.cast(arr, pa.float64())
            except pa.ArrowInvalid:
                i = first_bad_index(arr)
                raise DataError(f"column '{name}' has a non-numeric value {arr[i].as_py()!r} at {at(i + 1)}; "
                                "fix it, or leave the column out with --features") from None
        else:
            raise DataError(f"column '{name}' holds {t}, not numbers; leave it out with --features")
    if arr.null_count == 0:  # the values buffer as is: no copy, and no pandas import inside pyarrow
        return np.frombuffer(arr.buffers()[1], dtype=np.float64, count=len(arr), offset=arr.offset * 8)
    return arr.to_numpy(zero_copy_only=False)


def to_matrix(rb: pa.RecordBatch, columns: Sequence[str], at: Callable[[int], str], drop_na: bool,
              weight: str | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """((k, n) float64 matrix of ``columns``, kept-rows mask or None when every row is kept).

    Rows with a missing (null/NaN) or infinite value are dropped when ``drop_na``; otherwise the
    first one raises DataError naming the column and ``at(row)`` (row is 1-based in the batch).
    """
    n = rb.num_rows
    M = np.empty((len(columns), n), dtype=np.float64)
    for j, name in enumerate(columns):
        M[j] = to_float(rb.column(name), name, at)
    keep = None
    if n and not np.isfinite(M.sum(axis=1)).all():  # NaN/inf make the sum non-finite (or it overflowed)
        bad = ~np.isfinite(M)
        rows_bad = bad.any(axis=0)
        if rows_bad.any():
            if drop_na:
                keep = ~rows_bad
                M = M[:, keep]
            else:
                i = int(rows_bad.nonzero()[0][0])
                j = int(bad[:, i].nonzero()[0][0])
                kind = "an infinite" if np.isinf(M[j, i]) else "a missing (empty, NA or NaN)"
                raise DataError(f"column '{columns[j]}' has {kind} value at {at(i + 1)}; skip such rows with "
                                "--drop-na, or fill them")
    if weight is not None:
        w = M[columns.index(weight)]
        check_weights(w, weight, at, keep)
    return M, keep


_NUMBER = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$|^\s*[-+]?(inf|infinity|nan)\s*$"
_MISSING = ("", "NA", "N/A", "NaN", "nan", "null", "NULL", "None", "-", "?")


def left_out_column(arr, name: str, at: Callable[[int], str]) -> tuple[str, str] | None:
    """A column that is not numeric and was not chosen as a feature: DataError when it is numbers but
    for a few cells (the first bad one named with its row); else (kind, a value) to name it in a warning:
    kind ``"text"`` (a text or categorical column), ``"numbers as text"`` (every cell read is a number,
    stored as text: Parquet) or the column's type (lists, structs, booleans ...); None when it is empty."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        first = next((v for v in arr.to_pylist() if v is not None), None)
        return None if first is None else (str(arr.type), str(first))
    present = pc.invert(pc.is_in(pc.utf8_trim_whitespace(arr), value_set=pa.array(_MISSING)))
    present = pc.and_(present, pc.is_valid(arr))
    number = pc.fill_null(pc.match_substring_regex(arr, _NUMBER, ignore_case=True), False)
    n_present, n_number = pc.sum(present).as_py() or 0, pc.sum(number).as_py() or 0
    if n_present == 0:
        return None
    i = pc.index(present, True).as_py()
    if n_number == n_present:
        return "numbers as text", arr[i].as_py()
    if n_number >= 0.5 * n_present:  # a numeric column with some bad cells: never dropped silently
        i = pc.index(pc.and_(present, pc.invert(number)), True).as_py()
        raise DataError(f"column '{name}' has a non-numeric value {arr[i].as_py()!r} at {at(i + 1)} (its other "
                        "values are numbers); fix the cell, or leave the column out with --features")
    return "text", arr[i].as_py()


def check_weights(w: np.ndarray, name: str, at: Callable[[int], str], keep: np.ndarray | None = None) -> None:
    """DataError naming the first negative weight (``keep``: the kept-rows mask ``w`` was cut by)."""
    bad = (w < 0).nonzero()[0]  # NaN compares False: it is left to the NaN checks
    if len(bad):
        i = int(bad[0]) if keep is None else int(keep.nonzero()[0][bad[0]])
        raise DataError(f"weight column '{name}' has a negative value {w[bad[0]]:g} at {at(i + 1)}; "
                        "sample weights must be >= 0")


def redundant_columns(X: torch.Tensor, names: Sequence[str]) -> list[str]:
    """Sentences naming constant columns and columns that duplicate an earlier one (exact equality)."""
    notes = []
    if X.shape[0] == 0:
        return notes
    lo, hi = X.amin(0), X.amax(0)
    for j in (lo == hi).nonzero().flatten().tolist():
        notes.append(f"column '{names[j]}' is constant (every row is {float(lo[j]):g}): with an intercept it "
                     "adds nothing and the coefficients are not unique; leave it out with --features")
    gen = torch.Generator().manual_seed(0)
    r = torch.rand(X.shape[0], generator=gen, dtype=torch.float64).to(X.device, X.dtype)
    fp = (r @ X).double()  # equal columns give (nearly) equal fingerprints: neighbours once sorted
    order = torch.argsort(fp).tolist()
    dup: dict[int, int] = {}
    for a, b in zip(order, order[1:]):
        if abs(float(fp[a] - fp[b])) <= 1e-9 * (abs(float(fp[a])) + abs(float(fp[b]))) + 1e-300 \
                and lo[b] != hi[b] and torch.equal(X[:, a], X[:, b]):
            root = dup.get(a, a)
            dup[b] = root
    for j in sorted(dup):
        i, k = sorted((dup[j], j))
        notes.append(f"column '{names[k]}' duplicates column '{names[i]}': the coefficients are not unique; "
                     "leave one out with --features")
    return notes


def select_features(path: str, names: list[str], numeric: list[str], target: str, features, weight, header) -> list[str]:
    """The feature columns: ``features`` checked against the file's ``names``, or every numeric
    column but the target and the weight; DataError naming what is missing or repeated."""
    hint = "" if header else " (the file is read without a header, so columns are named c0, c1, ...)"
    shown = show(names)

    def need(col: str, what: str) -> None:
        if col not in names:
            raise DataError(f"{path} has no {what} column {col!r}; its columns are: {shown}{hint}")
        if names.count(col) > 1:
            raise DataError(f"{path} has {names.count(col)} columns named '{col}'; rename them so each is unique")
    need(target, "target")
    if weight is not None:
        need(weight, "weight")
        if weight == target:
            raise DataError(f"--weight '{weight}' is also the target; pick another weight column")
    if features is None:
        features = [c for c in numeric if c not in (target, weight)]
        if not features:
            raise DataError(f"{path} has no numeric feature column besides the target '{target}'; "
                            f"its columns are: {shown}; name them with --features")
    else:
        features = list(features)
        for c in features:
            need(c, "feature")
        if target in features:
            raise DataError(f"the target '{target}' is also a feature; leave it out of --features")
        if weight in features:
            raise DataError(f"the weight column '{weight}' is also a feature; leave it out of --features")
        dup = sorted({c for c in features if features.count(c) > 1})
        if dup:
            raise DataError(f"feature {', '.join(map(repr, dup))} is listed twice in --features")
        if not features:
            raise DataError("no feature columns given; name them with --features")
    return features
