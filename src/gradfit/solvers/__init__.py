"""Solvers: one module per algorithm, each registered under its name (see :mod:`.registry`).

``get_solver(name, loss, penalty)`` returns a solver that accepts the pair, with ``"auto"`` choosing
the fastest exact method for the loss; :mod:`.base` holds what every solver shares and
:mod:`.settings` the typed settings and options.
"""
from gradfit.solvers.base import (ConvergenceWarning, DivergenceError, FitResult, Options, Settings, Solver,
                                  SolverMismatch)
from gradfit.solvers.loop import EpochLoop
from gradfit.solvers.registry import REGISTRY, auto_name, available, distributed_solvers, get_solver, register

__all__ = ["REGISTRY", "register", "available", "distributed_solvers", "Options", "get_solver", "auto_name",
           "Settings", "FitResult", "Solver", "EpochLoop", "ConvergenceWarning", "DivergenceError", "SolverMismatch"]
