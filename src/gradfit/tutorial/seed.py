"""The seed tutorial, runnable: the autograd walkthrough and the seed's training program, with the
exact answer beside what the seed's settings reach."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from gradfit.api import fit
from gradfit.model import LinearModel

Printer = Callable[[str], None]


def _fmt(t: torch.Tensor) -> str:
    return "[" + ", ".join(f"{float(v):g}" for v in t.detach().reshape(-1)) + "]"


def autograd_walkthrough(x=(2.0, 3.0), target=(3.0, 4.0), loss: str = "l1", out: Printer = print) -> dict:
    """The seed's tiny graph: y = 2x, z = 2y + 3, loss = sum(|z - target|) (or squares), then backward."""
    if loss not in ("l1", "l2"):
        raise ValueError(f"unknown loss {loss!r} for grad; choose l1 or l2")
    if len(x) != len(target):
        raise ValueError(f"x has {len(x)} values but target has {len(target)}; give the same number")
    xt = torch.tensor([float(v) for v in x], requires_grad=True)
    tt = torch.tensor([float(v) for v in target])
    y = xt * 2
    z = 2 * y + 3
    y.retain_grad()
    z.retain_grad()
    diff = z - tt
    value = torch.sum(torch.abs(diff)) if loss == "l1" else torch.sum(diff * diff)
    value.backward()
    formula = "sum(|z - target|)" if loss == "l1" else "sum((z - target)^2)"
    out("The seed's graph, forward:")
    out(f"  x      = {_fmt(xt)}  (requires_grad=True)")
    out(f"  y      = 2*x        = {_fmt(y)}")
    out(f"  z      = 2*y + 3    = {_fmt(z)}")
    out(f"  target = {_fmt(tt)}")
    out(f"  loss   = {formula} = {value.item():g}")
    out("Graph, from the loss back to the leaf (what loss.backward() walks):")
    out("  " + " <- ".join(_graph_chain(value)))
    out("  i.e. loss <- z <- y <- x")
    out("Backward (chain rule):")
    local = "sign(z - target)" if loss == "l1" else "2*(z - target)"
    out(f"  dloss/dz = {local} = {_fmt(z.grad)}")
    out(f"  dloss/dy = dloss/dz * 2 = {_fmt(y.grad)}")
    out(f"  x.grad   = dloss/dy * 2 = {_fmt(xt.grad)}")
    return {"x": xt.detach().tolist(), "y": y.detach().tolist(), "z": z.detach().tolist(),
            "loss": value.item(), "z_grad": z.grad.tolist(), "y_grad": y.grad.tolist(), "x_grad": xt.grad.tolist()}


def _graph_chain(t: torch.Tensor) -> list[str]:
    names, fn = [], t.grad_fn
    while fn is not None:
        names.append(type(fn).__name__)
        nxt = [f for f, _ in fn.next_functions if f is not None]
        fn = nxt[0] if nxt else None
    return names


@dataclass
class SeedData:
    x: torch.Tensor
    y: torch.Tensor
    w0: float
    b0: float


def seed_data(n: int = 1000, noise_std: float = 1.0, seed: int = 0) -> SeedData:
    """The seed's data and nn.Linear(1, 1) initialisation, drawn exactly as its program does."""
    torch.manual_seed(seed)
    x = nn.init.uniform_(torch.empty(n, 1), -10, 10)
    noise = nn.init.normal_(torch.empty(n, 1), std=noise_std)
    y_noise = 2 * (x + noise) + 3
    layer = nn.Linear(1, 1)
    return SeedData(x, y_noise[:, 0], float(layer.weight.item()), float(layer.bias.item()))


@dataclass
class DemoResult:
    seed_model: LinearModel
    optimum: LinearModel
    descent: LinearModel
    data: SeedData
    gap: float


def demo(n: int = 1000, epochs: int = 500, lr: float = 0.001, loss: str = "l1", optimizer: str = "sgd",
         log_every: int = 10, seed: int = 0, noise_std: float = 1.0, out: Printer = print) -> DemoResult:
    """Run the seed's program through gradfit, then show the exact optimum and a fit that reaches it."""
    d = seed_data(n, noise_std, seed)
    out(f"The seed's program: {n} points, x ~ U(-10, 10), noise ~ N(0, {noise_std:g}^2), y = 2(x + noise) + 3")
    out(f"  model y = w*x + b (nn.Linear(1, 1) init: w={d.w0:.4f}, b={d.b0:.4f}), {loss} loss, "
        f"{optimizer} lr={lr:g}, {epochs} full-batch epochs")
    seed_model = fit(d.x, d.y, loss=loss, optimizer=optimizer, lr=lr, epochs=epochs, init=[d.w0, d.b0],
                     dtype="float32", log_every=log_every, warn=False, options={"certify": False},
                     on_log=lambda e, v: out(f"  epoch {e:4d}  loss {v:.6f}"))
    w, b = float(seed_model.coef_[0]), float(seed_model.intercept_)
    out(f"  learned: w = {w:.4f}, b = {b:.4f}   (loss {seed_model.final_loss_:.6f})")
    optimum = fit(d.x, d.y, loss=loss)
    ws, bs = float(optimum.coef_[0]), float(optimum.intercept_)
    # the seed's final loss, re-evaluated in float64 on the same data, against the exact optimum
    r = d.y.double() - (d.x[:, 0].double() * w + b)
    seed_value = float(_mean_loss(loss, r))
    gap = (seed_value - optimum.final_loss_) / abs(optimum.final_loss_)
    out("")
    out(f"The exact optimum of the same {loss} loss on the same data ({optimum.solver} solver, "
        f"certified gap {optimum.gap_:.1e}):")
    out(f"  w* = {ws:.4f}, b* = {bs:.4f}   (loss {optimum.final_loss_:.6f})")
    out(f"  the seed's settings stopped {gap:.1%} above it: |w - w*| = {abs(w - ws):.4f}, "
        f"|b - b*| = {abs(b - bs):.4f}")
    if loss in ("l1", "absolute") and optimizer == "sgd":
        out(f"  why: the L1 gradient of b is the mean of sign(residual), at most 1 in size, so lr {lr:g} "
            f"moves b at most {lr:g} per step, {lr * epochs:g} in {epochs} steps; b had to travel "
            f"{abs(bs - d.b0):.2f}.")
    descent = descent_to_optimum(d, loss)
    dgap = (descent.final_loss_ - optimum.final_loss_) / abs(optimum.final_loss_)
    out(f"Gradient descent done right ({descent.solver}, {descent.n_iter_} epochs"
        + (f", lr {descent.info['lr']:g}" if "lr" in descent.info else "") + "):")
    out(f"  w = {float(descent.coef_[0]):.4f}, b = {float(descent.intercept_):.4f}   (loss "
        f"{descent.final_loss_:.6f}, {max(dgap, 0.0):.1e} above the optimum)")
    return DemoResult(seed_model, optimum, descent, d, gap)


def _mean_loss(loss: str, r: torch.Tensor) -> torch.Tensor:
    from gradfit.problem.losses import get_loss
    return get_loss(loss).value(r).mean()


def descent_to_optimum(d: SeedData, loss: str) -> LinearModel:
    """Full-batch gradient descent with its own step rule (Lipschitz step, smoothing for L1)."""
    return fit(d.x, d.y, loss=loss, solver="gd", epochs=5000, tol=1e-10, warn=False)
