"""The sampling passes of the streamed L1/quantile fit (:mod:`.streamed`) and the totals a pass sums:
a uniform sample of every row, or a sample of a few row groups whose totals the classifying pass
(:mod:`.split`) then sums in its own sweep."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from gradfit.data.batches import Batches
from gradfit.data.stream import release_memory
from gradfit.solvers.ipm import native
from gradfit.solvers.ipm.lp import pinball_sum
from gradfit.solvers.ipm.passes import (F64, PASS_READ_AHEAD, block_rows, blocks_of, combine, gather, known_rows,
                                        take)


@dataclass
class Totals:
    """What a pass sums over all rows (of positive weight); the classifying pass also the shifted
    column sums ``s1 = sum s (x - center)`` and ``s2 = sum s (x - center)^2``."""

    n: int
    weight_sum: float
    zero_sum: float          # sum s rho_tau(y): the zero model's loss
    col_min: Tensor
    col_max: Tensor
    center: Tensor | None = None
    s1: Tensor | None = None
    s2: Tensor | None = None

    def finite(self) -> bool:
        parts = [self.col_min, self.col_max, torch.tensor([self.weight_sum, self.zero_sum], dtype=F64)]
        parts += [t for t in (self.s1, self.s2) if t is not None]
        return bool(torch.isfinite(torch.cat(parts)).all())


def new_stats(p: int) -> Tensor:
    """The running sums of a pass with totals: ``[rows, sum s, sum s rho_tau(y), min (p), max (p),
    s1 (p), s2 (p)]`` (the layout :func:`native.classify` accumulates)."""
    t = torch.zeros(3 + 4 * p, dtype=F64)
    t[3:3 + p], t[3 + p:3 + 2 * p] = float("inf"), float("-inf")
    return t


def add_stats(X, y: Tensor, s: Tensor | None, tau: float, center: Tensor, stats: Tensor) -> None:
    """:func:`new_stats`'s sums over one block, in numpy (a source without the compiled kernel)."""
    p = center.numel()
    keep = None if s is None else (s > 0).numpy()
    yv = y.numpy() if keep is None else y.numpy()[keep]
    sv = np.ones_like(yv) if s is None else s.numpy()[keep]
    if len(yv) == 0:
        return
    stats[0] += len(yv)
    stats[1] += float(sv.sum())
    stats[2] += float(sv @ np.where(yv >= 0, tau * yv, (tau - 1.0) * yv))
    cols = X if isinstance(X, list) else list(X.numpy().T)
    for j in range(p):
        c = cols[j] if keep is None else cols[j][keep]
        d = c - float(center[j])
        stats[3 + j] = float(np.minimum(float(stats[3 + j]), c.min()))  # NaN propagates
        stats[3 + p + j] = float(np.maximum(float(stats[3 + p + j]), c.max()))
        stats[3 + 2 * p + j] += float(sv @ d)
        stats[3 + 3 * p + j] += float(sv @ (d * d))


def merge_stats(into: Tensor, part: Tensor, p: int) -> None:
    """Add a piece's :func:`new_stats` sums to ``into`` (extremes by min / max; NaN wins)."""
    into[:3] += part[:3]
    into[3:3 + p] = torch.minimum(into[3:3 + p], part[3:3 + p])
    into[3 + p:3 + 2 * p] = torch.maximum(into[3 + p:3 + 2 * p], part[3 + p:3 + 2 * p])
    into[3 + 2 * p:] += part[3 + 2 * p:]


def totals_of(data: Batches, stats: Tensor, center: Tensor) -> Totals:
    """The :class:`Totals` of every process from this process's :func:`new_stats` sums."""
    p = center.numel()
    sums = combine(data, torch.cat([stats[:3], stats[3 + 2 * p:]]))
    bounds = gather(data, torch.cat([stats[3:3 + p], -stats[3 + p:3 + 2 * p]])[None])
    bounds = bounds.amin(0) if bounds.shape[0] else torch.cat([stats[3:3 + p], -stats[3 + p:3 + 2 * p]])
    return Totals(int(sums[0]), float(sums[1]), float(sums[2]), bounds[:p], -bounds[p:], center,
                  sums[3:3 + p], sums[3 + p:])


