"""The plain PyTorch loop of the seed program: nn.Linear + nn.L1Loss + optim.SGD, full batch,
zero_grad / forward / loss / backward / step each epoch."""
from __future__ import annotations

import numpy as np
import torch

from .base import Peer


class TorchLoop(Peer):
    def __init__(self, epochs: int = 500, lr: float = 0.001, dtype: torch.dtype = torch.float32):
        super().__init__()
        self.epochs, self.lr, self.dtype = epochs, lr, dtype
        self.name = f"plain PyTorch loop ({str(dtype).replace('torch.', '')})"

    def supports(self, problem):
        return None if problem.loss in ("absolute", "squared") and problem.p == 1 else "the seed program only"

    def fit(self, X, y, problem, init: tuple[float, float] | None = None):
        xt = torch.as_tensor(X, dtype=self.dtype)
        yt = torch.as_tensor(y, dtype=self.dtype)[:, None]
        model = torch.nn.Linear(1, 1).to(self.dtype)
        if init is not None:
            with torch.no_grad():
                model.weight.fill_(init[0])
                model.bias.fill_(init[1])
        crit = torch.nn.L1Loss() if problem.loss == "absolute" else torch.nn.MSELoss()
        opt = torch.optim.SGD(model.parameters(), lr=self.lr)
        for _ in range(self.epochs):
            opt.zero_grad()
            loss = crit(model(xt), yt)
            loss.backward()
            opt.step()
        return np.array([float(model.weight.detach())]), float(model.bias.detach())
