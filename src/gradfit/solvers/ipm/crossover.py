"""Crossover: move an interior-point L1/quantile answer onto the vertex of the linear program.

The interior point (and its polish, done in standardized coordinates) ends next to the optimal
vertex; mapped back to the user's columns its coefficients carry rounding (``0.9999999999999999``
where the vertex is ``1``). A vertex of ``min sum_i s_i rho_tau(y_i - x_i.w - b) + lam ||w||_1``
is fixed by ``q`` active constraints: coefficients at 0 (the kinks of the penalty) and rows with a
zero residual (the kinks of the loss), ``q = p + 1`` with an intercept. This step picks them from
the answer (coefficients at 0 first, then the rows of smallest residual that are linearly
independent of those picked), solves that square system in the original float64 columns, and
keeps the vertex when its objective is no worse than the answer's (to rounding). The caller's
dual lower bound is unchanged, so the certificate holds for the vertex with its own value.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from gradfit.problem.objective import GAP_FLOOR, relative_gap
from gradfit.solvers.ipm import native
from gradfit.solvers.ipm.finish import independent, smallest
from gradfit.solvers.ipm.lp import pinball_sum


def _objective(X, y: np.ndarray, s: np.ndarray, tau: float, lam: float, w: np.ndarray, b: float) -> float:
    if native.rows_usable(X):  # one compiled loop over the rows
        total = native.check(X, torch.from_numpy(y), torch.from_numpy(s), torch.from_numpy(w), b, tau, None, 0)[0]
    else:
        r = torch.from_numpy(y - _product(X, w) - b)
        total = float(pinball_sum(r, torch.from_numpy(s), tau))
    return total + lam * float(np.abs(w).sum())


def _product(X, w: np.ndarray) -> np.ndarray:
    """X @ w as a numpy vector; a dense X (a tensor) through torch, which runs on the solver's one
    thread (numpy's BLAS would wake its own threads: many times slower on a busy machine)."""
    if isinstance(X, Tensor):
        return torch.mv(X, torch.from_numpy(w)).numpy()
    return np.asarray(X @ w).reshape(-1)


def vertex(X: Tensor, y: Tensor, s: Tensor, tau: float, lam: float, fit_intercept: bool, w: Tensor,
           b: Tensor, residual: Tensor | None = None, before: float | None = None) -> tuple[Tensor, Tensor, float, float]:
    """``(w, b, value, value before)``: the vertex next to ``(w, b)`` when it is no worse, else ``(w, b)``.

    ``value`` is ``sum_i s_i rho_tau(r_i) + lam ||w||_1`` (the LP's units). ``residual`` (``y - X w - b``
    up to rounding) and ``before`` (the value at ``(w, b)``), when the caller has them, save passes.
    """
    # sparse rows (gradfit.data.sparse.SparseRows) stay sparse: products and row slices only
    sparse = getattr(X, "csr", None) is not None
    Xn = X.csr if sparse else X.detach().to("cpu", torch.float64)
    yn, sn = (t.detach().to("cpu", torch.float64).numpy() for t in (y, s))
    wn, bn = w.detach().to("cpu", torch.float64).numpy(), float(b)
    if before is None:
        before = _objective(Xn, yn, sn, tau, lam, wn, bn)
    p = Xn.shape[1]
    size = max(float(np.abs(wn).max(initial=0.0)), 1e-300)
    at_zero = np.abs(wn) <= 1e-9 * size if lam > 0 else np.zeros(p, dtype=bool)
    free = np.flatnonzero(~at_zero)
    need = len(free) + int(fit_intercept)
    if need == 0:
        return w, b, before, before
    r = residual.detach().to("cpu", torch.float64) if residual is not None else \
        torch.from_numpy(yn - _product(Xn, wn) - bn)
    k = min(4 * need + 10, r.numel())
    cand = smallest(r.abs(), k).numpy()  # O(n), not a sort
    cand = cand[sn[cand] > 0]
    picked = Xn[cand] if sparse else Xn[torch.from_numpy(cand)].numpy()
    rows = (picked.toarray() if hasattr(picked, "toarray") else np.asarray(picked))[:, free]
    if fit_intercept:
        rows = np.c_[rows, np.ones(len(cand))]
    h = independent(rows, need)
    if len(h) < need:
        return w, b, before, before
    A, z = rows[h], yn[cand[h]]
    try:
        sol = np.linalg.solve(A, z)
    except np.linalg.LinAlgError:
        return w, b, before, before
    sol += np.linalg.solve(A, z - A @ sol)  # one refinement step
    wv = np.zeros(p)
    wv[free] = sol[:len(free)]
    bv = float(sol[-1]) if fit_intercept else 0.0
    after = _objective(Xn, yn, sn, tau, lam, wv, bv)
    if not after <= before + 1e-12 * max(abs(before), 1e-300):
        return w, b, before, before
    return (torch.as_tensor(wv, dtype=w.dtype, device=w.device),
            torch.as_tensor(bv, dtype=w.dtype, device=w.device), after, before)


def onto_vertex(result, X: Tensor, y: Tensor, s: Tensor, tau: float, objective, lower: float, zero_sum: float,
                weight_sum: float, scale: float, tol: float, residual: Tensor | None = None,
                value: float | None = None) -> None:
    """Replace ``result``'s theta by the vertex next to it when no worse; re-certify with ``lower``.
    ``residual`` and ``value``: the solver's residuals and objective at theta, when it has them."""
    theta = result.theta.to(torch.float64)
    lam = objective.penalty.l1 * weight_sum / scale
    if result.theta.dtype != torch.float64:  # theta was rounded: its value is not the solver's
        value = None
    w, b, value, before = vertex(X, y, s, tau, lam, objective.fit_intercept, theta[:-1], theta[-1],
                                 residual, value)
    if value == before and bool((w == theta[:-1]).all()):
        return
    result.theta = torch.cat([w, b.reshape(1)]).to(result.theta.dtype)
    denom = max(value, GAP_FLOOR * zero_sum)
    result.gap = relative_gap(value, max(lower, 0.0), denom) if denom > 0 else 0.0
    result.converged = result.gap <= tol
    if result.history.loss:
        result.history.loss[-1] = scale * value / weight_sum
        result.history.gap[-1] = result.gap
    result.info["crossover"] = 1


__all__ = ["vertex", "onto_vertex"]
