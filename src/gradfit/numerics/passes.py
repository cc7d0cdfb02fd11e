"""One pass over a :class:`~gradfit.problem.batches.Batches` source in row chunks: the only place
that cuts rows into chunks (cache-sized on the CPU, large on a GPU), as tensors or as float64 numpy
blocks, and that splits an in-memory pass over threads.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np
import torch
from torch import Tensor

from gradfit.problem.batches import Batches

F64 = torch.float64
CACHE_BYTES = 3_200_000  # a chunk buffer of about this size stays in L2/L3 (measured best on 10 and 100 columns)
GPU_CHUNK_BYTES = 256 << 20  # on a GPU each chunk costs kernel launches: few large chunks (untimed: no GPU here)
DENSE_BLOCK_VALUES = 1 << 21  # values of one densified block of a sparse X (16 MiB of float64)

Chunk = tuple[Tensor, Tensor, "Tensor | None"]


def chunk_rows(n_cols: int, device: torch.device | str | None = None) -> int:
    """Rows of a chunk whose float64 buffer of ``n_cols`` columns stays in cache (CPU) or is large (GPU)."""
    on_gpu = device is not None and torch.device(device).type == "cuda"
    return max(256, (GPU_CHUNK_BYTES if on_gpu else CACHE_BYTES) // (8 * n_cols))


def is_sparse_rows(X) -> bool:
    """True for a batch's sparse X (:class:`gradfit.data.sparse.SparseRows`, duck-typed: numerics
    sits below the data layer)."""
    return getattr(X, "csr", None) is not None


def _slices(X, y: Tensor, w: Tensor | None, start: int, stop: int, rows: int) -> Iterator[Chunk]:
    for a in range(start, stop, rows):
        b = min(a + rows, stop)
        yield X[a:b], y[a:b], None if w is None else w[a:b]


def row_chunks(data: Batches, rows: int) -> Iterator[Chunk]:
    """One ordered pass as ``(X, y, weight or None)`` chunks of at most ``rows`` rows (views, no copy)."""
    for batch in data:
        yield from _slices(batch.X, batch.y, batch.weight, 0, len(batch), rows)


def numpy_chunks(data: Batches) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
    """One ordered pass as float64 numpy chunks ``(X, y, weight or None)`` on the CPU; a sparse X
    comes as dense chunks of at most :data:`DENSE_BLOCK_VALUES` values, never as one (n, p) array."""
    rows = max(1, DENSE_BLOCK_VALUES // max(data.n_features, 1))
    numpy = lambda t: t.detach().cpu().double().numpy()  # noqa: E731
    for X, y, w in row_chunks(data, rows):
        X = X.dense_rows() if is_sparse_rows(X) else X
        yield numpy(X), numpy(y), None if w is None else numpy(w)


@contextmanager
def one_torch_thread():
    """torch on one intra-op thread inside the block (the previous count is given and restored)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield n
    finally:
        torch.set_num_threads(n)


def row_parts(data: Batches, rows: int, n_parts: int) -> list[Iterator[Chunk]]:
    """The chunks of one pass, split into ``n_parts`` contiguous row ranges when the rows are in
    memory on the CPU (else one part: the ordinary ordered pass)."""
    full = data.full_batch() if data.device.type == "cpu" else None
    if full is None or n_parts <= 1 or len(full) < 4 * rows:
        return [row_chunks(data, rows)]
    n = len(full)
    bounds = [n * i // n_parts for i in range(n_parts + 1)]
    return [_slices(full.X, full.y, full.weight, bounds[i], bounds[i + 1], rows) for i in range(n_parts)]


def run_parts(fn: Callable, data: Batches, rows: int, parallel: bool = True) -> list:
    """``fn(chunks)`` for each part of :func:`row_parts`, one Python thread per part, torch single-
    threaded inside. Coarse tasks replace one OpenMP round trip per small op, which on a busy
    machine (spinning barriers) cost 10-30x: a 10M x 10 Gram took 0.6 s this way and 5-19 s with
    torch's two intra-op threads on small chunks."""
    with one_torch_thread() as n_threads:
        parts = row_parts(data, rows, n_threads if parallel else 1)
        if len(parts) == 1:
            return [fn(parts[0])]
        with ThreadPoolExecutor(len(parts)) as pool:
            return list(pool.map(fn, parts))
