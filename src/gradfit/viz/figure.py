"""What every picture shares: a figure on its own canvas, the colours, atomic saving, the row sample."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from gradfit.data.atomic import atomic_path
from gradfit.data.batches import Batches
from gradfit.numerics.passes import numpy_chunks

MAX_PLOT_ROWS = 5000  # rows drawn at most: a uniform sample of larger data


def new_figure(nrows: int = 1, ncols: int = 1, figsize=(6.5, 4.5), dpi: int = 100, squeeze: bool = True):
    """A figure on its own Agg canvas: no pyplot, no global backend switch, safe in notebooks and threads."""
    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, squeeze=squeeze)


COLORS = {"seed": "#d62728", "descent": "#2ca02c", "optimum": "#111111", "data": "#1f77b4", "l1": "#9467bd",
          "l2": "#ff7f0e"}


def save(fig, path: str | os.PathLike | None, dpi: int = 110):
    """Write ``fig`` atomically (format from the extension); with ``path`` None return the Figure."""
    if path is None:
        return fig
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight")
    return path


def sample_rows(data: Batches, max_rows: int = MAX_PLOT_ROWS, seed: int = 0):
    """A uniform random sample of at most ``max_rows`` rows (X, y) in one pass (all rows when fewer)."""
    rng = np.random.default_rng(seed)
    keep_X, keep_y, keep_k = None, None, None
    for X, y, _ in numpy_chunks(data):
        k = rng.random(len(y))
        if keep_X is None:
            keep_X, keep_y, keep_k = X, y, k
        else:
            keep_X, keep_y, keep_k = np.vstack([keep_X, X]), np.concatenate([keep_y, y]), np.concatenate([keep_k, k])
        if len(keep_y) > max_rows:
            idx = np.argpartition(keep_k, max_rows)[:max_rows]
            keep_X, keep_y, keep_k = keep_X[idx], keep_y[idx], keep_k[idx]
    if data.distributed:  # a distributed source: every process's share
        p = data.n_features
        X = np.empty((0, p)) if keep_X is None else keep_X
        y = np.empty(0) if keep_y is None else keep_y
        k = np.empty(0) if keep_k is None else keep_k
        X, y, _ = gather_sample(data, (X, y, k), max_rows)
        keep_X, keep_y = X, y
    if keep_X is None or not len(keep_y):
        raise ValueError("the data has no rows to plot")
    return keep_X, keep_y


def gather_sample(data: Batches, parts: tuple, max_rows: int) -> tuple:
    """Every process's sampled rows (``parts``: arrays of equal length, the sampling key last), the
    ``max_rows`` smallest keys kept: a uniform sample of all rows."""
    cols = [np.asarray(a, dtype=np.float64).reshape(len(parts[-1]), -1) for a in parts]
    M = np.hstack(cols + [np.ones((len(parts[-1]), 1))])  # a last column marks real rows (padding is 0)
    allrows = data.allgather_rows(torch.as_tensor(M)).numpy()
    allrows = allrows[allrows[:, -1] > 0]
    key = allrows[:, -2]
    if len(allrows) > max_rows:
        allrows = allrows[np.argsort(key, kind="stable")[:max_rows]]
    out, start = [], 0
    for a, c in zip(parts, cols):
        block = allrows[:, start:start + c.shape[1]]
        out.append(block if np.ndim(a) == 2 else block[:, 0])
        start += c.shape[1]
    return tuple(out)


def line_of(m) -> tuple[np.ndarray, float]:
    """``(w, b)`` of a fitted model (``coef_``, ``intercept_``) or of a ``(w, b)`` pair."""
    if hasattr(m, "coef_"):
        return np.asarray(m.coef_, dtype=np.float64), float(m.intercept_)
    w, b = m
    return np.atleast_1d(np.asarray(w, dtype=np.float64)), float(b)
