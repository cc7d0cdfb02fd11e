"""Regression diagnostics, the pictures R's ``plot(lm)`` draws, for any fitted model; each function returns
a matplotlib Figure and draws into ``ax`` when given one.

- :func:`plot_residuals_fitted`: residuals against fitted values with a lowess smoother;
- :func:`plot_qq`: normal Q-Q plot of the standardized residuals;
- :func:`plot_scale_location`: sqrt(|standardized residual|) against fitted, with a smoother;
- :func:`plot_leverage`: standardized residuals against leverage, Cook's distance contours at 0.5 and 1;
- :func:`plot_partial_residuals`: per feature, ``e + w_j x_j`` against ``x_j`` (component plus residual).

Standardized residuals are ``sqrt(s_i) e_i / (sigma sqrt(1 - h_i))``, with the leverage
``h_i = s_i z_i' (Z'SZ)^-1 z_i`` from all rows and ``sigma^2 = sum s e^2 / df_resid`` for the squared
loss (R's ``rstandard``); other losses use the robust scale ``1.4826 MAD(e)``. The points are a uniform
sample of at most ``max_rows`` rows (all rows when fewer), drawn in the same pass that sums ``Z'SZ``; every
picture says how many rows it shows.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from matplotlib.ticker import MaxNLocator
from scipy import special

from gradfit.data.arrays import as_batches
from gradfit.data.batches import Batches
from gradfit.inference import reduce
from gradfit.numerics.moments import Moments
from gradfit.numerics.passes import numpy_chunks
from gradfit.viz.figure import COLORS, MAX_PLOT_ROWS, gather_sample, new_figure, sample_rows
from gradfit.viz.plots import plot_fit

KINDS = ("residuals", "qq", "scale_location", "leverage", "partial")


@dataclass
class DiagnosticSample:
    """Sampled rows of one fit and what the pictures need about them."""

    X: np.ndarray
    y: np.ndarray
    fitted: np.ndarray
    resid: np.ndarray
    standardized: np.ndarray
    leverage: np.ndarray
    cooks: np.ndarray
    coef: np.ndarray
    names: list[str]
    n_rows: int
    n_params: int
    scale_note: str

    @property
    def caption(self) -> str:
        n = len(self.y)
        return f"all {n:,} rows" if n >= self.n_rows else f"{n:,} rows sampled of {self.n_rows:,}"


def diagnostic_sample(model, data: Batches, max_rows: int = MAX_PLOT_ROWS, seed: int = 0,
                      intercept: bool | None = None) -> DiagnosticSample:
    """One pass: ``Z'SZ`` over all rows and a uniform sample of ``max_rows`` rows (a distributed source
    sums ``Z'SZ`` over every process and gathers each process's share of the sample)."""
    if intercept is None:
        intercept = bool(getattr(model, "fit_intercept", True))
    rng = np.random.default_rng(seed)
    w = np.asarray(model.coef_, dtype=np.float64)
    b = float(model.intercept_) if intercept else 0.0
    sums = Moments(data.n_features)
    keep, n, ss = None, 0, 0.0
    for X, y, s in numpy_chunks(data):
        sums.add(X, y, s)
        s = np.ones(len(y)) if s is None else s
        e = y - X @ w - b
        ss += float(s @ (e * e))
        n += len(y)
        block = (X, y, s, rng.random(len(y)))
        keep = block if keep is None else tuple(np.concatenate([a, c]) for a, c in zip(keep, block))
        if len(keep[1]) > max_rows:
            idx = np.argpartition(keep[3], max_rows)[:max_rows]
            keep = tuple(a[idx] for a in keep)
    if keep is None or n == 0:
        raise ValueError("the data has no rows to plot")
    B, shift = sums.allreduce(data).gram(intercept)  # Z'SZ of every process
    if data.distributed:  # sums of every process; its share of the sample
        ss, n = reduce.allreduce(data, ss, float(n))
        n = int(round(n))
        keep = gather_sample(data, keep, max_rows)
    X, y, s, _ = keep
    k = B.shape[0]
    if not (np.isfinite(B).all() and math.isfinite(ss)):  # LAPACK's SVD can loop forever on inf/nan
        raise ValueError("the data's values are too large for the diagnostic plots (their squares overflow "
                         "float64); rescale the columns (for example divide by 1e100) to draw them")
    Binv = np.linalg.pinv(B)
    Z = _z(X, shift, intercept)
    h = np.clip(s * np.einsum("ij,jk,ik->i", Z, Binv, Z), 0, 1 - 1e-12)
    fitted = X @ w + b
    e = y - fitted
    we = np.sqrt(s) * e
    if model.loss.get("name", "squared") == "squared":
        sigma = math.sqrt(ss / max(n - k, 1))
        note = ""
    else:
        sigma = 1.4826 * float(np.median(np.abs(we - np.median(we)))) or 1.0
        note = "robust scale 1.4826 MAD"
    r = we / (sigma * np.sqrt(1 - h))
    cooks = r * r * h / (k * (1 - h))
    return DiagnosticSample(X, y, fitted, e, r, h, cooks, w, list(model.feature_names_in_), n, k, note)


def _z(X: np.ndarray, shift: np.ndarray, intercept: bool) -> np.ndarray:
    Z = X - shift
    return np.hstack([Z, np.ones((len(Z), 1))]) if intercept else Z


def lowess(x: np.ndarray, y: np.ndarray, frac: float = 2 / 3, points: int = 80) -> tuple[np.ndarray, np.ndarray]:
    """A locally linear smoother with tricube weights over the nearest ``frac`` of the points, on a grid."""
    order = np.argsort(x)
    x, y = x[order], y[order]
    levels = np.unique(x)
    if len(levels) <= 10:  # a dummy or a count: the mean at each value, not a curve between them
        return levels, np.array([y[x == v].mean() for v in levels])
    k = max(3, int(math.ceil(frac * len(x))))
    grid = np.linspace(x[0], x[-1], points)
    out = np.empty(points)
    for i, g in enumerate(grid):
        d = np.abs(x - g)
        near = np.argpartition(d, k - 1)[:k]
        dmax = d[near].max() * 1.000001 or 1.0
        wt = (1 - (d[near] / dmax) ** 3) ** 3
        xs, ys = x[near], y[near]
        sw = wt.sum()
        mx, my = wt @ xs / sw, wt @ ys / sw
        vx = wt @ (xs - mx) ** 2
        slope = (wt @ ((xs - mx) * (ys - my)) / vx) if vx > 0 else 0.0
        out[i] = my + slope * (g - mx)
    return grid, out


def _axes(ax, figsize=(6.5, 4.5)):
    if ax is not None:
        return ax.figure, ax
    return new_figure(figsize=figsize)


def _finish(ax, d: DiagnosticSample, title: str, xlabel: str, ylabel: str):
    ax.set_title(f"{title}\n({d.caption})", fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)


def plot_residuals_fitted(d: DiagnosticSample, ax=None):
    fig, ax = _axes(ax)
    ax.scatter(d.fitted, d.resid, s=7, alpha=0.4, color=COLORS["data"])
    ax.axhline(0, color=COLORS["optimum"], lw=0.8, ls=":")
    ax.plot(*lowess(d.fitted, d.resid), color="#d62728", lw=1.8, label="lowess")
    ax.legend(fontsize=8, loc="best")
    _finish(ax, d, "Residuals vs fitted", "fitted value", "residual")
    return fig


def plot_qq(d: DiagnosticSample, ax=None):
    fig, ax = _axes(ax)
    r = np.sort(d.standardized)
    n = len(r)
    a = 3 / 8 if n <= 10 else 0.5  # R's ppoints
    theo = special.ndtri((np.arange(1, n + 1) - a) / (n + 1 - 2 * a))
    ax.scatter(theo, r, s=7, alpha=0.5, color=COLORS["data"])
    q1, q3 = np.percentile(r, [25, 75])
    t1, t3 = special.ndtri(0.25), special.ndtri(0.75)
    slope = (q3 - q1) / (t3 - t1)
    xs = np.array([theo[0], theo[-1]])
    ax.plot(xs, q1 + slope * (xs - t1), color=COLORS["optimum"], lw=1, ls="--", label="through the quartiles")
    ax.legend(fontsize=8, loc="best")
    _finish(ax, d, "Normal Q-Q", "theoretical quantile",
            "standardized residual" + (f" ({d.scale_note})" if d.scale_note else ""))
    return fig


def plot_scale_location(d: DiagnosticSample, ax=None):
    fig, ax = _axes(ax)
    v = np.sqrt(np.abs(d.standardized))
    ax.scatter(d.fitted, v, s=7, alpha=0.4, color=COLORS["data"])
    ax.plot(*lowess(d.fitted, v), color="#d62728", lw=1.8, label="lowess")
    ax.legend(fontsize=8, loc="best")
    _finish(ax, d, "Scale-location", "fitted value", "sqrt(|standardized residual|)")
    return fig


def plot_leverage(d: DiagnosticSample, ax=None):
    fig, ax = _axes(ax)
    ax.scatter(d.leverage, d.standardized, s=7, alpha=0.4, color=COLORS["data"])
    ax.axhline(0, color=COLORS["optimum"], lw=0.8, ls=":")
    hi = max(float(d.leverage.max()) * 1.05, 1e-3)
    h = np.linspace(hi / 200, hi, 200)
    lo_r, hi_r = float(d.standardized.min()), float(d.standardized.max())
    pad = 0.1 * (hi_r - lo_r + 1)
    reach = max(abs(lo_r), abs(hi_r)) + pad
    for level, style in ((0.5, "--"), (1.0, "-.")):
        r = np.sqrt(level * d.n_params * (1 - h) / h)
        where = "" if r.min() <= reach else " (beyond these leverages)"
        for sign in (1, -1):
            ax.plot(h, sign * r, color="#d62728", lw=1, ls=style,
                    label=f"Cook's distance {level:g}{where}" if sign > 0 else None)
    ax.set_ylim(lo_r - pad, hi_r + pad)
    ax.set_xlim(0, hi)
    worst = np.argsort(d.cooks)[-3:]
    for rank, i in enumerate(worst):
        ax.annotate(f"D={d.cooks[i]:.2g}", (d.leverage[i], d.standardized[i]), fontsize=7,
                    xytext=(4, 4 + 9 * rank), textcoords="offset points", color="#57606a")
    ax.legend(fontsize=8, loc="best")
    _finish(ax, d, "Residuals vs leverage", "leverage", "standardized residual")
    return fig


PARTIAL_MAX = 12


def plot_partial_residuals(d: DiagnosticSample, ax=None, features: list[int] | None = None):
    """Component plus residual per feature (at most 12 panels; ``ax``: one feature, the first given)."""
    idx = list(range(len(d.names))) if features is None else list(features)
    shown = idx[:PARTIAL_MAX] if ax is None else idx[:1]
    if ax is None:
        cols = min(3, len(shown))
        rows = math.ceil(len(shown) / cols)
        fig, axes = new_figure(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
        axes = list(axes.ravel())
        for extra in axes[len(shown):]:
            extra.set_visible(False)
    else:
        fig, axes = ax.figure, [ax]
    for a, j in zip(axes, shown):
        x = d.X[:, j]
        comp = d.resid + d.coef[j] * x
        a.scatter(x, comp, s=6, alpha=0.4, color=COLORS["data"])
        xs = np.array([x.min(), x.max()])
        a.plot(xs, d.coef[j] * xs, color=COLORS["optimum"], lw=1.2, ls="--", label=f"slope {d.coef[j]:.4g}")
        gx, gy = lowess(x, comp)
        few = len(gx) <= 10
        a.plot(gx, gy, color="#d62728", lw=1.5, marker="o" if few else None, label="mean" if few else "lowess")
        a.set_xlabel(d.names[j])
        a.xaxis.set_major_locator(MaxNLocator(5))
        a.ticklabel_format(axis="both", style="sci", scilimits=(-3, 4), useOffset=False)
        a.set_ylabel("component + residual")
        a.grid(True, alpha=0.3)
        a.legend(fontsize=7, loc="best")
    more = f"; {len(shown)} of {len(idx)} features" if len(shown) < len(idx) else ""
    title = f"Partial residuals ({d.caption}{more})"
    if ax is None:
        fig.suptitle(title, fontsize=11)
        fig.tight_layout()
    else:
        ax.set_title(title, fontsize=10)
    return fig


def plot_diagnostics(d: DiagnosticSample, kind: str = "all", ax=None):
    """One kind (``residuals``, ``qq``, ``scale_location``, ``leverage``, ``partial``) or ``all``:
    the four of R's ``plot(lm)`` on a 2 x 2 grid."""
    if kind == "all":
        if ax is not None:
            raise ValueError("kind='all' draws four panels; give ax with one kind")
        fig, axes = new_figure(2, 2, figsize=(11, 8.5))
        for a, k in zip(axes.ravel(), KINDS[:4]):
            DRAW[k](d, ax=a)
        fig.tight_layout()
        return fig
    if kind not in DRAW:
        raise ValueError(f"unknown diagnostic kind {kind!r}; choose all, {', '.join(KINDS)}")
    return DRAW[kind](d, ax=ax)


