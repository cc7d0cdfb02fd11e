"""Pictures of a fit, headless (matplotlib's Agg backend), every file written atomically.

- :func:`plot_loss_curve`: the loss per epoch on a log scale, the optimum's loss as a line;
- :func:`plot_fit`: the data and the fitted line (one feature) or predicted vs actual (several);
- :func:`plot_residuals`: residuals vs fitted and their histogram;
- :func:`plot_lr_comparison`: loss curves of SGD at several learning rates, divergent ones until they blow up;
- :func:`plot_l1_vs_l2`: the L1 and the L2 line on data with outliers;
- regression diagnostics (R's ``plot(lm)``): :mod:`gradfit.viz.diagnostics`.

Each writes a file and returns its path, or, with ``path=None``, returns the matplotlib Figure (and
the one-panel pictures draw into ``ax=`` when given one), for notebooks.
- the loss surface with the optimizer's path and the animation: :mod:`gradfit.viz.surface`.

:func:`write_plots` makes the set for one fitted model (``gradfit plot``, ``gradfit fit --plot``).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FormatStrFormatter

from gradfit.data.atomic import atomic_path
from gradfit.data.batches import Batches

MAX_PLOT_ROWS = 5000
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
    full = data.full_batch()
    rng = np.random.default_rng(seed)
    keep_X, keep_y, keep_k = None, None, None
    for b in ((full,) if full is not None else data):
        X, y = b.X.detach().cpu().double().numpy(), b.y.detach().cpu().double().numpy()
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
    import torch
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


def _losses(h: Any) -> np.ndarray:
    return np.asarray(h.loss if hasattr(h, "loss") else h, dtype=np.float64)


def plot_loss_curve(path, curves: dict[str, Any], optimum_loss: float | None = None,
                    title: str = "Loss per epoch", colors: dict[str, str] | None = None) -> Path:
    """``curves``: label -> History or list of losses. With ``optimum_loss`` a second panel shows
    the excess ``(loss - optimum) / |optimum|``, which is what a log scale makes readable."""
    two = optimum_loss is not None and np.isfinite(optimum_loss)
    fig, axes = new_figure(1, 2 if two else 1, figsize=(11 if two else 6.5, 4.2), squeeze=False)
    ax = axes[0, 0]
    for i, (label, h) in enumerate(curves.items()):
        v = _losses(h)
        c = (colors or {}).get(label)
        ax.plot(np.arange(len(v)), v, label=label, color=c, lw=1.8)
        if two:
            gap = (v - optimum_loss) / max(abs(optimum_loss), 1e-300)
            axes[0, 1].plot(np.arange(len(v)), np.clip(gap, 1e-16, None), label=label, color=c, lw=1.8)
    if two:
        ax.axhline(optimum_loss, color=COLORS["optimum"], ls="--", lw=1.2, label=f"optimum {optimum_loss:.6g}")
        a2 = axes[0, 1]
        a2.set_yscale("log")
        _epoch_axis(a2, max(len(_losses(h)) for h in curves.values()))
        a2.set_ylabel("(loss - optimum) / optimum")
        a2.set_title("Distance to the optimum")
        a2.grid(True, which="both", alpha=0.3)
    ax.set_yscale("log")
    _epoch_axis(ax, max(len(_losses(h)) for h in curves.values()))
    ax.yaxis.set_major_formatter(FormatStrFormatter("%.3g"))
    ax.yaxis.set_minor_formatter(FormatStrFormatter("%.2g"))
    ax.set_ylabel("loss (log scale)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, path)


def _epoch_axis(ax, n: int) -> None:
    """Linear for short runs, else linear up to 10 and logarithmic after (so 500 and 5000 epochs fit)."""
    if n > 100:
        ax.set_xscale("symlog", linthresh=10, linscale=0.5)
    ax.set_xlim(0, max(n - 1, 1))
    ax.set_xlabel("epoch" + (" (log scale after 10)" if n > 100 else ""))


def plot_fit(path, X: np.ndarray, y: np.ndarray, lines: dict[str, Any], feature: str = "x",
             target: str = "y", title: str | None = None, colors: dict[str, str] | None = None, ax=None):
    """Data and the fitted line(s) for one feature; predicted vs actual for several.

    ``lines``: label -> fitted model (``coef_``, ``intercept_``) or ``(w, b)`` pairs. Written to
    ``path`` (returns the path), or with ``path`` None returned as a Figure (drawn into ``ax`` if given)."""
    X = np.asarray(X, dtype=np.float64).reshape(len(y), -1)
    fig, ax = (ax.figure, ax) if ax is not None else new_figure()
    if X.shape[1] == 1:
        ax.scatter(X[:, 0], y, s=6, alpha=0.35, color=COLORS["data"], label=f"data ({len(y)} rows)")
        xs = np.linspace(X[:, 0].min(), X[:, 0].max(), 2)
        for label, m in lines.items():
            w, b = _wb(m)
            ax.plot(xs, w[0] * xs + b, lw=2.2, color=(colors or {}).get(label),
                    label=f"{label}: y = {w[0]:.4g} x + {b:.4g}")
        ax.set_xlabel(feature)
        ax.set_ylabel(target)
        ax.set_title(title or "Data and fitted line")
    else:
        lo, hi = float(np.min(y)), float(np.max(y))
        for label, m in lines.items():
            w, b = _wb(m)
            ax.scatter(y, X @ w + b, s=6, alpha=0.35, color=(colors or {}).get(label), label=label)
        ax.plot([lo, hi], [lo, hi], color=COLORS["optimum"], lw=1, ls="--", label="predicted = actual")
        ax.set_xlabel(f"actual {target}")
        ax.set_ylabel(f"predicted {target}")
        ax.set_title(title or "Predicted vs actual")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, path)


def _wb(m) -> tuple[np.ndarray, float]:
    if hasattr(m, "coef_"):
        return np.asarray(m.coef_, dtype=np.float64), float(m.intercept_)
    w, b = m
    return np.atleast_1d(np.asarray(w, dtype=np.float64)), float(b)


def plot_residuals(path, X: np.ndarray, y: np.ndarray, model, target: str = "y") -> Path:
    """Residuals ``y - prediction`` against the fitted values, and their histogram."""
    w, b = _wb(model)
    fitted = np.asarray(X, dtype=np.float64).reshape(len(y), -1) @ w + b
    r = y - fitted
    fig, (a1, a2) = new_figure(1, 2, figsize=(11, 4.2))
    a1.scatter(fitted, r, s=6, alpha=0.35, color=COLORS["data"])
    a1.axhline(0, color=COLORS["optimum"], lw=1)
    a1.set_xlabel(f"fitted {target}")
    a1.set_ylabel("residual")
    a1.set_title("Residuals vs fitted")
    a1.grid(True, alpha=0.3)
    a2.hist(r, bins=min(60, max(10, len(r) // 20)), color=COLORS["data"], alpha=0.8)
    a2.axvline(0, color=COLORS["optimum"], lw=1)
    a2.set_xlabel("residual")
    a2.set_ylabel("rows")
    a2.set_title(f"Residual histogram (mean {r.mean():.3g}, std {r.std():.3g})")
    a2.grid(True, alpha=0.3)
    return save(fig, path)


def lr_curves(X, y, lrs: Sequence[float], *, loss: str = "l2", epochs: int = 200, init=None,
              optimizer: str = "sgd") -> dict[float, tuple[list[float], bool]]:
    """Loss per epoch of ``optimizer`` at each learning rate; a divergent run keeps the losses it
    had until :class:`~gradfit.DivergenceError` stopped it. Returns lr -> (losses, diverged)."""
    from gradfit.api import fit
    from gradfit.solvers import DivergenceError
    out = {}
    for lr in lrs:
        seen: list[float] = []
        try:
            fit(X, y, loss=loss, optimizer=optimizer, lr=lr, epochs=epochs, init=init if init is not None else "zeros",
                warn=False, record_path=False, tol=0.0, on_epoch=lambda e, v, t: seen.append(v))
            out[lr] = (seen, False)
        except DivergenceError:
            out[lr] = (seen, True)
    return out


def plot_lr_comparison(path, curves: dict[float, tuple[list[float], bool]], optimum_loss: float | None = None,
                       title: str = "Learning rates compared", ax=None):
    """Loss curves per learning rate (``path`` None: the Figure, drawn into ``ax`` if given)."""
    fig, ax = (ax.figure, ax) if ax is not None else new_figure()
    cmap = matplotlib.colormaps["viridis"]
    for i, (lr, (v, diverged)) in enumerate(sorted(curves.items())):
        label = f"lr {lr:g}" + (" - diverged" if diverged else "")
        c = "#d62728" if diverged else cmap(i / max(len(curves) - 1, 1) * 0.85)
        ax.plot(np.arange(len(v)), v, lw=1.8, color=c, ls=":" if diverged else "-", label=label)
        if diverged and v:
            ax.plot([len(v) - 1], [v[-1]], marker="x", ms=9, color=c)
    if optimum_loss is not None:
        ax.axhline(optimum_loss, color=COLORS["optimum"], ls="--", lw=1.2, label="optimum")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (log scale)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, path)


def plot_l1_vs_l2(path, x: np.ndarray, y: np.ndarray, l1, l2, outliers: np.ndarray | None = None, ax=None):
    """One feature: the L1 (median) and L2 (mean) lines; outliers marked (``path`` None: the Figure)."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    fig, ax = (ax.figure, ax) if ax is not None else new_figure()
    mask = np.zeros(len(y), bool) if outliers is None else outliers
    ax.scatter(x[~mask], y[~mask], s=6, alpha=0.35, color=COLORS["data"], label="data")
    if mask.any():
        ax.scatter(x[mask], y[mask], s=14, color="#d62728", marker="^", label=f"outliers ({int(mask.sum())})")
    xs = np.linspace(x.min(), x.max(), 2)
    for label, m, c in (("L1 (absolute)", l1, COLORS["l1"]), ("L2 (squared)", l2, COLORS["l2"])):
        w, b = _wb(m)
        ax.plot(xs, w[0] * xs + b, lw=2.2, color=c, label=f"{label}: y = {w[0]:.3g} x + {b:.3g}")
    ax.set_title("L1 shrugs off outliers, L2 is pulled by them")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, path)


