"""The solver registry: every solver class registers one instance under its name.

``get_solver(name, loss, penalty)`` returns a solver that accepts the pair, with ``"auto"``
choosing the fastest exact method for the loss. Each solver module registers its classes with
:func:`register` when imported; :func:`load` imports the modules listed in ``MODULES``.
"""
from __future__ import annotations

import importlib
from gradfit.exceptions import SolverMismatch
from gradfit.problem.losses import Loss
from gradfit.problem.penalties import Penalty

REGISTRY: dict = {}  # name -> one instance of a gradfit.solvers.base.Solver subclass
MODULES = ("exact", "gd", "ipm", "cd", "prox", "lbfgs", "newton", "krylov")


def load() -> None:
    """Import every solver module, so the registry is complete."""
    for mod in MODULES:
        importlib.import_module(f"gradfit.solvers.{mod}")


def available() -> list[str]:
    load()
    return sorted(REGISTRY)


def auto_name(loss: Loss, penalty: Penalty) -> str:
    """The fastest exact method for this loss and penalty among those registered."""
    load()
    if penalty.positive:
        prefs = ["cd"]  # the solver that projects onto w >= 0
    elif loss.name == "squared":
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
    load()
    key = (name or "auto").lower()
    if key == "auto":
        key = auto_name(loss, penalty)
    if key not in REGISTRY:
        raise SolverMismatch(f"unknown solver {name!r}; choose auto or one of {', '.join(sorted(REGISTRY))}")
    solver = REGISTRY[key]
    solver.check(loss, penalty)
    return solver



def register(cls):
    """Class decorator: add one instance of ``cls`` to the registry under ``cls.name``."""
    REGISTRY[cls.name] = cls()
    return cls


def distributed_solvers() -> list[str]:
    """Names of the registered solvers that declare ``runs_distributed``."""
    load()
    return sorted(name for name, solver in REGISTRY.items() if solver.runs_distributed)