DRAW = {"residuals": plot_residuals_fitted, "qq": plot_qq, "scale_location": plot_scale_location,
        "leverage": plot_leverage, "partial": plot_partial_residuals}


def plot_model(model, X=None, y=None, *, kind: str = "all", ax=None, sample_weight=None,
               max_rows: int = MAX_PLOT_ROWS):
    """:meth:`gradfit.model.LinearModel.plot`: ``loss`` (the loss per epoch, no data needed), ``fit``
    (the data and the line, or predicted vs actual) or a diagnostic ``kind`` of the model on ``X, y`` (a Batches source, arrays, or a DataFrame that a
    formula model encodes, target included). Returns the Figure."""
    if kind == "loss":
        return _loss_figure(model, ax)
    if kind not in ("fit", "all", *KINDS):
        raise ValueError(f"unknown plot kind {kind!r}; choose all, {', '.join(KINDS)}, fit or loss")
    if X is None:
        raise ValueError(f"plot(kind={kind!r}) draws the model on data: pass X, y (or a Batches source)")
    if isinstance(X, Batches):
        data = X
    else:
        design = getattr(model, "formula_", None)
        if y is None and design is not None and design.target in getattr(X, "columns", []):
            y = np.asarray(X[design.target], dtype=np.float64)
        if y is None:
            raise ValueError("plot(X, y): y is required unless X is a Batches source")
        data = as_batches(model._design(X), y, sample_weight)
    if kind == "fit":
        Xs, ys = sample_rows(data, max_rows)
        return plot_fit(None, Xs, ys, {"fit": model}, feature=model.feature_names_in_[0],
                        target=model.target_name or "y", ax=ax)
    return plot_diagnostics(diagnostic_sample(model, data, max_rows), kind, ax)


def _loss_figure(model, ax=None):
    h = model.history_
    if h is None or len(h.loss) < 2:
        raise ValueError(f"the {model.solver} fit kept no loss per epoch to plot (closed-form or loaded "
                         "without history)")
    fig, ax = _axes(ax)
    ax.plot(np.arange(len(h.loss)), h.loss, color=COLORS["descent"], lw=1.8, label=model.solver)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (log scale)")
    ax.set_title("Loss per epoch")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return fig
