"""What a sparse design's least-squares coefficients can be trusted to, from O(nnz) checks.

The exact solver diagnoses a design from its p x p Gram matrix (rank-revealing QR, condition number).
The CG route (:mod:`gradfit.solvers.krylov`) exists because that Gram is too big to form, so it relies on
these checks, each a proof when it fires (none guesses):

- **constant columns** over the rows with positive weight (all zero without an intercept): their
  coefficient is set to 0, as the exact solver does;
- **more coefficients than rows**: ``rank([X, 1]) <= rows`` so the coefficients are not identified;
- **duplicated columns**: equal up to a scale factor (to 12 digits), with the same rows stored;
- **indicator columns summing to a constant** (one-hot encoded categories with every level kept, beside
  an intercept: the "dummy variable trap").

A dependence none of them proves (``x3 = x1 + x2`` in general, or a near one) is not found here: the
CG certificate still bounds the objective, and the words say which checks ran. The sentences are the
exact solver's own (:func:`constant_phrase`, :func:`dependent_phrase`), so both routes speak alike.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

CHECKS_RUN = ("constant columns, more coefficients than rows, duplicated columns, indicator columns "
              "adding up to a constant (not general linear dependence)")
SCALE_DIGITS = 1e-12  # duplicated columns: equal up to a scale factor to this relative tolerance
NAMES_SHOWN = 20


def column_names(names, idx) -> str:
    """``'a', 'b', ...`` for the columns ``idx`` (the first ``NAMES_SHOWN``, then how many more)."""
    idx = [int(j) for j in idx]
    shown = ", ".join(f"'{names[j]}'" for j in idx[:NAMES_SHOWN])
    return shown if len(idx) <= NAMES_SHOWN else f"{shown} and {len(idx) - NAMES_SHOWN} more"


def constant_phrase(names, idx, intercept: bool, solved: bool) -> str:
    what = "constant (the intercept carries it)" if intercept else "all zero"
    then = "coefficient set to 0" if solved else "its coefficient is not identified; drop it"
    return f"column(s) {column_names(names, idx)} {what}: {then}"


def dependent_phrase(names, idx, rank: str, solved: bool, why: str = "",
                     fix: str = "drop the redundant column(s)") -> str:
    """``rank`` (and ``why``, ending in ': ' or ', ') fill the parentheses after "linearly dependent"."""
    then = "returned the minimum-norm solution" if solved else \
        "their coefficients are not identified (any mix of them fits equally well)"
    return f"columns {column_names(names, idx)} are linearly dependent ({why}{rank}): {then}; {fix}"


@dataclass
class SparseDesign:
    """The findings of :func:`check_sparse_design` (column indices of X)."""

    constant: np.ndarray
    k: int                                   # coefficients left to estimate (kept columns + intercept)
    rows: int                                # rows with positive weight
    groups: list[list[int]] = field(default_factory=list)   # duplicated columns, one list per group
    trap: list[int] = field(default_factory=list)           # indicator columns summing to a constant

    @property
    def columns(self) -> list[int]:
        """Every column some check named."""
        named = set(self.constant.tolist()) | set(self.trap) | {j for g in self.groups for j in g}
        return sorted(named)

    @property
    def dependent(self) -> bool:
        return self.rows < self.k or bool(self.groups) or bool(self.trap)

    def note(self, names, intercept: bool, solved: bool, penalized: bool = False) -> str:
        """The warning text ('' when no check fired); ``solved``: words for this fit's answer;
        ``penalized``: a ridge penalty makes the answer unique, so only constant columns are named."""
        parts = [constant_phrase(names, self.constant, intercept, solved)] if self.constant.size else []
        if penalized:
            return "; ".join(parts)
        if self.rows < self.k:
            then = "returned the minimum-norm solution" if solved else "they are not identified"
            parts.append(f"{self.k} coefficients but {self.rows} rows with positive weight (rank at most "
                         f"{self.rows} of {self.k}): {then}; use fewer columns, more rows or a penalty "
                         "(penalty='l2')")
        for group in self.groups:
            parts.append(dependent_phrase(names, group, f"rank 1 of {len(group)}", solved,
                                          "equal up to a scale factor: "))
        if self.trap:
            parts.append(dependent_phrase(names, self.trap, "with the intercept", solved,
                                          "indicator columns adding up to the same value in every row, ",
                                          "drop one level of each category (its reference) or fit without an "
                                          "intercept"))
        return "; ".join(parts)


def check_sparse_design(csr, weight: np.ndarray | None, intercept: bool) -> SparseDesign:
    """Run the checks of the module docstring on a SciPy CSR design in O(nnz), without transposing it."""
    csr = sp.csr_matrix(csr)
    if weight is not None and not bool((weight > 0).all()):
        csr = csr[np.flatnonzero(weight > 0)]
    n, p = csr.shape
    nnz = np.bincount(csr.indices, minlength=p)
    value = _single_value(csr, nnz)  # the one value a column stores (NaN: several)
    all_zero = (nnz == 0) | (value == 0)
    constant = all_zero | ((nnz == n) & ~np.isnan(value)) if intercept else all_zero
    keep = ~constant
    found = SparseDesign(np.flatnonzero(constant), int(keep.sum()) + int(intercept), n)
    if not keep.any():
        return found
    found.groups = _duplicates(csr, keep, nnz)
    if intercept:
        found.trap = _indicator_trap(csr, keep & ~np.isnan(value) & (nnz < n), value)
    return found


def _single_value(csr, nnz: np.ndarray) -> np.ndarray:
    """For each column, the value all its stored entries share (NaN when they differ, or none is stored)."""
    p = csr.shape[1]
    lo, hi = np.full(p, np.inf), np.full(p, -np.inf)
    np.minimum.at(lo, csr.indices, csr.data)  # no array the size of X's values is made (cold pages cost)
    np.maximum.at(hi, csr.indices, csr.data)
    return np.where((nnz > 0) & (lo == hi), lo, np.nan)


def _duplicates(csr, keep: np.ndarray, nnz: np.ndarray) -> list[list[int]]:
    """Groups of kept columns with the same rows stored and values equal up to a scale factor: a
    fingerprint that a scale factor leaves alone (three random projections) finds the candidates, an
    exact comparison decides."""
    rng = np.random.default_rng(0)
    u, v, w = ((rng.random(csr.shape[0]) - 0.5) @ csr for _ in range(3))
    top = np.maximum(np.maximum(np.abs(u), np.abs(v)), np.abs(w))
    u, v, w = (x / np.where(top > 0, top, 1.0) for x in (u, v, w))  # no underflow when squared
    bottom = v * v + w * w
    f_vals = u * u / np.where(bottom > 0, bottom, 1.0)
    order = np.lexsort((f_vals, nnz))
    order = order[keep[order]]
    same = (nnz[order[1:]] == nnz[order[:-1]]) & \
        (np.abs(f_vals[order[1:]] - f_vals[order[:-1]]) <= 1e-9 * np.maximum(1.0, np.abs(f_vals[order[:-1]])))
    if not same.any():
        return []
    runs = np.split(order, np.flatnonzero(~same) + 1)
    candidates = [run for run in runs if run.size > 1]
    cols = np.concatenate(candidates)
    block = csr[:, cols].tocsc()
    block.sort_indices()
    first = block.data[block.indptr[:-1][np.diff(block.indptr) > 0]]  # each non-empty column's first value
    block.data = block.data / np.repeat(np.where(first == 0, 1.0, first), np.diff(block.indptr)[np.diff(block.indptr) > 0])
    where = {int(j): i for i, j in enumerate(cols)}
    groups: list[list[int]] = []
    for run in candidates:
        groups += _confirm(block, run, where)
    return groups


def _confirm(block, candidates, where) -> list[list[int]]:
    """Split ``candidates`` into groups of columns that are truly equal (same rows, values to 12 digits)."""
    def column(j):
        a, b = block.indptr[where[j]], block.indptr[where[j] + 1]
        return block.indices[a:b], block.data[a:b]
    groups: list[list[int]] = []
    left = [int(j) for j in candidates]
    while len(left) > 1:
        rows, vals = column(left[0])
        group, rest = [left[0]], []
        for j in left[1:]:
            r, v = column(j)
            equal = np.array_equal(rows, r) and bool(np.all(np.abs(vals - v) <= SCALE_DIGITS * np.abs(vals).max()))
            (group if equal else rest).append(j)
        if len(group) > 1:
            groups.append(sorted(group))
        left = rest
    return groups


def _indicator_trap(csr, indicator: np.ndarray, value: np.ndarray) -> list[int]:
    """The indicator columns (one stored value, not every row) when they add up to one positive value in
    every row: then they and the intercept are linearly dependent."""
    cols = np.flatnonzero(indicator)
    if cols.size < 2:
        return []
    counts = csr @ np.where(indicator, 1.0 / np.where(indicator, value, 1.0), 0.0)
    if counts.min() > 0 and counts.max() - counts.min() <= 1e-12 * counts.max():
        return cols.tolist()
    return []
