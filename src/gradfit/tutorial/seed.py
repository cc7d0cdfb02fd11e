"""The tutorial's autograd walkthrough: ``y = 2x``, ``z = 2y + 3``, a loss, ``loss.backward()``, with
every graph node matched to the name it computes and the subgradient at 0 explained."""
from __future__ import annotations

from typing import Callable

import torch

from gradfit.tutorial.i18n import translator
from gradfit.tutorial.run import TutorialData, tutorial_data

Printer = Callable[[str], None]
SeedData = TutorialData  # the names before the tutorial's run module
seed_data = tutorial_data


def _fmt(t: torch.Tensor) -> str:
    return "[" + ", ".join(f"{float(v):g}" for v in t.detach().reshape(-1)) + "]"


def autograd_walkthrough(x=(2.0, 3.0), target=(3.0, 4.0), loss: str = "l1", out: Printer = print,
                         lang: str | None = "en") -> dict:
    """The tutorial's tiny graph: y = 2x, z = 2y + 3, loss = sum(|z - target|) (or squares), then backward."""
    _ = translator(lang)
    if loss not in ("l1", "l2"):
        raise ValueError(f"unknown loss {loss!r} for grad; choose l1 or l2")
    if len(x) != len(target):
        raise ValueError(f"x has {len(x)} values but target has {len(target)}; give the same number")
    xt = torch.tensor([float(v) for v in x], requires_grad=True)
    tt = torch.tensor([float(v) for v in target])
    y = xt * 2
    two_y = 2 * y
    z = two_y + 3
    y.retain_grad()
    z.retain_grad()
    diff = z - tt
    per = torch.abs(diff) if loss == "l1" else diff * diff
    value = torch.sum(per)
    value.backward()
    formula = "sum(|z - target|)" if loss == "l1" else "sum((z - target)^2)"
    out(_("The tutorial's graph, forward:"))
    out(f"  x      = {_fmt(xt)}  (requires_grad=True)")
    out(f"  y      = 2*x        = {_fmt(y)}")
    out(f"  z      = 2*y + 3    = {_fmt(z)}")
    out(f"  target = {_fmt(tt)}")
    out(f"  loss   = {formula} = {value.item():g}")
    out(_("Graph, from the loss back to the leaf (what loss.backward() walks):"))
    names = {value.grad_fn: ("loss", formula), per.grad_fn: ("", "|z - target|" if loss == "l1" else "(z - target)^2"),
             diff.grad_fn: ("", "z - target"), z.grad_fn: ("z", "2*y + 3"), two_y.grad_fn: ("", "2*y"),
             y.grad_fn: ("y", "x*2")}
    chain = _graph_chain(value)
    for fn in chain:
        name, what = names.get(fn, ("x", _("the leaf: backward() accumulates x.grad here")))
        label = (f"{name} = {what}" if name else what) if fn in names else f"x  ({what})"
        out(f"  {type(fn).__name__:<16} {label}")
    out("  " + " <- ".join(type(fn).__name__ for fn in chain))
    out("  i.e. loss <- z <- y <- x")
    out(_("Backward (chain rule):"))
    local = "sign(z - target)" if loss == "l1" else "2*(z - target)"
    out(f"  dloss/dz = {local} = {_fmt(z.grad)}")
    out(f"  dloss/dy = dloss/dz * 2 = {_fmt(y.grad)}")
    out(f"  x.grad   = dloss/dy * 2 = {_fmt(xt.grad)}")
    kinks = [i for i, v in enumerate(diff.detach().tolist()) if v == 0.0]
    if loss == "l1" and kinks:
        out(_("  note: z = target at element {where}, where |z - target| has a kink and no derivative. Any "
              "number in [-1, 1] is a subgradient there; PyTorch takes sign(0) = 0, so that element adds "
              "nothing to x.grad.").format(where=", ".join(map(str, kinks))))
    return {"x": xt.detach().tolist(), "y": y.detach().tolist(), "z": z.detach().tolist(),
            "loss": value.item(), "z_grad": z.grad.tolist(), "y_grad": y.grad.tolist(), "x_grad": xt.grad.tolist(),
            "nodes": [type(fn).__name__ for fn in chain]}


def _graph_chain(t: torch.Tensor) -> list:
    """The grad_fn nodes from ``t`` back to the leaf, following the first input that needs a gradient."""
    chain, fn = [], t.grad_fn
    while fn is not None:
        chain.append(fn)
        nxt = [f for f, _ in fn.next_functions if f is not None]
        fn = nxt[0] if nxt else None
    return chain
