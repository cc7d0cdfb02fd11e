"""Certificates: a bound on the relative objective gap ``(F(theta) - F*) / |F*|`` of a finished fit.

Solvers that know their gap (exact: 0; Newton: its decrement; interior point, coordinate descent
and proximal methods: a duality gap) report it themselves. For the others (gd, sgd, adam,
L-BFGS ...) :func:`certify` solves the same objective with the fastest exact method registered
for it (``solvers.auto_name``) and compares:

    gap <= (F(theta) - F(theta_ref)) / |F(theta_ref)| + gap_ref

where ``gap_ref`` is the reference solver's own certificate (0 for the exact least-squares
solver). ``F`` is evaluated at both points in one pass each, so the bound is about the returned
parameters, not about an average over an epoch. It is NaN when no reference solver is registered
for the loss/penalty pair.
"""
from __future__ import annotations

import math
import warnings

from gradfit.problem.objective import Objective, relative_gap
from gradfit.solvers import REGISTRY, FitResult, Settings, SolverMismatch, auto_name


def reference_solution(objective: Objective, exclude: str = "") -> tuple[float, float, str] | None:
    """(F at the reference optimum, its own relative gap, solver name), or None if none applies."""
    try:
        name = auto_name(objective.loss, objective.penalty)
    except SolverMismatch:
        return None
    if name == exclude or name not in REGISTRY:
        return None
    solver = REGISTRY[name]
    settings = Settings(tol=1e-12, epochs=10_000, record_path=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = solver.solve(objective, settings, objective.zeros())
    gap = 0.0 if name == "exact" else float(ref.gap)
    if not math.isfinite(gap):
        return None
    return float(objective.value(ref.theta.to(objective.dtype))), gap, name


def certify(objective: Objective, result: FitResult) -> float:
    """A bound on the relative objective gap of ``result.theta`` (see the module docstring);
    also stores the reference in ``result.info`` (``certificate``, ``optimum``)."""
    ref = reference_solution(objective, exclude=result.solver)
    if ref is None:
        return float("nan")
    f_star, ref_gap, name = ref
    value = float(objective.value(result.theta.detach().to(objective.dtype)))
    result.info["certificate"] = f"compared with the {name} solver"
    result.info["optimum"] = f_star
    return relative_gap(value, f_star, objective.gap_scale(f_star)) + ref_gap


__all__ = ["certify", "reference_solution"]