def write_plots(model, data: Batches, out_dir: str | os.PathLike, *, optimum_loss: float | None = None,
                coefs: tuple[int, int] | None = None, max_rows: int = MAX_PLOT_ROWS) -> dict[str, Path]:
    """The plots of one fitted model into ``out_dir``: loss curve (when it has a history), fit,
    residuals and the loss surface (rows sampled down to ``max_rows``). Returns name -> path."""
    from gradfit.viz.surface import plot_loss_surface
    out = Path(out_dir)
    X, y = sample_rows(data, max_rows)
    target = model.target_name or "y"
    paths: dict[str, Path] = {}
    if model.history_ is not None and len(model.history_.loss) > 1:
        paths["loss_curve"] = plot_loss_curve(out / "loss_curve.png", {model.solver: model.history_}, optimum_loss)
    paths["fit"] = plot_fit(out / "fit.png", X, y, {"fit": model}, feature=model.feature_names_in_[0], target=target)
    paths["residuals"] = plot_residuals(out / "residuals.png", X, y, model, target)
    from gradfit.viz.diagnostics import diagnostic_sample, plot_diagnostics
    diag = diagnostic_sample(model, data, max_rows)
    paths["diagnostics"] = save(plot_diagnostics(diag, "all"), out / "diagnostics.png")
    paths["partial_residuals"] = save(plot_diagnostics(diag, "partial"), out / "partial_residuals.png")
    hist = model.history_
    path = hist.path_array if hist is not None and len(hist.path) > 1 else None
    optimum, label = exact_optimum_of(model, data)
    paths["loss_surface"] = plot_loss_surface(out / "loss_surface.png", X, y, model.loss, optimum,
                                              paths={model.solver: path} if path is not None else {},
                                              coefs=coefs, names=model.feature_names_in_, optimum_label=label)
    return paths


def exact_optimum_of(model, data: Batches):
    """The exact optimum of the model's objective on ``data`` and its label for the star: the model
    itself when its certificate says it is there, else a fresh exact fit (never the end of a path)."""
    import math

    from gradfit.api import fit
    from gradfit.problem.losses import loss_from_spec
    certified = model.converged_ and not math.isnan(model.gap_) and model.gap_ <= 1e-6
    if certified:
        return model, f"optimum (gap {model.gap_:.1e})"
    pen = dict(model.penalty)
    exact = fit(data, loss=loss_from_spec(model.loss), penalty=pen.get("name", "none"), alpha=pen.get("alpha", 0.0),
                l1_ratio=pen.get("l1_ratio", 0.5), fit_intercept=bool(model.info.get("fit_intercept", True)),
                warn=False)
    return exact, f"exact optimum ({exact.solver}, gap {exact.gap_:.1e})"
