"""The interface every benchmark peer implements.

A peer has a ``name``, says whether it handles a problem (``supports`` returns None, or the
reason it does not), may predict its running time (``estimate_seconds``, used to skip a peer
that would take longer than the time budget), and ``fit(X, y, problem)`` returns
``(coef, intercept)``. A *reference* peer (e.g. one ``X'X`` product) only gives a time to compare
against and returns None from ``fit``.
"""
from __future__ import annotations

import numpy as np

from ..problems import Problem


class Skip(Exception):
    """Raised by a peer that finds, while running, that it cannot answer (message = reason)."""


class Peer:
    name: str = ""
    reference: bool = False   # a timing reference, not a fit
    slow: bool = False        # run once, not best-of-several
    losses: tuple[str, ...] | None = None  # the problem losses it fits (None: any)
    info: dict

    def __init__(self):
        self.info = {}

    def supports(self, problem: Problem) -> str | None:
        if self.losses is not None and problem.loss not in self.losses:
            return f"{'/'.join(self.losses)} loss only"
        return None

    def estimate_seconds(self, problem: Problem) -> float | None:
        """Expected seconds on this 2-core machine (None: unknown, assumed fast)."""
        return None

    def fit(self, X: np.ndarray, y: np.ndarray, problem: Problem) -> tuple[np.ndarray, float] | None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return self.name


def with_intercept(X: np.ndarray) -> np.ndarray:
    """[1, X] as statsmodels.add_constant builds it (a copy, part of the peer's cost)."""
    out = np.empty((X.shape[0], X.shape[1] + 1))
    out[:, 0] = 1.0
    out[:, 1:] = X
    return out
