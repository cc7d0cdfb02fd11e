"""Pictures of a fit, headless (matplotlib's Agg backend), every file written atomically.

- :func:`plot_loss_curve`: the loss per epoch on a log scale, the optimum's loss as a line;
- :func:`plot_fit`: the data and the fitted line (one feature) or predicted vs actual (several);
- :func:`plot_residuals`: residuals vs fitted and their histogram;
- :func:`plot_lr_comparison`: loss curves of SGD at several learning rates, divergent ones until they blow up;
- :func:`plot_l1_vs_l2`: the L1 and the L2 line on data with outliers;
- the loss surface with the optimizer's path and the animation: :mod:`gradfit.viz.surface`;
- regression diagnostics (R's ``plot(lm)``): :mod:`gradfit.viz.diagnostics`; what they share: :mod:`gradfit.viz.figure`.

Each writes a file and returns its path, or, with ``path=None``, returns the matplotlib Figure (and
the one-panel pictures draw into ``ax=`` when given one), for notebooks.

:func:`gradfit.viz.report.write_plots` makes the set for one fitted model (``gradfit plot``, ``gradfit fit --plot``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import matplotlib
import matplotlib.text
import numpy as np
from matplotlib.ticker import FormatStrFormatter

from gradfit.api import fit
from gradfit.exceptions import DivergenceError
from gradfit.viz.figure import COLORS, line_of, new_figure, save


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
            w, b = line_of(m)
            ax.plot(xs, w[0] * xs + b, lw=2.2, color=(colors or {}).get(label),
                    label=f"{label}: y = {w[0]:.4g} x + {b:.4g}")
        ax.set_xlabel(feature)
        ax.set_ylabel(target)
        ax.set_title(title or "Data and fitted line")
    else:
        lo, hi = float(np.min(y)), float(np.max(y))
        for label, m in lines.items():
            w, b = line_of(m)
            ax.scatter(y, X @ w + b, s=6, alpha=0.35, color=(colors or {}).get(label), label=label)
        ax.plot([lo, hi], [lo, hi], color=COLORS["optimum"], lw=1, ls="--", label="predicted = actual")
        ax.set_xlabel(f"actual {target}")
        ax.set_ylabel(f"predicted {target}")
        ax.set_title(title or "Predicted vs actual")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, path)


def plot_residuals(path, X: np.ndarray, y: np.ndarray, model, target: str = "y") -> Path:
    """Residuals ``y - prediction`` against the fitted values, and their histogram."""
    w, b = line_of(model)
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
        w, b = line_of(m)
        ax.plot(xs, w[0] * xs + b, lw=2.2, color=c, label=f"{label}: y = {w[0]:.3g} x + {b:.3g}")
    ax.set_title("L1 shrugs off outliers, L2 is pulled by them")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, path)
