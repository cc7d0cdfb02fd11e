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
from gradfit.problem.losses import Loss, get_loss, loss_from_spec
from gradfit.viz.figure import COLORS, line_of, new_figure, save

PATH_COLORS = ("#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#17becf")


def _theta(model_or_theta: Any) -> np.ndarray:
    if hasattr(model_or_theta, "coef_"):
        w, b = line_of(model_or_theta)
        return np.append(w, b)
    return np.asarray(model_or_theta, dtype=np.float64).reshape(-1)


def _loss(loss: Loss | dict | str) -> Loss:
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, dict):
        return loss_from_spec(loss)
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
                      title: str | None = None, colors: dict[str, str] | None = None,
                      optimum_label: str | None = None) -> Path:
    """Contours of the mean loss over two parameters, the optimizers' ``paths`` (label -> array
    (k, p+1) of theta per epoch) drawn on it, and the optimum (default: ``center``) starred.

    Give the exact optimum as ``optimum`` (or ``center``) and say so in ``optimum_label``: the star
    must never be the end of an unconverged path (:func:`gradfit.viz.report.write_plots` computes it)."""
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
            label=f"{optimum_label or 'optimum'} ({opt[i]:.4g}, {opt[j]:.4g})")
    ax.set_xlim(a_lo, a_hi)
    ax.set_ylim(c_lo, c_hi)
    ax.set_xlabel(_label(i, p, names))
    ax.set_ylabel(_label(j, p, names))
    others = "" if p == 1 else " (other coefficients at the fitted values)"
    loss_name = _loss(loss).name
    ax.set_title(title or f"{loss_name} loss surface{others}", fontsize=10)
    ax.legend(fontsize=8, loc="best", framealpha=0.85)
    return save(fig, path)


def animate_line(path, x: np.ndarray, y: np.ndarray, theta_paths, *, losses=None, optimum=None,
                 frames: int = 40, fps: int = 8, label: str = "SGD", colors: dict[str, str] | None = None,
                 max_points: int = 600, size: tuple[float, float] = (9.0, 5.6), dpi: int = 100,
                 xlabel: str = "x", ylabel: str = "y") -> Path:
    """GIF of the fitted lines moving over the epochs (one feature), ``size`` inches at ``dpi``
    (default 900 x 560 px), with axis labels and one caption line per path.

    ``theta_paths``: an array (k, 2) of (w, b) per epoch, or label -> such array for several paths
    (each frame shows the same epoch of every path; a path that ended stays at its end).
    ``losses``: a list, or label -> list, of the loss per epoch for the captions.
    The static part is drawn once and each frame only redraws the lines and captions (blitting),
    then Pillow (matplotlib's own dependency) writes the GIF."""
    from PIL import Image
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    if not isinstance(theta_paths, dict):
        theta_paths = {label: theta_paths}
        losses = {label: losses} if losses is not None else None
    paths = {k: np.asarray(v, dtype=np.float64) for k, v in theta_paths.items()}
    losses = losses or {}
    for v in paths.values():
        if v.ndim != 2 or v.shape[1] != 2 or not len(v):
            raise ValueError("the animation needs a one-feature path of (w, b) per epoch")
    longest = max(len(v) for v in paths.values())
    pick = np.unique(np.linspace(0, longest - 1, min(frames, longest)).round().astype(int))
    show = np.random.default_rng(0).choice(len(x), min(len(x), max_points), replace=False)
    fig, ax = new_figure(figsize=size, dpi=dpi)
    ax.scatter(x[show], y[show], s=9, alpha=0.35, color=COLORS["data"], label=f"data ({len(x)} points)")
    xs = np.array([x.min(), x.max()])
    if optimum is not None:
        w, b = line_of(optimum)
        ax.plot(xs, w[0] * xs + b, ls="--", color=COLORS["optimum"], lw=1.6,
                label=f"exact optimum: y = {w[0]:.3f} x + {b:.3f}")
    drawn = []
    for n, (name, v) in enumerate(paths.items()):
        c = (colors or {}).get(name, PATH_COLORS[n % len(PATH_COLORS)])
        (line,) = ax.plot(xs, xs * 0, color=c, lw=2.8, label=name, animated=True)
        caption = ax.text(0.99, 0.03 + 0.075 * (len(paths) - 1 - n), "", transform=ax.transAxes, ha="right",
                          fontsize=12, color=c, animated=True,
                          bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "none"})
        drawn.append((name, v, line, caption))
    pad = 0.1 * float(np.ptp(y) or 1.0)
    ax.set_ylim(float(y.min()) - pad, float(y.max()) + pad)
    ax.set_xlabel(xlabel, fontsize=13)
    ax.set_ylabel(ylabel, fontsize=13)
    ax.tick_params(labelsize=11)
    ax.set_title("The fitted lines over the epochs", fontsize=14)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=11, loc="upper left")
    fig.tight_layout()
    fig.canvas.draw()
    background = fig.canvas.copy_from_bbox(fig.bbox)
    images = []
    for k in pick:
        fig.canvas.restore_region(background)
        for name, v, line, caption in drawn:
            e = min(int(k), len(v) - 1)
            w, b = v[e]
            line.set_ydata(w * xs + b)
            seen = losses.get(name)
            loss = f", loss {seen[e]:.4g}" if seen is not None and e < len(seen) else ""
            caption.set_text(f"epoch {e}: y = {w:.3f} x + {b:.3f}{loss}")
            ax.draw_artist(line)
            ax.draw_artist(caption)
        rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3]
        images.append(Image.fromarray(np.ascontiguousarray(rgb)).quantize(colors=64))
    durations = [int(1000 / fps)] * (len(images) - 1) + [2000]  # hold the last frame
    with atomic_path(path) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0)
    return Path(path)
