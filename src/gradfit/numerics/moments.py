"""Streaming passes for least squares: shifted moments, column scales and a streaming QR.

Every pass walks the data once in row chunks small enough to stay in cache. A chunk is copied,
shifted by a per-column centre, into one float64 buffer ``B = sqrt(s) * [X - m, 1, y - m_y]``
(s: sample weights), so no copy of ``X`` is ever made and the products never see large means.

* :func:`moments` returns ``M = B'B`` summed over all rows (one pass; the Gram of the shifted,
  augmented data) together with the shift it used. A streamed source that offers unchecked
  columns has its columns summed without an (n, p) matrix in between, by the compiled kernel
  of :mod:`gradfit.numerics.kernel` where the install built it.
* :mod:`gradfit.numerics.compensated` has the residual pass of iterative refinement (double-double).
* :func:`streaming_r` returns the R factor of ``sqrt(s) * [Z, t]`` (TSQR: one QR per chunk,
  stacked onto the running R) for a standardized design ``Z``; used when the Gram matrix is too
  ill-conditioned to factor.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np
import torch
from torch import Tensor

from gradfit.numerics import kernel as native
from gradfit.numerics.sparse_gram import sparse_moments
from gradfit.problem.batches import Batches

F64 = torch.float64
CACHE_BYTES = 3_200_000  # a chunk buffer of about this size stays in L2/L3 (measured best on 10 and 100 columns)


GPU_CHUNK_BYTES = 256 << 20  # on a GPU each chunk costs kernel launches: few large chunks (untimed: no GPU here)


def chunk_rows(n_cols: int, device: torch.device | str | None = None) -> int:
    on_gpu = device is not None and torch.device(device).type == "cuda"
    return max(256, (GPU_CHUNK_BYTES if on_gpu else CACHE_BYTES) // (8 * n_cols))


def row_chunks(data: Batches, rows: int) -> Iterator[tuple[Tensor, Tensor, Tensor | None]]:
    for batch in data:
        n = batch.X.shape[0]
        for a in range(0, n, rows):
            w = None if batch.weight is None else batch.weight[a:a + rows]
            yield batch.X[a:a + rows], batch.y[a:a + rows], w


def _sqrt_weight(w: Tensor) -> Tensor:
    w = w.to(F64)
    if bool((w < 0).any()):
        raise ValueError("sample weights must be >= 0 for least squares")
    return w.sqrt()


def is_sparse_rows(X) -> bool:
    """True for a batch's sparse X (:class:`gradfit.data.sparse.SparseRows`, duck-typed: numerics
    sits below the data layer)."""
    return getattr(X, "csr", None) is not None


def gram_by_numpy(n_cols: int) -> bool:
    """Which library adds a chunk's ``B'B`` on the CPU: numpy's symmetric rank-k update for wide
    buffers, torch's (MKL) matrix product at a :func:`padded_width` for narrow ones (faster there:
    20M x 12 took 0.19 s against OpenBLAS's 0.29 s on a Xeon, about the same on an EPYC)."""
    return n_cols > 32


