"""The seed tutorial, end to end: the autograd walkthrough, the seed's PyTorch training loop written
by hand, the same run through gradfit (same numbers), and the exact answer the loop was chasing.

    python examples/seed_tutorial.py            # the seed's sizes: 1000 points, 500 epochs
    GRADFIT_EXAMPLES_QUICK=1 python examples/seed_tutorial.py   # small and fast (the test suite)
"""
import os

import torch
from torch import nn

import gradfit
from gradfit.tutorial import autograd_walkthrough, seed_data

QUICK = os.environ.get("GRADFIT_EXAMPLES_QUICK") == "1"
N, EPOCHS, LR = (200, 100, 0.001) if QUICK else (1000, 500, 0.001)


def seed_loop(x: torch.Tensor, y: torch.Tensor, w0: float, b0: float) -> tuple[float, float, float]:
    """The seed's program: nn.Linear(1, 1), L1 loss, SGD, one full-batch step per epoch."""
    model = nn.Linear(1, 1)
    with torch.no_grad():
        model.weight.fill_(w0)
        model.bias.fill_(b0)
    loss_fn, opt = nn.L1Loss(), torch.optim.SGD(model.parameters(), lr=LR)
    for _ in range(EPOCHS):
        opt.zero_grad()
        loss = loss_fn(model(x)[:, 0], y)
        loss.backward()
        opt.step()
    return model.weight.item(), model.bias.item(), loss_fn(model(x)[:, 0], y).item()


def main() -> None:
    print("== 1. autograd: what loss.backward() computes ==")
    autograd_walkthrough()

    print(f"\n== 2. the seed's training loop in plain PyTorch ({N} points, {EPOCHS} epochs, lr {LR}) ==")
    d = seed_data(N)
    w_torch, b_torch, loss_torch = seed_loop(d.x, d.y, d.w0, d.b0)
    print(f"PyTorch loop:  w = {w_torch:.5f}, b = {b_torch:.5f}, L1 loss {loss_torch:.5f}")

    print("\n== 3. the same run through gradfit: same data, same start, same optimizer ==")
    same = gradfit.fit(d.x, d.y, loss="l1", solver="sgd", lr=LR, epochs=EPOCHS, init=[d.w0, d.b0],
                       dtype="float32", warn=False)
    print(f"gradfit sgd:   w = {same.coef_[0]:.5f}, b = {same.intercept_:.5f}")
    agree = abs(same.coef_[0] - w_torch) + abs(same.intercept_ - b_torch)
    print(f"difference from the PyTorch loop: {agree:.2e}")
    assert agree < 1e-3, "gradfit's sgd should retrace the hand-written loop"

    print("\n== 4. the answer the loop was walking towards ==")
    best = gradfit.fit(d.x, d.y, loss="l1")  # exact: an interior-point LP solve for the L1 loss
    print(f"exact optimum: w = {best.coef_[0]:.5f}, b = {best.intercept_:.5f}, L1 loss {best.final_loss_:.5f} "
          f"({best.solver}, certified gap {best.gap_:.1e})")
    print(f"the loop stopped {loss_torch - best.final_loss_:.4f} above it: with lr {LR} the intercept moves at "
          f"most {LR} per step, and it had {abs(best.intercept_ - d.b0):.2f} to travel.")
    assert best.final_loss_ <= loss_torch + 1e-6


if __name__ == "__main__":
    main()
