"""The passes over the data of the streamed L1/quantile fit (:mod:`.streamed`), one process's rows each:
how they read a source and combine what many processes hold. The sampling passes and their totals are
in :mod:`.sampling`, the classifying and check passes in :mod:`.split`.

Every pass reads the source batch by batch (rows of zero weight skipped) and holds only what it
keeps: a random sample, the rows near a hyperplane, or the rows that broke a check. Sums and kept
rows of many processes are combined by :func:`combine` and :func:`gather` (one process: as they are).
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
from torch import Tensor

from gradfit.data.batches import Batches
from gradfit.solvers.ipm import native

F64 = torch.float64
# Bytes of blocks a file source decodes ahead of these passes. Their per-row work is slower than the
# reading, so the read-ahead stays full: 48 MB (three blocks) keeps the reader busy without holding
# the 192 MB a least-squares pass uses to overlap row-group decoding (20M-row L1 fit, issue 15).
PASS_READ_AHEAD = 48 << 20


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


def load_pass(data: Batches) -> Tensor:
    """Every row ``[x, y, s]`` (for problems too small to preprocess), combined over processes."""
    parts = [torch.cat([X, y[:, None], s[:, None]], 1) for X, y, s in rows_of(data)]
    local = torch.cat(parts) if parts else torch.empty(0, data.n_features + 2, dtype=F64)
    return gather(data, local)
