"""Weighted moments: the one accumulator of least-squares sums, and one pass that fills it.

:class:`Moments` holds ``M = sum_i s_i b_i b_i'`` for ``b_i = [x_i - c_x, 1, y_i - c_y]`` (s: sample
weights, y may have k columns). From M come the weight sum, the means, the centred or raw cross-
products of ``[X, y]`` -- everything exact least squares, ridge, the statistical summary and
``partial_fit`` need. Rows are shifted by ``c`` (the first chunk's mean) before any product, so the
products never see large means; two accumulators with different shifts are merged by moving one to
the other's shift (:meth:`Moments.shifted`, exact algebra: Chan, Golub and LeVeque's pairwise update
in matrix form), which is also how the processes of a distributed fit agree (:meth:`Moments.allreduce`).

Chunks arrive as rows (:meth:`~Moments.add`: cache-sized float64 buffers, numpy's symmetric rank-k
update for wide ones, torch's matrix product for narrow ones), as columns of a streamed file
(:meth:`~Moments.add_columns`: the compiled kernel of :mod:`gradfit.numerics.kernel` where the install
built it) or as a sparse matrix (:meth:`~Moments.add_sparse`: never densified, shift 0 for X).
:func:`column_scales` is the diagonal alone (means and standard deviations), one O(p) pass.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from gradfit.numerics import kernel
from gradfit.numerics.passes import F64, chunk_rows, is_sparse_rows, one_torch_thread, row_chunks, run_parts
from gradfit.numerics.sparse_gram import add_gram
from gradfit.problem.batches import Batches

SPARSE_SHIFT_ROWS = 4096  # rows whose mean shifts y for a sparse X


def gram_by_numpy(n_cols: int) -> bool:
    """Which library adds a chunk's ``B'B`` on the CPU: numpy's symmetric rank-k update for wide
    buffers, torch's (MKL) matrix product at a :func:`padded_width` for narrow ones (faster there:
    20M x 12 took 0.19 s against OpenBLAS's 0.29 s on a Xeon, about the same on an EPYC)."""
    return n_cols > 32


