"""Solver registry. ``get_solver(name, loss, penalty)`` returns a solver that accepts the pair,
with ``"auto"`` choosing the fastest exact method for the loss.

Each solver module registers its classes with :func:`register` when imported; the modules are
listed in ``_MODULES`` so the registry is complete after ``import gradfit.solvers``.
"""
from __future__ import annotations

import importlib

from gradfit.problem.losses import Loss
from gradfit.problem.penalties import Penalty
from gradfit.solvers.base import (ConvergenceWarning, DivergenceError, EpochLoop, FitResult, Settings, Solver,
                   SolverMismatch)

REGISTRY: dict[str, Solver] = {}
_MODULES = ("exact", "gd", "ipm", "cd", "prox", "lbfgs", "newton")


def register(cls):
    """Class decorator: add one instance of ``cls`` to the registry under ``cls.name``."""
    REGISTRY[cls.name] = cls()
    return cls


def _load() -> None:
    for mod in _MODULES:
        importlib.import_module(f"{__name__}.{mod}")


def available() -> list[str]:
    _load()
    return sorted(REGISTRY)


def auto_name(loss: Loss, penalty: Penalty) -> str:
    """The fastest exact method for this loss and penalty among those registered."""
    _load()
    if loss.name == "squared":
        prefs = ["exact"] if penalty.smooth else ["cd", "prox"]
    elif loss.name in ("absolute", "quantile"):
        prefs = ["ipm", "prox", "sgd"]  # ipm.check refuses the quadratic penalties
    else:  # huber
        prefs = ["newton", "lbfgs", "gd"] if penalty.smooth else ["prox"]
    for name in prefs + ["gd", "sgd"]:
        solver = REGISTRY.get(name)
        if solver is None:
            continue
        try:
            solver.check(loss, penalty)
        except SolverMismatch:
            continue
        return name
    raise SolverMismatch(f"no registered solver handles {loss.name} loss with the {penalty.name} penalty")


def get_solver(name: str, loss: Loss, penalty: Penalty) -> Solver:
    _load()
    key = (name or "auto").lower()
    if key == "auto":
        key = auto_name(loss, penalty)
    if key not in REGISTRY:
        raise SolverMismatch(f"unknown solver {name!r}; choose auto or one of {', '.join(sorted(REGISTRY))}")
    solver = REGISTRY[key]
    solver.check(loss, penalty)
    return solver


__all__ = ["REGISTRY", "register", "available", "get_solver", "auto_name", "Settings", "FitResult",
           "Solver", "EpochLoop", "ConvergenceWarning", "DivergenceError", "SolverMismatch"]
