"""Benchmark problems: synthetic data of a given size for one loss, and each loss's objective.

Every peer's answer is scored by the same float64 objective, computed here with numpy in row
chunks (so a 10M-row problem needs no extra full-size temporaries):

* ``squared``: ``mean(r**2)``;  ``absolute``: ``mean(|r|)``;  ``quantile``: ``mean(pinball_tau(r))``
* ``huber_scale``: scikit-learn's HuberRegressor objective with alpha = 0, ``min over sigma > 0`` of
  ``mean(sigma + H_eps(r / sigma) * sigma)`` with ``H_eps(z) = z**2`` for ``|z| <= eps`` else
  ``2 eps |z| - eps**2`` (Owen 2007); the scale is re-optimized for every answer, so two answers
  are compared on (w, b) alone.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

CHUNK = 1 << 20


@dataclass(frozen=True)
class Problem:
    key: str                     # e.g. "squared-10M-10"
    loss: str                    # squared | absolute | quantile | huber_scale
    n: int
    p: int
    seed: int = 0
    tau: float = 0.5
    epsilon: float = 1.35
    standardized: bool = False   # columns N(0, 1)-like (for SGD, which needs no conditioning help)
    note: str = ""
    extra: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def size(self) -> str:
        return f"{human(self.n)} x {self.p}"


def human(n: int) -> str:
    for unit, div in (("M", 1_000_000), ("k", 1_000)):
        if n >= div and n % div == 0:
            return f"{n // div}{unit}"
    return str(n)


def make_data(problem: Problem) -> tuple[np.ndarray, np.ndarray]:
    """X (n, p) float64 C-order with correlated columns of different means/scales, y with
    heavy-tailed noise (Student t with 3 dof) so L1/Huber differ from least squares."""
    rng = np.random.default_rng(problem.seed)
    n, p = problem.n, problem.p
    X = np.empty((n, p))
    y = np.empty(n)
    beta = rng.standard_normal(p)
    mix = np.eye(p) + 0.3 * rng.standard_normal((p, p)) / math.sqrt(p)
    shift, scale = rng.uniform(-3, 3, p), np.exp(rng.uniform(-1, 1, p))
    if problem.standardized:
        shift, scale = np.zeros(p), np.ones(p)
    for a in range(0, n, CHUNK):
        b = min(n, a + CHUNK)
        Z = rng.standard_normal((b - a, p)) @ mix
        X[a:b] = Z * scale + shift
        y[a:b] = X[a:b] @ beta + 1.5 + rng.standard_t(3, b - a)
    return X, y


def residuals(X: np.ndarray, y: np.ndarray, coef, intercept: float):
    coef = np.asarray(coef, dtype=np.float64).reshape(-1)
    for a in range(0, len(y), CHUNK):
        yield y[a:a + CHUNK] - (X[a:a + CHUNK] @ coef + intercept)


def objective(problem: Problem, X: np.ndarray, y: np.ndarray, coef, intercept: float) -> float:
    """The problem's objective at (coef, intercept), in float64."""
    n = len(y)
    if problem.loss == "huber_scale":
        return huber_scale_objective(np.concatenate(list(residuals(X, y, coef, intercept))), problem.epsilon)
    total = 0.0
    for r in residuals(X, y, coef, intercept):
        if problem.loss == "squared":
            total += float(r @ r)
        elif problem.loss == "absolute":
            total += float(np.abs(r).sum())
        elif problem.loss == "quantile":
            total += float(np.where(r >= 0, problem.tau * r, (problem.tau - 1) * r).sum())
        else:
            raise ValueError(f"unknown loss {problem.loss}")
    return total / n


def huber_scale_objective(r: np.ndarray, eps: float) -> float:
    """min over sigma of mean(sigma + H_eps(r/sigma) sigma): convex in sigma, golden-section on log sigma."""
    a = np.abs(r)

    def f(log_s: float) -> float:
        s = math.exp(log_s)
        z = a / s
        h = np.where(z <= eps, z * z, 2 * eps * z - eps * eps)
        return float(np.mean(s + h * s))

    med = float(np.median(a)) or 1.0
    lo, hi = math.log(med) - 5, math.log(med) + 5
    g = (math.sqrt(5) - 1) / 2
    c, d = hi - g * (hi - lo), lo + g * (hi - lo)
    fc, fd = f(c), f(d)
    for _ in range(60):
        if fc < fd:
            hi, d, fd = d, c, fc
            c = hi - g * (hi - lo)
            fc = f(c)
        else:
            lo, c, fc = c, d, fd
            d = lo + g * (hi - lo)
            fd = f(d)
    return min(fc, fd)