def padded_width(n_cols: int) -> int:
    """MKL's small-width GEMM is 2-4x faster at widths that are multiples of 12 (measured: 11 columns
    2.5 ms, 12 columns 1.1 ms per chunk), so narrow buffers get zero columns up to one."""
    return -(-n_cols // 12) * 12 if n_cols <= 36 else n_cols


@contextmanager
def one_torch_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield n
    finally:
        torch.set_num_threads(n)


def row_parts(data: Batches, rows: int, n_parts: int) -> list[Iterator]:
    """The chunks of one pass, split into ``n_parts`` contiguous row ranges when the rows are in
    memory on the CPU (else one part: the ordinary ordered pass)."""
    full = data.full_batch() if data.device.type == "cpu" else None
    if full is None or n_parts <= 1 or len(full) < 4 * rows:
        return [row_chunks(data, rows)]
    n = len(full)
    bounds = [n * i // n_parts for i in range(n_parts + 1)]

    def part(a: int, b: int):
        for s in range(a, b, rows):
            e = min(s + rows, b)
            yield full.X[s:e], full.y[s:e], None if full.weight is None else full.weight[s:e]
    return [part(bounds[i], bounds[i + 1]) for i in range(n_parts)]


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


def moments(data: Batches) -> tuple[Tensor, Tensor, Tensor]:
    """One pass: ``(M, shift_x, shift_y)`` with ``M = sum B'B``, ``B = sqrt(s)[X - shift_x, 1, y - shift_y]``.

    The shift is the first chunk's mean (close to the column means, so nothing cancels); processes
    of a distributed source each use their own shift and :func:`reshift` moves them to a common
    one before the sums are combined. With many columns on the CPU the chunk goes through numpy,
    whose ``b.T @ b`` is a symmetric rank-k update (half the flops of a general matmul); mixing
    torch's and numpy's thread pools in one loop makes both spin, so one library does a chunk.
    In-memory rows are split over threads (:func:`run_parts`).
    """
    p = data.n_features
    dev = data.device
    rows = chunk_rows(p + 2, dev)
    full = data.full_batch()
    if full is not None and is_sparse_rows(full.X):
        return sparse_moments(full.X, full.y, full.weight)
    columns = data.unchecked_columns() if full is None and dev.type == "cpu" else None
    if columns is not None:
        return _column_moments(columns, p, rows)
    use_np = dev.type == "cpu" and gram_by_numpy(p + 2)
    width = p + 2 if use_np or dev.type != "cpu" else padded_width(p + 2)
    shift = None
    if full is not None and len(full):
        shift = (full.X[:rows].to(F64).mean(0), full.y[:rows].to(F64).mean())

    def part(chunks):
        M = torch.zeros(width, width, dtype=F64, device=dev)
        buf = torch.zeros(rows, width, dtype=F64, device=dev)
        buf[:, p] = 1.0
        Mn, bufn = (M.numpy(), buf.numpy()) if use_np else (None, None)
        sx, sy = shift if shift is not None else (torch.zeros(p, dtype=F64, device=dev),
                                                   torch.zeros((), dtype=F64, device=dev))
        first = shift is None
        for X, y, w in chunks:
            m = X.shape[0]
            if m == 0:
                continue
            if first:
                sx, sy, first = X.to(F64).mean(0), y.to(F64).mean(), False
            if use_np:
                b = bufn[:m]
                np.subtract(X.numpy(), sx.numpy(), out=b[:, :p])
                np.subtract(y.numpy(), float(sy), out=b[:, p + 1])
                if w is not None:
                    b[:, p] = 1.0
                    b *= _sqrt_weight(w).numpy()[:, None]
                Mn += b.T @ b
                continue
            b = buf[:m]
            torch.sub(X, sx, out=b[:, :p])
            # y - sy with a 0-d float64 sy would be computed in y's dtype (float32 loses 7 digits)
            torch.sub(y.to(F64), sy, out=b[:, p + 1])
            if w is not None:
                b[:, p] = 1.0
                b.mul_(_sqrt_weight(w)[:, None])
            M.addmm_(b.T, b)
        return M[:p + 2, :p + 2], sx, sy

    out = run_parts(part, data, rows, parallel=not use_np and shift is not None)
    M = sum(o[0] for o in out)
    return M, out[0][1], out[0][2]


def _column_moments(blocks: Iterator[list[np.ndarray]], p: int, rows: int) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`moments` from blocks of columns ``[x_1..x_p, y, (w)]``, no (n, p) matrix built: the
    compiled kernel (:mod:`gradfit.numerics.kernel`) where the install built it, else :class:`_ChunkSums`.
    The shift is the first ``rows`` rows' mean, as in :func:`moments`."""
    sums = None
    with np.errstate(invalid="ignore", over="ignore"), one_torch_thread():  # a NaN/inf shows in M; the caller validates
        for cols in blocks:
            if sums is None:
                shift = np.array([c[:rows].mean() for c in cols[:p + 1]])
                sums = native.MomentSums(p, shift) if native.available(p + 2) else _ChunkSums(p, shift, rows)
            sums.add(cols[:p + 1], cols[p + 1] if len(cols) > p + 1 else None)
    if sums is None:
        return torch.zeros(p + 2, p + 2, dtype=F64), torch.zeros(p, dtype=F64), torch.zeros((), dtype=F64)
    M = torch.from_numpy(sums.result())
    return M, torch.from_numpy(sums.shift[:p].copy()), torch.tensor(float(sums.shift[p]), dtype=F64)


class _ChunkSums:
    """:class:`gradfit.numerics.kernel.MomentSums` in numpy and torch: each chunk of each column is shifted into
    a row of a cache-sized ``B'``, then ``B'B`` is added as :func:`gram_by_numpy` says (torch on one
    thread: the reader's pyarrow threads use the cores)."""

    def __init__(self, p: int, shift: np.ndarray, rows: int):
        self.p, self.shift, self.rows = p, shift, rows
        self.use_np = gram_by_numpy(p + 2)
        width = p + 2 if self.use_np else padded_width(p + 2)
        self.Bt_t = torch.zeros(width, rows, dtype=F64)  # rows past p + 1 stay zero
        self.M_t = torch.zeros(width, width, dtype=F64)
        self.Bt, self.M = self.Bt_t.numpy(), self.M_t.numpy()
        self.Bt[p] = 1.0

    def add(self, cols: list[np.ndarray], weight: np.ndarray | None = None) -> None:
        p, rows, Bt, shift = self.p, self.rows, self.Bt, self.shift
        n = len(cols[0])
        for a in range(0, n, rows):
            m = min(rows, n - a)
            for j in range(p):
                np.subtract(cols[j][a:a + m], shift[j], out=Bt[j, :m])
            np.subtract(cols[p][a:a + m], shift[p], out=Bt[p + 1, :m])
            if weight is not None:  # scale each row of B by sqrt(s) (s < 0 gives NaN)
                Bt[p, :m] = 1.0
                Bt[:, :m] *= np.sqrt(weight[a:a + m])
            if self.use_np:
                b = Bt[:, :m]
                self.M += b @ b.T
            else:
                b_t = self.Bt_t[:, :m]
                self.M_t.addmm_(b_t, b_t.T)

    def result(self) -> np.ndarray:
        return self.M[:self.p + 2, :self.p + 2].copy()


def reshift(M: Tensor, shift_x: Tensor, shift_y: Tensor, new_x: Tensor, new_y: Tensor) -> Tensor:
    """Moments of ``[X - new_x, 1, y - new_y]`` from those of ``[X - shift_x, 1, y - shift_y]`` (exact algebra)."""
    # T = I + e_p d' with d = [shift_x - new_x, 0, shift_y - new_y]: T'MT in O(p^2), not a dense product
    p = shift_x.shape[0]
    d = torch.zeros(p + 2, dtype=F64, device=M.device)
    d[:p] = shift_x - new_x
    d[p + 1] = shift_y - new_y
    row = M[p].clone()
    out = M + torch.outer(d, row)
    out += torch.outer(row, d)
    out += M[p, p] * torch.outer(d, d)
    return out


def streaming_r(data: Batches, keep: Tensor, center: Tensor, scale: Tensor, center_y: Tensor,
                intercept: bool, extra_rows: Tensor | None = None) -> Tensor:
    """R factor (upper triangular, k+1 square) of ``sqrt(s) * [Z, t]`` with
    ``Z = [(X[:, keep] - center) / scale, 1 (if intercept)]`` and ``t = y - center_y``; rows of
    ``extra_rows`` (e.g. a ridge block, k+1 wide) are appended before the last QR."""
    p = data.n_features
    dev = data.device
    k = int(keep.numel()) + int(intercept)
    rows = chunk_rows(k + 1, dev)
    R = torch.zeros(0, k + 1, dtype=F64, device=dev)
    buf = torch.empty(rows, k + 1, dtype=F64, device=dev)
    nk = int(keep.numel())
    all_cols = nk == p
    for X, y, sw in row_chunks(data, rows):
        m = X.shape[0]
        z = buf[:m]
        Xk = X if all_cols else X[:, keep]
        if is_sparse_rows(Xk):  # a chunk of rows (chunk_rows bounds it), densified for its QR
            Xk = Xk.dense_rows()
        torch.sub(Xk, center, out=z[:, :nk])
        z[:, :nk].div_(scale)
        if intercept:
            z[:, nk] = 1.0
        torch.sub(y, center_y, out=z[:, k])
        if sw is not None:
            z.mul_(_sqrt_weight(sw)[:, None])
        R = torch.linalg.qr(torch.cat([R, z]), mode="r").R
    gather = getattr(data, "allgather_rows", None)
    if gather is not None:  # distributed: stack every process's R and factor once more
        R = torch.linalg.qr(gather(R), mode="r").R
    if extra_rows is not None:
        R = torch.linalg.qr(torch.cat([R, extra_rows]), mode="r").R
    if R.shape[0] < k + 1:  # fewer rows than columns: pad to square
        R = torch.cat([R, torch.zeros(k + 1 - R.shape[0], k + 1, dtype=F64, device=dev)])
    return R


def orthonormal_columns(V: Tensor) -> Tensor:
    """Orthonormal basis of the column span of ``V`` (V has full column rank)."""
    if V.shape[1] == 0:
        return V
    return torch.linalg.qr(V).Q


def column_scales(data: Batches, centered: bool = True) -> tuple[Tensor, Tensor]:
    """One pass: weighted column means and standard deviations (``centered=False``: zero means and
    root mean squares), in float64; a zero scale (constant column) is returned as 1."""
    p, dev = data.n_features, data.device
    full = data.full_batch()
    if full is not None and is_sparse_rows(full.X):
        return _sparse_column_scales(data, full, centered)
    shift, first = torch.zeros(p, dtype=F64, device=dev), True
    s1 = torch.zeros(p, dtype=F64, device=dev)
    s2 = torch.zeros(p, dtype=F64, device=dev)
    sw = torch.zeros((), dtype=F64, device=dev)
    with one_torch_thread():  # small ops per chunk: see run_parts
        for X, _, w in row_chunks(data, chunk_rows(p + 1)):
            if X.shape[0] == 0:
                continue
            if first and centered:
                shift, first = X.to(F64).mean(0), False
            xc = X.to(F64) - shift
            if w is None:
                s1 += xc.sum(0)
                s2 += (xc * xc).sum(0)
                sw += X.shape[0]
            else:
                w = w.to(F64)
                s1 += w @ xc
                s2 += w @ (xc * xc)
                sw += w.sum()
    local_sw = sw.clamp_min(1e-300)
    local_mean = shift + s1 / local_sw
    local_ss = (s2 - s1 * s1 / local_sw).clamp_min(0.0)
    total = data.allreduce(torch.cat([sw[None], sw * local_mean]))
    total_sw = total[0].clamp_min(1e-300)
    mean = total[1:] / total_sw if centered else torch.zeros(p, dtype=F64, device=dev)
    # parallel (Chan et al.) combination: exact, no large-mean cancellation
    ss = data.allreduce(local_ss + sw * (local_mean - mean) ** 2)
    scale = (ss / total_sw).sqrt()
    return mean, torch.where(scale > 0, scale, torch.ones_like(scale))


def _sparse_column_scales(data: Batches, full, centered: bool) -> tuple[Tensor, Tensor]:
    """:func:`column_scales` of sparse rows from raw sums (no centred copy of X)."""
    X, w = full.X.to(F64), full.weight
    p, dev = X.shape[1], X.device
    if w is None:
        sw = torch.tensor([float(X.shape[0])], dtype=F64, device=dev)
        s1, s2 = X.sum(0), X.square_sums()
    else:
        w = w.to(F64)
        sw, s1, s2 = w.sum()[None], w @ X, X.square_sums(w)
    tot = data.allreduce(torch.cat([sw, s1, s2]))
    total_sw = tot[0].clamp_min(1e-300)
    m1, m2 = tot[1:p + 1] / total_sw, tot[p + 1:] / total_sw
    mean = m1 if centered else torch.zeros(p, dtype=F64, device=dev)
    scale = (m2 - 2 * mean * m1 + mean * mean).clamp_min(0.0).sqrt()
    return mean, torch.where(scale > 0, scale, torch.ones_like(scale))
