"""The passes over the data of the streamed L1/quantile fit (:mod:`.streamed`), one process's rows each.

Every pass reads the source batch by batch (rows of zero weight skipped) and holds only what it
keeps: a random sample, the rows near a hyperplane, or the rows that broke a check. Sums and kept
rows of many processes are combined by :func:`combine` and :func:`gather` (one process: as they are).
"""
from __future__ import annotations

import functools
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import torch
from torch import Tensor

from gradfit.data.batches import Batches
from gradfit.data.stream import release_memory
from gradfit.solvers.ipm import native
from gradfit.solvers.ipm.lp import pinball_sum

F64 = torch.float64
# Bytes of blocks a file source decodes ahead of these passes. Their per-row work is slower than the
# reading, so the read-ahead stays full: 48 MB (three blocks) keeps the reader busy without holding
# the 192 MB a least-squares pass uses to overlap row-group decoding (20M-row L1 fit, issue 15).
PASS_READ_AHEAD = 48 << 20
# The classifying pass cuts a block of at least PASS_SPLIT_ROWS rows into PASS_THREADS pieces run at
# once: its compiled work is slower than the reading, and the reader thread mostly waits for it
PASS_THREADS = 2
PASS_SPLIT_ROWS = 1 << 15


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


def blocks_of(data: Batches) -> Iterator[tuple[object, Tensor, Tensor | None]]:
    """``(X, y, weight or None)`` for each block, every row kept (zero weights included: the compiled
    passes skip them, and row positions stay those of the source). X is a list of float64 numpy
    columns when the source offers an unchecked pass (no matrix built; a NaN or inf then shows in the
    sampling pass's sums, and :meth:`Batches.validate` names it), else a float64 tensor."""
    columns = data.unchecked_columns(read_ahead=PASS_READ_AHEAD) if native.rows_usable([]) else None
    if columns is not None:
        p, weighted = data.n_features, data.has_weight
        for cols in columns:
            yield cols[:p], torch.from_numpy(cols[p]), (torch.from_numpy(cols[p + 1]) if weighted else None)
        return
    for b in data:
        yield b.X.to(F64), b.y.to(F64), (None if b.weight is None else b.weight.to(F64))


def take(X, y: Tensor, u: Tensor | None, idx: Tensor) -> Tensor:
    """The rows ``idx`` of a block as ``[x, y, s]`` (float64)."""
    if native.rows_usable(X):
        return native.gather(X, y, u, idx)
    if isinstance(X, list):
        i = idx.numpy()
        Xi = torch.from_numpy(np.stack([c[i] for c in X], 1)) if X else torch.empty(len(i), 0, dtype=F64)
    else:
        Xi = X[idx]
    s = torch.ones(len(idx), dtype=F64) if u is None else u[idx]
    return torch.cat([Xi, y[idx, None], s[:, None]], 1)


def block_rows(X) -> int:
    return (len(X[0]) if X else 0) if isinstance(X, list) else X.shape[0]


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


def load_pass(data: Batches) -> Tensor:
    """Every row ``[x, y, s]`` (for problems too small to preprocess), combined over processes."""
    parts = [torch.cat([X, y[:, None], s[:, None]], 1) for X, y, s in rows_of(data)]
    local = torch.cat(parts) if parts else torch.empty(0, data.n_features + 2, dtype=F64)
    return gather(data, local)


