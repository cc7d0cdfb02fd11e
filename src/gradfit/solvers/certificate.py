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
import weakref

from gradfit.data.batches import Float64View
from gradfit.problem.objective import Objective, relative_gap
from gradfit.solvers.base import FitResult, Settings, SolverMismatch
from gradfit.solvers.registry import REGISTRY, auto_name


_REFERENCES: "weakref.WeakKeyDictionary[Objective, dict]" = weakref.WeakKeyDictionary()


def reference_solution(objective: Objective, exclude: str = "") -> tuple[float, float, str] | None:
    """(F at the reference optimum, its own relative gap, solver name), or None if none applies.
    Computed once per objective (and ``exclude``): the epoch loop asks before the first epoch,
    :func:`certify` after the last."""
    cached = _REFERENCES.setdefault(objective, {})
    if exclude not in cached:
        cached[exclude] = _solve_reference(objective, exclude)
    return cached[exclude]


def _solve_reference(objective: Objective, exclude: str) -> tuple[float, float, str] | None:
    try:
        name = auto_name(objective.loss, objective.penalty)
    except SolverMismatch:
        return None
    if name == exclude or name not in REGISTRY:
        return None
    solver = REGISTRY[name]
    settings = Settings(tol=1e-12, epochs=10_000, record_path=False, options=solver.Options())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = solver.solve(objective, settings, objective.zeros())
    gap = float(ref.gap)
    if not math.isfinite(gap):
        return None
    return float(objective.value(ref.theta.to(objective.dtype))), gap, name


def certify(objective: Objective, result: FitResult, exclude: str | None = None) -> float:
    """A bound on the relative objective gap of ``result.theta`` (see the module docstring);
    also stores the reference in ``result.info`` (``certificate``, ``optimum``). ``exclude``
    (default: the result's own solver) is a solver not to use as the reference."""
    ref = reference_solution(objective, exclude=result.solver if exclude is None else exclude)
    if ref is None:
        return float("nan")
    f_star, ref_gap, name = ref
    value = float(objective.value(result.theta.detach().to(objective.dtype)))
    result.info["certificate"] = f"compared with the {name} solver"
    result.info["optimum"] = f_star
    return relative_gap(value, f_star, objective.gap_scale(f_star)) + ref_gap


def certify_in_float64(objective: Objective, result: FitResult) -> float:
    """The gap of a fit made in a narrower dtype (float32), measured where it is resolved: the
    returned parameters and a float64 re-solve, both evaluated on the float64 values of the same data."""
    wide = Objective(objective.loss, objective.penalty, Float64View(objective.data), objective.fit_intercept)
    gap = certify(wide, result, exclude="")
    if result.info.get("certificate"):
        result.info["certificate"] += " on the data in float64"
    return gap


__all__ = ["certify", "certify_in_float64", "reference_solution"]
