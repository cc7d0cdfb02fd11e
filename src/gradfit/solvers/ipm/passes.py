"""The passes over the data of the streamed L1/quantile fit (:mod:`.streamed`), one process's rows each.

Every pass reads the source batch by batch (rows of zero weight skipped) and holds only what it
keeps: a random sample, the rows near a hyperplane, or the rows that broke a check. Sums and kept
rows of many processes are combined by :func:`combine` and :func:`gather` (one process: as they are).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import torch
from torch import Tensor

from gradfit.data.batches import Batches
from gradfit.solvers.ipm.lp import pinball_sum

F64 = torch.float64


def rows_of(data: Batches) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
    """(X, y, s) in float64 for each batch; rows of zero weight dropped (they add nothing)."""
    for b in data:
        X, y = b.X.to(F64), b.y.to(F64)
        if b.weight is None:
            yield X, y, torch.ones_like(y)
            continue
        s = b.weight.to(F64)
        keep = s > 0
        if not bool(keep.all()):
            X, y, s = X[keep], y[keep], s[keep]
        yield X, y, s


def combine(data: Batches, t: Tensor) -> Tensor:
    """Sum of ``t`` over the processes."""
    return data.allreduce(t)


def gather(data: Batches, t: Tensor) -> Tensor:
    """Every process's rows of the (r, c) tensor ``t``, in rank order (one process: ``t``)."""
    if not data.distributed:
        return t
    flagged = torch.cat([t, torch.ones(t.shape[0], 1, dtype=t.dtype, device=t.device)], 1)
    rows = data.allgather_rows(flagged)
    return rows[rows[:, -1] == 1][:, :-1]  # drop the zero rows that pad the shorter shards


def known_rows(data: Batches) -> int | None:
    """Rows of the whole source when the source knows them without a pass (Parquet metadata), else None."""
    n = data.rows_known()
    if not data.distributed:
        return n
    got = combine(data, torch.tensor([float(n or 0), float(n is None)], dtype=F64))
    return None if got[1] > 0 else int(got[0])


@dataclass
class Totals:
    """What the sampling pass sums over all rows (of positive weight)."""

    n: int
    weight_sum: float
    zero_sum: float          # sum s rho_tau(y): the zero model's loss
    col_min: Tensor
    col_max: Tensor


def sample_pass(data: Batches, tau: float, target, generator: torch.Generator) -> tuple[Tensor, Totals]:
    """A uniform random sample of about ``target(n)`` rows ``[x, y, s]`` (n: the rows, possibly growing
    as they are read) and the :class:`Totals`.

    Each row draws a key in [0, 1); the rows with the smallest keys are the sample. Rows are kept while
    their key is below a threshold that drops to the ``target``-th smallest key whenever twice the
    target is held, so memory stays within 2 targets. Across processes the union of the shards' rows
    below the smallest threshold is uniform too; every process ends with the same sample.
    """
    p = data.n_features
    keys, held, kept = [], [], 0
    t = 2.0
    n, sw, zs = 0, torch.zeros((), dtype=F64), torch.zeros((), dtype=F64)
    cmin = torch.full((p,), float("inf"), dtype=F64)
    cmax = torch.full((p,), float("-inf"), dtype=F64)
    for X, y, s in rows_of(data):
        b = len(y)
        if b == 0:
            continue
        n += b
        sw += s.sum()
        zs += pinball_sum(y, s, tau)
        cmin = torch.minimum(cmin, X.amin(0))
        cmax = torch.maximum(cmax, X.amax(0))
        key = torch.rand(b, generator=generator, dtype=F64)
        idx = torch.nonzero(key < t).flatten() if t < 1.0 else None
        rows = torch.cat([X, y[:, None], s[:, None]], 1) if idx is None else \
            torch.cat([X[idx], y[idx, None], s[idx, None]], 1)
        keys.append(key if idx is None else key[idx])
        held.append(rows)
        kept += rows.shape[0]
        k = target(n)
        if kept > 2 * k:
            allk, allr = torch.cat(keys), torch.cat(held)
            t = float(torch.kthvalue(allk, k).values)
            sel = allk <= t
            keys, held, kept = [allk[sel]], [allr[sel]], int(sel.sum())
    sums = combine(data, torch.stack([torch.tensor(float(n), dtype=F64), sw, zs]))
    bounds = gather(data, torch.cat([cmin, -cmax])[None])
    bounds = bounds.amin(0) if bounds.shape[0] else torch.cat([cmin, -cmax])
    totals = Totals(int(sums[0]), float(sums[1]), float(sums[2]), bounds[:p], -bounds[p:])
    local = torch.cat([torch.cat(keys)[:, None], torch.cat(held)], 1) if held else torch.empty(0, p + 3, dtype=F64)
    threshold = -float(gather(data, torch.tensor([[-t]], dtype=F64)).amax())
    rows = gather(data, local)
    rows = rows[rows[:, 0] <= threshold] if threshold < 1.0 else rows
    order = torch.argsort(rows[:, 0])[:target(totals.n)]
    return rows[order, 1:], totals


