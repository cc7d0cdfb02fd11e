"""The loss surface over two parameters with the optimizers' paths drawn on it, and the animated line.

For one feature the surface is over (w, b); for several it is the slice through two chosen
parameters (indices into ``theta = [w_1..w_p, b]``) with the others held at the fitted values.
The contour levels are spaced geometrically above the minimum so the narrow valley a learning
rate has to crawl along stays visible.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from matplotlib.colors import LogNorm

from gradfit.data.atomic import atomic_path
from gradfit.problem.losses import Loss, loss_from_spec
from gradfit.viz.plots import COLORS, _wb, new_figure, save

PATH_COLORS = ("#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#17becf")


def _theta(model_or_theta: Any) -> np.ndarray:
    if hasattr(model_or_theta, "coef_"):
        w, b = _wb(model_or_theta)
        return np.append(w, b)
    return np.asarray(model_or_theta, dtype=np.float64).reshape(-1)


def _loss(loss: Loss | dict | str) -> Loss:
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, dict):
        return loss_from_spec(loss)
    from gradfit.problem.losses import get_loss
    return get_loss(loss)


def surface_grid(X: np.ndarray, y: np.ndarray, loss, center: np.ndarray, coefs: tuple[int, int],
                 a_values: np.ndarray, c_values: np.ndarray) -> np.ndarray:
    """Mean loss on the grid: Z[k, l] at theta = center with theta[i] = a_values[l], theta[j] = c_values[k]."""
    rho = _loss(loss)
    X = np.asarray(X, dtype=np.float64).reshape(len(y), -1)
    D = np.hstack([X, np.ones((len(y), 1))])
    i, j = coefs
    base = D @ center - center[i] * D[:, i] - center[j] * D[:, j]
    Z = np.empty((len(c_values), len(a_values)))
    resid0 = torch.from_numpy(y - base)
    Di, Dj = torch.from_numpy(D[:, i]), torch.from_numpy(D[:, j])
    A = torch.from_numpy(a_values)
    for k, c in enumerate(c_values):
        r = resid0[:, None] - Di[:, None] * A[None, :] - c * Dj[:, None]
        Z[k] = rho.value(r).mean(0).numpy()
    return Z


def _span(values: list[np.ndarray], center: float, natural: float) -> tuple[float, float]:
    pts = np.concatenate([np.atleast_1d(v) for v in values] + [[center]])
    lo, hi = float(pts.min()), float(pts.max())
    width = hi - lo
    if width < 0.1 * natural:  # no path, or one too short to frame: show the neighbourhood instead
        mid = (lo + hi) / 2
        lo, hi, width = mid - natural / 2, mid + natural / 2, natural
    pad = 0.15 * width
    return lo - pad, hi + pad


def _label(k: int, p: int, names: Sequence[str] | None) -> str:
    if k == p:
        return "b (intercept)"
    name = names[k] if names else f"x{k}"
    return "w" if p == 1 else f"w[{name}]"


def plot_loss_surface(path, X: np.ndarray, y: np.ndarray, loss, center, *,
                      paths: dict[str, np.ndarray | None] | None = None, coefs: tuple[int, int] | None = None,
                      names: Sequence[str] | None = None, optimum=None, grid: int = 70,
                      title: str | None = None, colors: dict[str, str] | None = None) -> Path:
    """Contours of the mean loss over two parameters, the optimizers' ``paths`` (label -> array
    (k, p+1) of theta per epoch) drawn on it, and the optimum (default: ``center``) starred."""
    X = np.asarray(X, dtype=np.float64).reshape(len(y), -1)
    p = X.shape[1]
    center = _theta(center)
    opt = center if optimum is None else _theta(optimum)
    i, j = coefs if coefs is not None else ((0, 1) if p > 1 else (0, p))
    if not (0 <= i <= p and 0 <= j <= p and i != j):
        raise ValueError(f"coefs must be two different indices in 0..{p} (p = intercept), got {(i, j)}")
    paths = {k: np.asarray(v) for k, v in (paths or {}).items() if v is not None and len(v)}
    sy = float(np.std(y)) or 1.0
    natural = [sy / (float(np.std(X[:, k])) or 1.0) if k < p else sy for k in (i, j)]
    a_lo, a_hi = _span([v[:, i] for v in paths.values()] + [opt[i]], center[i], natural[0])
    c_lo, c_hi = _span([v[:, j] for v in paths.values()] + [opt[j]], center[j], natural[1])
    A, C = np.linspace(a_lo, a_hi, grid), np.linspace(c_lo, c_hi, grid)
    Z = surface_grid(X, y, loss, center, (i, j), A, C)
    zmin, zmax = float(Z.min()), float(Z.max())
    floor = zmin + max(zmax - zmin, 1e-12) * 1e-4
    Zc = np.maximum(Z - zmin, (floor - zmin)) + 1e-300
    levels = np.geomspace(Zc.min(), Zc.max(), 24)
    fig, ax = new_figure(figsize=(7, 5.2))
    cs = ax.contourf(A, C, Zc, levels=levels, norm=LogNorm(), cmap="viridis_r")
    ax.contour(A, C, Zc, levels=levels[::2], colors="white", linewidths=0.4, alpha=0.6)
    cb = fig.colorbar(cs, ax=ax, ticks=levels[::4], format="%.2g")
    cb.set_label(f"mean loss - {zmin:.4g} (log scale)")
    for n, (label, v) in enumerate(paths.items()):
        c = (colors or {}).get(label, PATH_COLORS[n % len(PATH_COLORS)])
        ax.plot(v[:, i], v[:, j], color=c, lw=2, label=f"{label} ({len(v) - 1} epochs)")
        ax.plot(v[0, i], v[0, j], "o", color=c, ms=7, mec="white")
        ax.plot(v[-1, i], v[-1, j], "s", color=c, ms=7, mec="white")
    ax.plot(opt[i], opt[j], "*", color="white", ms=18, mec=COLORS["optimum"], mew=1.5,
            label=f"optimum ({opt[i]:.4g}, {opt[j]:.4g})")
    ax.set_xlim(a_lo, a_hi)
    ax.set_ylim(c_lo, c_hi)
    ax.set_xlabel(_label(i, p, names))
    ax.set_ylabel(_label(j, p, names))
    others = "" if p == 1 else " (other coefficients at the fitted values)"
    loss_name = _loss(loss).name
    ax.set_title(title or f"{loss_name} loss surface{others}", fontsize=10)
    ax.legend(fontsize=8, loc="best", framealpha=0.85)
    return save(fig, path)


def animate_line(path, x: np.ndarray, y: np.ndarray, theta_path: np.ndarray, *, losses: Sequence[float] = (),
                 optimum=None, frames: int = 40, fps: int = 8, label: str = "SGD",
                 max_points: int = 600) -> Path:
    """GIF of the fitted line moving over the epochs (one feature): ``frames`` frames, small.

    The static part is drawn once and each frame only redraws the line and its caption (blitting),
    then Pillow (matplotlib's own dependency) writes the GIF."""
    from PIL import Image
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    theta_path = np.asarray(theta_path, dtype=np.float64)
    if theta_path.ndim != 2 or theta_path.shape[1] != 2 or not len(theta_path):
        raise ValueError("the animation needs a one-feature path of (w, b) per epoch")
    pick = np.unique(np.linspace(0, len(theta_path) - 1, min(frames, len(theta_path))).round().astype(int))
    show = np.random.default_rng(0).choice(len(x), min(len(x), max_points), replace=False)
    fig, ax = new_figure(figsize=(5, 3.6), dpi=72)
    ax.scatter(x[show], y[show], s=5, alpha=0.35, color=COLORS["data"])
    xs = np.array([x.min(), x.max()])
    if optimum is not None:
        w, b = _wb(optimum)
        ax.plot(xs, w[0] * xs + b, ls="--", color=COLORS["optimum"], lw=1.3, label="optimum")
    (line,) = ax.plot(xs, xs * 0, color=COLORS["seed"], lw=2.4, label=label, animated=True)
    caption = ax.text(0.98, 0.04, "", transform=ax.transAxes, ha="right", fontsize=8, animated=True,
                      bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none"})
    ax.set_ylim(float(y.min()) - 1, float(y.max()) + 1)
    ax.set_title("The fitted line over the epochs", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.canvas.draw()
    background = fig.canvas.copy_from_bbox(fig.bbox)
    images = []
    for k in pick:
        fig.canvas.restore_region(background)
        w, b = theta_path[k]
        line.set_ydata(w * xs + b)
        loss = f", loss {losses[k]:.4g}" if k < len(losses) else ""
        caption.set_text(f"epoch {k}: y = {w:.3f} x + {b:.3f}{loss}")
        ax.draw_artist(line)
        ax.draw_artist(caption)
        rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3]
        images.append(Image.fromarray(np.ascontiguousarray(rgb)).quantize(colors=64))
    durations = [int(1000 / fps)] * (len(images) - 1) + [1500]  # hold the last frame
    with atomic_path(path) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0)
    return Path(path)
