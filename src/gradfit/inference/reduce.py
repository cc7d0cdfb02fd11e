"""Summaries of a distributed fit: each process sums its shard, then the sums are all-reduced.

Cross-products of the design are :class:`gradfit.numerics.moments.Moments` (``Moments.allreduce`` moves
every process's sums to one shift). Here: scalars and arrays summed in one collective, a value every
process agrees on, and the residuals' power sums moved to a common shift (exact algebra, so the
result equals the single-process summary up to rounding).
"""
from __future__ import annotations

from math import comb

import numpy as np
import torch

from gradfit.data.batches import Batches


def is_distributed(data: Batches) -> bool:
    return data.distributed


def allreduce(data: Batches, *values):
    """Sum each numpy array or float over every process (one collective); same shapes back."""
    flat = [np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in values]
    packed = torch.as_tensor(np.concatenate([f.ravel() for f in flat]))
    summed = data.allreduce(packed).numpy()
    out, start = [], 0
    for v, f in zip(values, flat):
        part = summed[start:start + f.size].reshape(np.shape(v))
        out.append(float(part) if np.ndim(v) == 0 else part)
        start += f.size
    return out


def common(data: Batches, local: np.ndarray, rows: float) -> np.ndarray:
    """A value every process agrees on: the row-weighted mean of each process's ``local``."""
    total, weight = allreduce(data, np.asarray(local, dtype=np.float64) * rows, float(rows))
    return total / weight if weight else np.zeros_like(total)


def power_sums(data: Batches, sums: list[float], shift: float, n: int) -> tuple[list[float], float]:
    """Power sums ``sum (e - shift)^k``, k = 1..4, moved to a common shift and added over processes."""
    c = float(common(data, np.array([shift]), n)[0])
    d = shift - c  # e - c = (e - shift) + d
    full = [float(n)] + list(sums)  # k = 0..4
    moved = [sum(comb(k, j) * full[j] * d ** (k - j) for j in range(k + 1)) for k in range(1, 5)]
    return allreduce(data, *moved), c


def boundary(data: Batches, first: float, last: float, rows: int) -> float:
    """The Durbin-Watson terms ``(e_first(r+1) - e_last(r))^2`` between consecutive shards."""
    ends = data.allgather_rows(torch.tensor([[first, last, float(rows > 0)]], dtype=torch.float64)).numpy()
    ends = ends[ends[:, 2] > 0]
    return float(np.sum((ends[1:, 0] - ends[:-1, 1]) ** 2))