@dataclass
class Split:
    """The classification of the rows by a trial fit: the rows kept (near the fit, or moved back by a
    check) and the two globs' sums ``[sum s x, sum s y, sum s]`` for the rows below and above. Rows
    globbed although their ``kappa`` lies within ``[lo2, hi2]`` are also held as ``near`` rows: a
    move of the fit too small to flip a row outside that band is checked on them alone."""

    fold: Tensor              # (p, 1 + q): X @ fold + shift = [Z beta0, Z L^-T]
    shift: Tensor
    lo: float
    hi: float
    lo2: float = None
    hi2: float = None
    kept: Tensor = None       # (k, p + 2) rows [x, y, s] of every process
    globs: Tensor = None      # (2, p + 2): below, above
    near: Tensor = None       # (j, p + 3) this process's near rows [x, y, s, side], None: too many
    near_at: Tensor = None    # their positions in this process's rows
    moved: list = field(default_factory=list)  # this process's row positions moved out of the globs
    overflow: bool = False
    totals: Totals | None = None

    def sides(self, X: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        P = torch.addmm(self.shift, X, self.fold)
        Q = P[:, 1:].square()
        r, band = y - P[:, 0], (Q @ torch.ones(Q.shape[1], dtype=Q.dtype)).sqrt_()  # a GEMV: sum(1) is slow
        return r < band * self.lo, r > band * self.hi

    def side_codes(self, X, y: Tensor, u: Tensor | None) -> Tensor:
        """-1 / 0 / +1 (below, kept, above) per row of a block; rows of zero weight 0."""
        if native.rows_usable(X):
            return native.classify(X, y, u, self.fold, self.shift, self.lo, self.hi, cap=0, side=True)[2]
        below, above = self.sides(X, y)
        code = above.to(torch.int8) - below.to(torch.int8)
        return code if u is None else torch.where(u > 0, code, 0)

    def globbed(self, X, y: Tensor, u: Tensor | None, start: int) -> Tensor:
        """The side codes of a block whose first row is this process's row ``start``, 0 for the rows
        moved out of the globs."""
        code = self.side_codes(X, y, u)
        if self.moved:
            pos = torch.arange(start, start + len(y))
            code = torch.where(torch.isin(pos, torch.cat(self.moved)), 0, code)
        return code


def _side_sums(X: Tensor, y: Tensor, s: Tensor, below: Tensor, above: Tensor) -> Tensor:
    W = torch.stack([torch.where(below, s, 0.0), torch.where(above, s, 0.0)])
    return torch.cat([W @ X, (W @ y)[:, None], W.sum(1, keepdim=True)], 1)


def _rows_of_part(X, a: int, b: int):
    return [c[a:b] for c in X] if isinstance(X, list) else X[a:b]


def _classify_part(X, y: Tensor, s: Tensor | None, split: Split, cap: int, near_cap: int, totals, want_near: bool):
    """The compiled classifying pass over one piece of a block: ``(G, its stats or None, its kept rows
    or None past cap, its near rows [x, y, s, side] or None past near_cap, their indices)``. Runs in a
    worker thread (ctypes releases the GIL)."""
    p = len(X) if isinstance(X, list) else X.shape[1]
    stats = new_stats(p) if totals is not None else None
    G, _, _, nr, kept, near = native.classify(X, y, s, split.fold, split.shift, split.lo, split.hi, cap=cap,
                                              lo2=split.lo2, hi2=split.hi2, near_cap=near_cap, stats=stats,
                                              center=None if totals is None else totals[1],
                                              tau=None if totals is None else totals[0], rows=True)
    return G, stats, kept, near, nr


def _merge_stats(into: Tensor, part: Tensor, p: int) -> None:
    """Add a piece's :func:`new_stats` sums to ``into`` (extremes by min / max; NaN wins)."""
    into[:3] += part[:3]
    into[3:3 + p] = torch.minimum(into[3:3 + p], part[3:3 + p])
    into[3 + p:3 + 2 * p] = torch.maximum(into[3 + p:3 + 2 * p], part[3 + p:3 + 2 * p])
    into[3 + 2 * p:] += part[3 + 2 * p:]


def _compiled_parts(X, y: Tensor, s: Tensor | None, split: Split, cap: int, near_cap: int, totals, want_near: bool):
    """:func:`_classify_part` of a block, cut in two halves run on two cores when the process has them
    (the reader thread mostly waits for this pass); ``[(part, first row of the part)]`` in row order."""
    b = block_rows(X)
    halves = PASS_THREADS if b >= PASS_SPLIT_ROWS and native.cores() >= PASS_THREADS else 1
    if halves == 1:
        return [(_classify_part(X, y, s, split, cap, near_cap, totals, want_near), 0)]
    cuts = [b * i // halves for i in range(halves + 1)]
    jobs = [_pool().submit(_classify_part, _rows_of_part(X, lo, hi), y[lo:hi], None if s is None else s[lo:hi],
                           split, cap, near_cap, totals, want_near) for lo, hi in zip(cuts, cuts[1:])]
    return [(job.result(), lo) for job, lo in zip(jobs, cuts)]


@functools.lru_cache(maxsize=None)
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=PASS_THREADS, thread_name_prefix="gradfit-pass")


def classify_pass(data: Batches, split: Split, cap: int, near_cap: int = 0,
                  totals: tuple[float, Tensor] | None = None) -> Split:
    """Fill ``split.kept``, ``split.globs`` and (with ``split.lo2``) ``split.near``; more than ``cap``
    kept rows on a process: ``overflow``; more than ``near_cap`` near rows: ``near`` None. With
    ``totals = (tau, center)`` also ``split.totals`` (:class:`Totals`, every process's)."""
    p = data.n_features
    globs = torch.zeros(2, p + 2, dtype=F64)
    stats = new_stats(p) if totals is not None else None
    kept, near, near_at, count, n_near, over, start = [], [], [], 0, 0, False, 0
    want_near = split.lo2 is not None
    for X, y, s in blocks_of(data):
        b = block_rows(X)
        if native.rows_usable(X):
            parts = _compiled_parts(X, y, s, split, max(cap - count, 0), max(near_cap - n_near, 0), totals,
                                    want_near)
        else:
            parts = [(_torch_part(X, y, s, split, totals, want_near, p), 0)]
        for (G, part_stats, rows, near_rows, nr), at in parts:
            globs += G
            if stats is not None:
                _merge_stats(stats, part_stats, p)
            count += cap + 1 if rows is None else len(rows)
            if rows is None or count > cap:
                over, kept = True, []
            elif not over and len(rows):
                kept.append(rows)
            if want_near and n_near <= near_cap:
                n_near += near_cap + 1 if nr is None else len(nr)
                if n_near > near_cap:
                    near = []
                elif len(nr):
                    near.append(near_rows)
                    near_at.append(nr + start + at)
        start += b
    X = y = s = parts = None  # the last block holds its whole row group
    release_memory()  # the decoded blocks, before the kept and near rows are put together
    flags = combine(data, torch.tensor([float(over)], dtype=F64))
    split.overflow = bool(flags[0] > 0)
    if stats is not None:
        split.totals = totals_of(data, stats, totals[1])
    split.globs = combine(data, globs)
    if not split.overflow:
        local = torch.cat(kept) if kept else torch.empty(0, p + 2, dtype=F64)
        kept.clear()  # each piece freed before the next copy (70M rows: 68 MB each)
        split.kept = gather(data, local)
        del local
    if want_near:
        ok = combine(data, torch.tensor([float(n_near > near_cap)], dtype=F64))[0] == 0
        if ok:
            split.near = torch.cat(near) if near else torch.empty(0, p + 3, dtype=F64)
            split.near_at = torch.cat(near_at) if near_at else torch.empty(0, dtype=torch.long)
        near.clear()
    release_memory()
    return split


def _torch_part(X: Tensor, y: Tensor, s: Tensor | None, split: Split, totals, want_near: bool, p: int):
    """:func:`_classify_part` in torch (no compiled module): every middle row and near row is returned
    (the caller applies the caps)."""
    u = torch.ones(len(y), dtype=F64) if s is None else s
    below, above = split.sides(X, y)
    below, above = below & (u > 0), above & (u > 0)
    G = _side_sums(X, y, u, below, above)
    stats = None
    if totals is not None:
        stats = new_stats(p)
        add_stats(X, y, s, totals[0], totals[1], stats)
    rows = take(X, y, s, torch.nonzero(~(below | above) & (u > 0)).flatten())
    near, nr = None, None
    if want_near:
        P = torch.addmm(split.shift, X, split.fold)
        kap = (y - P[:, 0]) / P[:, 1:].norm(dim=1).clamp_min(1e-300)
        nr = torch.nonzero((below & (kap >= split.lo2)) | (above & (kap <= split.hi2))).flatten()
        near = take(X, y, s, nr)
        code = above[nr].to(torch.int8) - below[nr].to(torch.int8)
        near = torch.cat([near, code.to(F64)[:, None]], 1)
    return G, stats, rows, near, nr


def near_check(data: Batches, split: Split, beta_fold: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    """The near rows whose sign flipped at the new fit, as ``[x, y, s, above]`` from every process (as
    :func:`check_pass`), and this process's positions of them; they leave ``split.near``."""
    a, c = beta_fold
    p = data.n_features
    near = split.near
    r = near[:, p] - (torch.addmv(c, near[:, :p], a) if len(near) else near[:, p])
    flip = ((near[:, -1] < 0) & (r > 0)) | ((near[:, -1] > 0) & (r < 0))
    where = split.near_at[flip]
    bad = near[flip]
    bad = torch.cat([bad[:, :-1], (bad[:, -1:] > 0).to(F64)], 1)  # as check_pass: 1 above, 0 below
    split.near, split.near_at = near[~flip], split.near_at[~flip]
    return gather(data, bad), where


def check_pass(data: Batches, split: Split, beta_fold: tuple[Tensor, Tensor], tau: float,
               cap: int) -> tuple[float, Tensor | None, Tensor | None]:
    """Residuals at the new fit on every row: (its loss sum over all rows, the globbed rows whose sign
    flipped as ``[x, y, s, side]`` from every process (None: more than ``cap`` on a process), and
    this process's positions of them)."""
    a, c = beta_fold
    total = torch.zeros((), dtype=F64)
    bad, where, start, over = [], [], 0, False
    for X, y, s in blocks_of(data):
        b = block_rows(X)
        code = split.globbed(X, y, s, start)
        if native.rows_usable(X):
            t, flip, _ = native.check(X, y, s, a, float(c), tau, code.contiguous(), cap=b)
            total += t
        else:
            u = torch.ones(b, dtype=F64) if s is None else s
            r1 = y - torch.addmv(c, X, a)
            total += pinball_sum(r1, u, tau)
            flip = torch.nonzero(((code < 0) & (r1 > 0)) | ((code > 0) & (r1 < 0))).flatten()
        if len(flip) and not over:
            rows = take(X, y, s, flip)
            bad.append(torch.cat([rows, (code[flip] > 0).to(F64)[:, None]], 1))
            where.append(flip + start)
            over = sum(len(w) for w in where) > cap
        start += b
    X = y = s = None  # the last block holds its whole row group
    release_memory()
    sums = combine(data, torch.stack([total, torch.tensor(float(over), dtype=F64)]))
    if sums[1] > 0:
        return float(sums[0]), None, None
    local = torch.cat(bad) if bad else torch.empty(0, data.n_features + 3, dtype=F64)
    return float(sums[0]), gather(data, local), torch.cat(where) if where else torch.empty(0, dtype=torch.long)