def load_pass(data: Batches) -> Tensor:
    """Every row ``[x, y, s]`` (for problems too small to preprocess), combined over processes."""
    parts = [torch.cat([X, y[:, None], s[:, None]], 1) for X, y, s in rows_of(data)]
    local = torch.cat(parts) if parts else torch.empty(0, data.n_features + 2, dtype=F64)
    return gather(data, local)


@dataclass
class Split:
    """The classification of the rows by a trial fit: the rows kept (near the fit, or moved back by a
    check) and the two globs' sums ``[sum s x, sum s y, sum s]`` for the rows below and above."""

    fold: Tensor              # (p, 1 + q): X @ fold + shift = [Z beta0, Z L^-T]
    shift: Tensor
    lo: float
    hi: float
    kept: Tensor = None       # (k, p + 2) rows [x, y, s] of every process
    globs: Tensor = None      # (2, p + 2): below, above
    moved: list = field(default_factory=list)  # this process's row positions moved out of the globs
    overflow: bool = False

    def sides(self, X: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        P = torch.addmm(self.shift, X, self.fold)
        Q = P[:, 1:].square()
        r, band = y - P[:, 0], (Q @ torch.ones(Q.shape[1], dtype=Q.dtype)).sqrt_()  # a GEMV: sum(1) is slow
        return r < band * self.lo, r > band * self.hi

    def globbed(self, X: Tensor, y: Tensor, start: int) -> tuple[Tensor, Tensor]:
        """(below, above) masks of a batch whose first row is this process's row ``start``."""
        below, above = self.sides(X, y)
        if self.moved:
            pos = torch.arange(start, start + len(y))
            back = torch.isin(pos, torch.cat(self.moved))
            below, above = below & ~back, above & ~back
        return below, above


def _side_sums(X: Tensor, y: Tensor, s: Tensor, below: Tensor, above: Tensor) -> Tensor:
    W = torch.stack([torch.where(below, s, 0.0), torch.where(above, s, 0.0)])
    return torch.cat([W @ X, (W @ y)[:, None], W.sum(1, keepdim=True)], 1)


def classify_pass(data: Batches, split: Split, cap: int) -> Split:
    """Fill ``split.kept`` and ``split.globs``; more than ``cap`` kept rows on a process: ``overflow``."""
    p = data.n_features
    globs = torch.zeros(2, p + 2, dtype=F64)
    kept, count, over = [], 0, False
    for X, y, s in rows_of(data):
        below, above = split.sides(X, y)
        globs += _side_sums(X, y, s, below, above)
        mid = torch.nonzero(~(below | above)).flatten()
        count += len(mid)
        if count > cap:
            over, kept = True, []
        elif len(mid):
            kept.append(torch.cat([X[mid], y[mid, None], s[mid, None]], 1))
    flags = combine(data, torch.tensor([float(over)], dtype=F64))
    split.overflow = bool(flags[0] > 0)
    split.globs = combine(data, globs)
    if not split.overflow:
        split.kept = gather(data, torch.cat(kept) if kept else torch.empty(0, p + 2, dtype=F64))
    return split


def check_pass(data: Batches, split: Split, beta_fold: tuple[Tensor, Tensor], tau: float,
               cap: int) -> tuple[float, Tensor | None, Tensor | None]:
    """Residuals at the new fit on every row: (its loss sum over all rows, the globbed rows whose sign
    flipped as ``[x, y, s, side]`` from every process (None: more than ``cap`` on a process), and
    this process's positions of them)."""
    a, c = beta_fold
    total = torch.zeros((), dtype=F64)
    bad, where, start, over = [], [], 0, False
    for X, y, s in rows_of(data):
        r1 = y - torch.addmv(c, X, a)
        total += pinball_sum(r1, s, tau)
        below, above = split.globbed(X, y, start)
        flip = torch.nonzero((below & (r1 > 0)) | (above & (r1 < 0))).flatten()
        if len(flip) and not over:
            bad.append(torch.cat([X[flip], y[flip, None], s[flip, None], above[flip, None].to(F64)], 1))
            where.append(flip + start)
            over = sum(len(w) for w in where) > cap
        start += len(y)
    sums = combine(data, torch.stack([total, torch.tensor(float(over), dtype=F64)]))
    if sums[1] > 0:
        return float(sums[0]), None, None
    local = torch.cat(bad) if bad else torch.empty(0, data.n_features + 3, dtype=F64)
    return float(sums[0]), gather(data, local), torch.cat(where) if where else torch.empty(0, dtype=torch.long)