def unit_sample_pass(data: Batches, m: int, generator: torch.Generator) -> Tensor | None:
    """About ``m`` rows ``[x, y, s]`` (s > 0) of every process, drawn uniformly from a few whole units
    picked at random (:meth:`Batches.sample_units`); each process takes its share of ``m``. None when
    some process's source cannot read a part of itself. A sample of a few places in the file: the
    rounds built on it prove their result as any other, they only fail more often when the file's
    rows are in a meaningful order."""
    p = data.n_features
    n_local, n_all = data.rows_known() or 0, known_rows(data) or 0
    want = int(math.ceil(m * n_local / max(n_all, 1)))
    picked = data.sample_units(want, generator, PASS_READ_AHEAD) if want > 0 else None
    if float(combine(data, torch.tensor([float(want > 0 and picked is None)], dtype=F64))[0]) > 0:
        return None  # some process cannot (its unopened reader starts nothing)
    held = []
    if picked is not None:
        blocks, rows = picked
        rng = np.random.default_rng(int(torch.randint(1 << 62, (1,), generator=generator)))
        seen = taken = 0
        for cols in blocks:  # each block gives its share of the sample, rows drawn without replacement
            b = len(cols[p])
            k = min(b, int(round(want * (seen + b) / max(rows, 1))) - taken)
            seen, taken = seen + b, taken + k
            idx = torch.from_numpy(np.sort(rng.choice(b, k, replace=False)))
            got = take(cols[:p], torch.from_numpy(cols[p]), torch.from_numpy(cols[p + 1]) if data.has_weight else None,
                       idx)
            held.append(got if not data.has_weight else got[got[:, p + 1] > 0])
    local = torch.cat(held) if held else torch.empty(0, p + 2, dtype=F64)
    del held
    cols = None  # the last block holds its whole row group
    release_memory()  # the decoded row groups
    return gather(data, local)


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
    known = data.rows_known()
    # with the row count known, keep each row with probability 1.25 target / n from the start (the
    # sample then exceeds the target by 20 standard deviations or so at a million rows; the
    # threshold below only moves when it does not); else keep every row until twice the target is held
    t = min(2.0, 1.25 * target(known) / known) if known else 2.0
    n = 0
    cmin = torch.full((p,), float("inf"), dtype=F64)
    cmax = torch.full((p,), float("-inf"), dtype=F64)
    compiled = native.rows_usable([])
    sums = torch.zeros(3, dtype=F64)
    for X, y, s in blocks_of(data):
        b = block_rows(X)
        if b == 0:
            continue
        key = torch.rand(b, generator=generator, dtype=F64)
        if compiled:
            idx = native.stats(X, y, s, tau, key, t, cmin, cmax, sums, cap=b)
            n = int(sums[0])
        else:  # no compiled module: blocks_of yields tensors
            pos = torch.ones(b, dtype=torch.bool) if s is None else s > 0
            Xp, yp, sp = X[pos], y[pos], (torch.ones(b, dtype=F64) if s is None else s)[pos]
            n += len(yp)
            sums[1] += sp.sum()
            sums[2] += pinball_sum(yp, sp, tau)
            if len(yp):
                cmin = torch.minimum(cmin, Xp.amin(0))
                cmax = torch.maximum(cmax, Xp.amax(0))
            idx = torch.nonzero((key < t) & pos).flatten()
        rows = take(X, y, s, idx)
        keys.append(key[idx])
        held.append(rows)
        kept += rows.shape[0]
        k = target(max(n, 1))
        if kept > 2 * k:
            allk, allr = torch.cat(keys), torch.cat(held)
            t = float(torch.kthvalue(allk, k).values)
            sel = allk <= t
            keys, held, kept = [allk[sel]], [allr[sel]], int(sel.sum())
    sw, zs = sums[1], sums[2]
    sums = combine(data, torch.stack([torch.tensor(float(n), dtype=F64), sw, zs]))
    bounds = gather(data, torch.cat([cmin, -cmax])[None])
    bounds = bounds.amin(0) if bounds.shape[0] else torch.cat([cmin, -cmax])
    totals = Totals(int(sums[0]), float(sums[1]), float(sums[2]), bounds[:p], -bounds[p:])
    local = torch.cat([torch.cat(keys)[:, None], torch.cat(held)], 1) if held else torch.empty(0, p + 3, dtype=F64)
    del keys, held
    X = y = s = None  # the last block holds its whole row group
    release_memory()
    threshold = -float(gather(data, torch.tensor([[-t]], dtype=F64)).amax())
    rows = gather(data, local)
    rows = rows[rows[:, 0] <= threshold] if threshold < 1.0 else rows
    order = torch.argsort(rows[:, 0])[:target(totals.n)]
    return rows[order, 1:], totals