def padded_width(n_cols: int) -> int:
    """MKL's small-width GEMM is 2-4x faster at widths that are multiples of 12 (measured: 11 columns
    2.5 ms, 12 columns 1.1 ms per chunk), so narrow buffers get zero columns up to one."""
    return -(-n_cols // 12) * 12 if n_cols <= 36 else n_cols


def sqrt_weight(w: Tensor) -> Tensor:
    """``sqrt(s)`` in float64; a negative weight is refused (least squares needs s >= 0)."""
    w = w.to(F64)
    if bool((w < 0).any()):
        raise ValueError("sample weights must be >= 0 for least squares")
    return w.sqrt()


def _f64(a, device) -> Tensor:
    return (torch.from_numpy(np.asarray(a)) if not isinstance(a, Tensor) else a).to(device=device, dtype=F64)


class Moments:
    """Running ``M = sum s b b'``, ``b = [x - shift_x, 1, y - shift_y]`` ((p + 1 + k) square, float64).

    Parameters
    ----------
    p, k : numbers of features and of target columns.
    shift_x, shift_y : the shift; None takes the first chunk's mean.
    device : where M lives (chunks are added on it).
    """

    def __init__(self, p: int, k: int = 1, *, shift_x=None, shift_y=None, device=None, M: Tensor | None = None):
        self.p, self.k, self.q = p, k, p + 1 + k
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.shift_x = None if shift_x is None else _f64(shift_x, self.device).reshape(p)
        self.shift_y = None if shift_y is None else _f64(shift_y, self.device).reshape(k)
        self.use_numpy = self.device.type == "cpu" and gram_by_numpy(self.q)
        if M is None:
            width = self.q if self.use_numpy or self.device.type != "cpu" else padded_width(self.q)
            M = torch.zeros(width, width, dtype=F64, device=self.device)
        self._acc = M  # may be wider than q: the padding stays zero
        self.rows = 0  # rows added (unweighted count)
        self.weighted = False  # whether any chunk came with weights
        self.log_weight = 0.0  # sum of log s over weighted rows (the WLS likelihood's constant)
        self._buf: Tensor | None = None

    # -- what the sums say ----------------------------------------------------------------------
    @property
    def M(self) -> Tensor:
        return self._acc[:self.q, :self.q]

    @property
    def weight(self) -> float:
        return float(self._acc[self.p, self.p])

    def _shifts(self) -> tuple[Tensor, Tensor]:
        z = lambda n: torch.zeros(n, dtype=F64, device=self.device)  # noqa: E731
        return (z(self.p) if self.shift_x is None else self.shift_x, z(self.k) if self.shift_y is None else self.shift_y)

    def sums(self) -> Tensor:
        """``[sum s x, sum s y, sum s]`` (raw, unshifted), for a mean every process agrees on."""
        sx, sy = self._shifts()
        M, p, S = self.M, self.p, self._acc[self.p, self.p]
        return torch.cat([M[p, :p] + S * sx, M[p, p + 1:] + S * sy, S[None]])

    def means(self) -> tuple[Tensor, Tensor]:
        """Weighted means of x and y (the shift when there is no weight)."""
        sx, sy = self._shifts()
        S = self.weight
        if not S > 0:
            return sx, sy
        p = self.p
        return sx + self.M[p, :p] / S, sy + self.M[p, p + 1:] / S

    def shifted(self, new_x: Tensor | float, new_y: Tensor | float) -> "Moments":
        """The same sums around another shift (exact algebra, O(q^2)): ``T'MT`` with ``T = I + e_p d'``,
        ``d = [shift_x - new_x, 0, shift_y - new_y]``."""
        sx, sy = self._shifts()
        new_x, new_y = torch.as_tensor(new_x, dtype=F64, device=self.device), torch.as_tensor(new_y, dtype=F64,
                                                                                              device=self.device)
        p, M = self.p, self.M
        d = torch.zeros(self.q, dtype=F64, device=self.device)
        d[:p] = sx - new_x
        d[p + 1:] = sy - new_y
        row = M[p].clone()
        out = M + torch.outer(d, row)
        out += torch.outer(row, d)
        out += M[p, p] * torch.outer(d, d)
        moved = Moments(p, self.k, shift_x=new_x.expand(p), shift_y=new_y.expand(self.k), device=self.device, M=out)
        moved.rows, moved.weighted, moved.log_weight = self.rows, self.weighted, self.log_weight
        return moved

    def centered(self) -> "Moments":
        """Around the weighted means: ``M[:p, :p] / S`` is then the weighted covariance of x."""
        return self.shifted(*self.means())

    def about_zero(self) -> "Moments":
        """Unshifted: raw cross-products (a fit without intercept)."""
        return self.shifted(0.0, 0.0)

    def gram(self, intercept: bool, shift_x: Tensor | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(sum s z z', shift)`` as float64 numpy arrays for the design ``z = [x - shift, 1]`` (shift: the
        weighted means, or ``shift_x``), or ``z = x`` unshifted without ``intercept``."""
        if not intercept:
            m = self.about_zero()
        else:
            m = self.centered() if shift_x is None else self.shifted(shift_x, self._shifts()[1])
        z = self.p + int(intercept)
        return m.M[:z, :z].cpu().numpy(), m.shift_x.cpu().numpy()

    def merge(self, other: "Moments") -> "Moments":
        """Add ``other``'s rows to these sums (moved to this shift first); returns self."""
        if other.shift_x is None and other.rows == 0:
            return self
        if self.shift_x is None:
            self.shift_x, self.shift_y = other._shifts()
        self.M.add_(other.shifted(self.shift_x, self.shift_y).M if not self._same_shift(other) else other.M)
        self.rows += other.rows
        self.weighted |= other.weighted
        self.log_weight += other.log_weight
        return self

    def _same_shift(self, other: "Moments") -> bool:
        ox, oy = other._shifts()
        return bool(torch.equal(ox, self.shift_x) and torch.equal(oy, self.shift_y))

    def allreduce(self, data: Batches) -> "Moments":
        """The sums over every process of a distributed source (this process's rows alone otherwise):
        each process moves its sums to the common weighted mean, then they are added."""
        if not data.distributed:
            return self
        raw = data.allreduce(self.sums())
        S = float(raw[-1])
        p = self.p
        mx, my = (raw[:p] / S, raw[p:-1] / S) if S > 0 else (raw[:p] * 0, raw[p:-1] * 0)
        local = self.shifted(mx, my)
        extra = torch.tensor([float(self.rows), float(self.weighted), self.log_weight], dtype=F64,
                             device=self.device)
        total = data.allreduce(torch.cat([local.M.reshape(-1), extra]))
        out = Moments(p, self.k, shift_x=mx, shift_y=my, device=self.device,
                      M=total[:-3].reshape(self.q, self.q).clone())
        out.rows, out.weighted, out.log_weight = int(round(float(total[-3]))), bool(total[-2] > 0), float(total[-1])
        return out

    # -- adding rows ----------------------------------------------------------------------------
    def _count(self, m: int, w) -> None:
        self.rows += m
        if w is not None:
            self.weighted = True
            with np.errstate(divide="ignore", invalid="ignore"):
                self.log_weight += float(np.log(np.asarray(w.detach().cpu() if isinstance(w, Tensor) else w,
                                                           dtype=np.float64)).sum())

    def add(self, X, Y, w=None) -> "Moments":
        """Add a chunk of rows: ``X`` (m, p), ``Y`` (m,) or (m, k), weights (m,) or None (tensors or
        numpy arrays, any float dtype; the buffer is float64)."""
        m, p, dev = X.shape[0], self.p, self.device
        if m == 0:
            return self
        X, Y = _f64(X, dev) if not isinstance(X, Tensor) else X, _f64(Y, dev) if not isinstance(Y, Tensor) else Y
        if self.shift_x is None:
            self.shift_x, self.shift_y = X.to(F64).mean(0), Y.to(F64).reshape(m, self.k).mean(0)
        width = self._acc.shape[0]
        if self._buf is None or self._buf.shape[0] < m:
            self._buf = torch.zeros(m, width, dtype=F64, device=dev)
            self._buf[:, p] = 1.0
        b = self._buf[:m]
        ys = slice(p + 1, p + 1 + self.k)
        if self.use_numpy:
            bn = b.numpy()
            np.subtract(X.numpy(), self.shift_x.numpy(), out=bn[:, :p])
            np.subtract(Y.numpy().reshape(m, self.k), self.shift_y.numpy(), out=bn[:, ys])
        else:
            torch.sub(X, self.shift_x, out=b[:, :p])
            # Y - shift with a float32 Y is formed in float64 first (float32 would lose 7 digits)
            torch.sub(Y.to(F64).reshape(m, self.k), self.shift_y, out=b[:, ys])
        if w is not None:
            w = _f64(w, dev) if not isinstance(w, Tensor) else w
            b[:, p] = 1.0
            b.mul_(sqrt_weight(w)[:, None])
        if self.use_numpy:
            acc = self._acc.numpy()
            acc += bn.T @ bn  # numpy's b.T @ b is a symmetric rank-k update: half the flops
        else:
            self._acc.addmm_(b.T, b)
        self._count(m, w)
        return self

    def add_columns(self, cols: Sequence[np.ndarray], weight: np.ndarray | None = None) -> "Moments":
        """Add a block given as float64 columns ``[x_1, ..., x_p, y]`` (k = 1): the compiled kernel
        where built, else each column shifted into a row of a cache-sized ``B'``. A NaN, an inf or a
        negative weight makes the sums non-finite (no check here: the caller validates)."""
        p, n = self.p, len(cols[0])
        if n == 0:
            return self
        if self.shift_x is None:
            first = chunk_rows(self.q)
            shift = np.array([c[:first].mean() for c in cols[:p + 1]])
            self.shift_x, self.shift_y = _f64(shift[:p], self.device), _f64(shift[p:], self.device)
        shift = np.concatenate([self.shift_x.cpu().numpy(), self.shift_y.cpu().numpy()])
        if kernel.available(self.q):
            self.M.add_(torch.from_numpy(kernel.moment_block(cols, shift, weight)).to(self.device))
        else:
            self._add_columns_numpy(cols, shift, weight)
        self._count(n, weight)
        return self

    def _add_columns_numpy(self, cols, shift: np.ndarray, weight: np.ndarray | None) -> None:
        p, width, n = self.p, self._acc.shape[0], len(cols[0])
        rows = chunk_rows(self.q)
        Bt_t = torch.zeros(width, min(rows, n), dtype=F64)  # rows past p + 1 stay zero
        Bt = Bt_t.numpy()
        Bt[p] = 1.0
        acc = self._acc.numpy()
        for a in range(0, n, rows):
            m = min(rows, n - a)
            for j in range(p):
                np.subtract(cols[j][a:a + m], shift[j], out=Bt[j, :m])
            np.subtract(cols[p][a:a + m], shift[p], out=Bt[p + 1, :m])
            if weight is not None:  # scale each row of B by sqrt(s) (s < 0 gives NaN)
                Bt[p, :m] = 1.0
                Bt[:, :m] *= np.sqrt(weight[a:a + m])
            if self.use_numpy:
                acc += Bt[:, :m] @ Bt[:, :m].T
            else:
                self._acc.addmm_(Bt_t[:, :m], Bt_t[:, :m].T)

    def add_sparse(self, csr, Y: np.ndarray, w: np.ndarray | None = None) -> "Moments":
        """Add a scipy.sparse block of rows: ``X'SX`` from sparse products (never densified, X unshifted:
        a shift would fill the zeros), the other entries from matrix-vector products."""
        import scipy.sparse as sp
        csr = sp.csr_matrix(csr, dtype=np.float64)
        n, p, k = csr.shape[0], self.p, self.k
        Y = np.asarray(Y, dtype=np.float64).reshape(n, k)
        if w is not None and bool((np.asarray(w) < 0).any()):
            raise ValueError("sample weights must be >= 0 for least squares")
        sy = Y[:SPARSE_SHIFT_ROWS].mean(0) if n else np.zeros(k)
        M = np.zeros((self.q, self.q))
        if p:
            add_gram(M[:p, :p], csr, w)  # a view: no second p x p array
        sw = np.ones(n) if w is None else np.asarray(w, dtype=np.float64)
        T = Y - sy
        ST = T * sw[:, None]
        M[:p, p] = csr.T @ sw
        M[:p, p + 1:] = np.asarray(csr.T @ ST).reshape(p, k)
        M[p, p] = sw.sum()
        M[p, p + 1:] = ST.sum(0)
        M[p + 1:, p + 1:] = ST.T @ T
        M[p, :p], M[p + 1:, :p], M[p + 1:, p] = M[:p, p], M[:p, p + 1:].T, M[p, p + 1:]
        block = Moments(p, k, shift_x=np.zeros(p), shift_y=sy, device=self.device,
                        M=torch.from_numpy(M).to(self.device))
        block._count(n, w)
        return self.merge(block)


def moments(data: Batches) -> Moments:
    """One pass over ``data``: its :class:`Moments` (``k = 1``), this process's rows only.

    The shift is the first chunk's mean (close to the column means, so nothing cancels). With many
    columns on the CPU a chunk goes through numpy, whose ``b.T @ b`` is a symmetric rank-k update;
    mixing torch's and numpy's thread pools in one loop makes both spin, so one library does a
    chunk. In-memory rows are split over threads (:func:`gradfit.numerics.passes.run_parts`).
    """
    p, dev = data.n_features, data.device
    rows = chunk_rows(p + 2, dev)
    full = data.full_batch()
    if full is not None and is_sparse_rows(full.X):
        w = None if full.weight is None else full.weight.detach().cpu().to(F64).numpy()
        return Moments(p, device=dev).add_sparse(full.X.csr, full.y.detach().cpu().to(F64).numpy(), w)
    columns = data.unchecked_columns() if full is None and dev.type == "cpu" else None
    if columns is not None:  # a streamed file's columns: no (n, p) matrix in between
        sums = Moments(p, device=dev)
        with np.errstate(invalid="ignore", over="ignore"), one_torch_thread():  # a NaN/inf shows in M
            for cols in columns:
                sums.add_columns(cols[:p + 1], cols[p + 1] if len(cols) > p + 1 else None)
        return sums
    shift = {}
    if full is not None and len(full):
        shift = {"shift_x": full.X[:rows].to(F64).mean(0), "shift_y": full.y[:rows].to(F64).mean()}
    parts = run_parts(lambda chunks: _add_all(Moments(p, device=dev, **shift), chunks), data, rows,
                      parallel=not (dev.type == "cpu" and gram_by_numpy(p + 2)) and bool(shift))
    total = parts[0]
    for part in parts[1:]:
        total.merge(part)
    return total


def _add_all(sums: Moments, chunks) -> Moments:
    for X, y, w in chunks:
        sums.add(X, y, w)
    return sums


def column_scales(data: Batches, centered: bool = True) -> tuple[Tensor, Tensor]:
    """One pass: weighted column means and standard deviations (``centered=False``: zero means and
    root mean squares), in float64; a zero scale (constant column) is returned as 1. The diagonal
    of :class:`Moments` alone (O(p) a row), combined over processes the same way."""
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
