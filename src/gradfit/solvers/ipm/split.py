"""The classification of the rows by a trial fit in the streamed L1/quantile fit (:mod:`.streamed`):
the classifying pass (kept rows, glob sums, the near band, and the sampling totals in the same sweep),
the check of a new fit on the near rows held in memory, and the check pass over every row."""
from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import torch
from torch import Tensor

from gradfit.data.batches import Batches
from gradfit.data.stream import release_memory
from gradfit.solvers.ipm import native
from gradfit.solvers.ipm.lp import pinball_sum
from gradfit.solvers.ipm.passes import F64, block_rows, blocks_of, combine, gather, take
from gradfit.solvers.ipm.sampling import Totals, add_stats, merge_stats, new_stats, totals_of

# The classifying pass cuts a block of at least PASS_SPLIT_ROWS rows into PASS_THREADS pieces run at
# once: its compiled work is slower than the reading, and the reader thread mostly waits for it
PASS_THREADS = 2
PASS_SPLIT_ROWS = 1 << 15


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


def _classify_part(X, y: Tensor, s: Tensor | None, split: Split, cap: int, near_cap: int, totals):
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


def _compiled_parts(X, y: Tensor, s: Tensor | None, split: Split, cap: int, near_cap: int, totals):
    """:func:`_classify_part` of a block, cut in two halves run on two cores when the process has them
    (the reader thread mostly waits for this pass); ``[(part, first row of the part)]`` in row order."""
    b = block_rows(X)
    halves = PASS_THREADS if b >= PASS_SPLIT_ROWS and native.cores() >= PASS_THREADS else 1
    if halves == 1:
        return [(_classify_part(X, y, s, split, cap, near_cap, totals), 0)]
    cuts = [b * i // halves for i in range(halves + 1)]
    jobs = [_pool().submit(_classify_part, _rows_of_part(X, lo, hi), y[lo:hi], None if s is None else s[lo:hi],
                           split, cap, near_cap, totals) for lo, hi in zip(cuts, cuts[1:])]
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
            parts = _compiled_parts(X, y, s, split, max(cap - count, 0), max(near_cap - n_near, 0), totals)
        else:
            parts = [(_torch_part(X, y, s, split, totals, want_near, p), 0)]
        for (G, part_stats, rows, near_rows, nr), at in parts:
            globs += G
            if stats is not None:
                merge_stats(stats, part_stats, p)
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
