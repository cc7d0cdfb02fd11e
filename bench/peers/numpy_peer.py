"""numpy: least squares by ``lstsq`` (SVD), and one ``X'X`` product as the timing floor."""
from __future__ import annotations

import numpy as np

from .base import Peer, with_intercept


class Lstsq(Peer):
    name = "numpy lstsq"

    losses = ("squared",)

    def estimate_seconds(self, problem):
        return 5.5 * problem.n * problem.p ** 2 / (1e7 * 100)  # issue 3: 5.5 s on 10M x 10

    def fit(self, X, y, problem):
        sol = np.linalg.lstsq(with_intercept(X), y, rcond=None)[0]
        return sol[1:], float(sol[0])


class GramProduct(Peer):
    """One ``X.T @ X`` (numpy/OpenBLAS): a fit that reads the data once cannot be much faster."""

    name = "one X'X product (numpy)"
    reference = True

    losses = ("squared",)

    def fit(self, X, y, problem):
        X.T @ X
        return None


class TorchGram(GramProduct):
    name = "one X'X product (torch)"

    def fit(self, X, y, problem):
        import torch
        Xt = torch.from_numpy(X)
        Xt.T @ Xt
        return None
