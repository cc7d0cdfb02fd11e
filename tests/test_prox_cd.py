"""Lasso / elastic net by coordinate descent (cd) and FISTA (prox), checked against scikit-learn.

Conversion: our squared loss is the mean of r**2 (sklearn's is half that), so sklearn
``Lasso(alpha=a)`` / ``ElasticNet(alpha=a, l1_ratio=rho)`` equals ours with ``alpha=2a``, same l1_ratio.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize
from sklearn.linear_model import ElasticNet, Lasso

import gradfit
from gradfit.problem.losses import get_loss
from gradfit.problem.penalties import get_penalty
from gradfit.solvers import SolverMismatch, auto_name, get_solver
from streamed import Streamed  # tests/streamed.py


def data(n=400, p=8, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) * rng.uniform(0.05, 20, size=p) + rng.normal(size=p) * 5
    X[:, 1] = X[:, 0] * 0.9 + 0.1 * X[:, 1]  # correlated columns
    coef = np.r_[rng.normal(size=p // 2), np.zeros(p - p // 2)]
    y = X @ coef + 2.0 + rng.standard_t(3, size=n)
    return X, y, rng


def objective(X, y, w, b, alpha, l1_ratio, s=None, loss="squared", delta=1.35):
    s = np.ones(len(y)) if s is None else s
    r = y - X @ w - b
    rho = r * r if loss == "squared" else np.where(np.abs(r) <= delta, 0.5 * r * r, delta * (np.abs(r) - 0.5 * delta))
    return np.sum(s * rho) / s.sum() + alpha * (l1_ratio * np.abs(w).sum() + (1 - l1_ratio) / 2 * w @ w)


@pytest.mark.parametrize("solver", ["cd", "prox"])
@pytest.mark.parametrize("l1_ratio", [1.0, 0.3])
def test_matches_sklearn(solver, l1_ratio):
    X, y, rng = data()
    s = rng.uniform(0.2, 2.0, size=len(y))
    a = 0.05
    for weights, fit_intercept in ((None, True), (s, True), (None, False)):
        sk = (Lasso(alpha=a, tol=1e-15, max_iter=200000, fit_intercept=fit_intercept) if l1_ratio == 1 else
              ElasticNet(alpha=a, l1_ratio=l1_ratio, tol=1e-15, max_iter=200000, fit_intercept=fit_intercept))
        sk.fit(X, y, sample_weight=weights)
        ref = objective(X, y, sk.coef_, sk.intercept_, 2 * a, l1_ratio, weights)
        m = gradfit.fit(X, y, solver=solver, penalty="elasticnet", alpha=2 * a, l1_ratio=l1_ratio,
                        sample_weight=weights, fit_intercept=fit_intercept, epochs=20000)
        ours = objective(X, y, m.coef_, m.intercept_, 2 * a, l1_ratio, weights)
        assert m.converged_ and m.gap_ <= 1e-8
        assert ours <= ref * (1 + 1e-8) and ref <= ours * (1 + 1e-8)
        assert m.final_loss_ == pytest.approx(ours, rel=1e-10)
        # coefficients are less determined than the objective (columns 0 and 1 are correlated)
        np.testing.assert_allclose(m.coef_, sk.coef_, rtol=1e-3, atol=1e-5 * np.abs(sk.coef_).max())
        assert np.array_equal(m.coef_ == 0, np.abs(sk.coef_) < 1e-12) or solver == "prox"


def huber_reference(X, y, alpha, l1_ratio, delta):
    """min over (w+, w-, b) with w+, w- >= 0: a smooth problem for L-BFGS-B."""
    n, p = X.shape

    def f(z):
        w, b = z[:p] - z[p:2 * p], z[-1]
        r = y - X @ w - b
        a = np.abs(r)
        d = np.clip(r, -delta, delta)
        rho = np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))
        gw = -(X.T @ d) / n + alpha * (1 - l1_ratio) * w
        val = rho.mean() + alpha * (l1_ratio * z[:2 * p].sum() + (1 - l1_ratio) / 2 * w @ w)
        return val, np.r_[gw + alpha * l1_ratio, -gw + alpha * l1_ratio, -d.mean()]

    res = minimize(f, np.zeros(2 * p + 1), jac=True, method="L-BFGS-B",
                   bounds=[(0, None)] * (2 * p) + [(None, None)], options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 20000})
    return res.fun


@pytest.mark.parametrize("solver", ["cd", "prox"])
def test_huber_lasso_gap_is_a_certificate(solver):
    X, y, _ = data(300, 6, seed=4)
    X = X / X.std(0)
    ref = huber_reference(X, y, 0.1, 0.7, 1.0)
    m = gradfit.fit(X, y, loss="huber", huber_scale="absolute", delta=1.0, solver=solver, penalty="elasticnet", alpha=0.1,
                    l1_ratio=0.7, epochs=20000)
    assert m.converged_ and m.gap_ <= 1e-8
    assert m.final_loss_ <= ref * (1 + 1e-8)  # at least as good as L-BFGS-B
    # an early stop: the reported gap still bounds the distance to the optimum
    early = gradfit.fit(X, y, loss="huber", huber_scale="absolute", delta=1.0, solver=solver, penalty="elasticnet", alpha=0.1,
                        l1_ratio=0.7, epochs=3, warn=False)
    assert not early.converged_
    assert early.final_loss_ - m.final_loss_ <= early.gap_ * early.final_loss_
    assert early.final_loss_ - m.final_loss_ > 1e-3 * early.gap_ * early.final_loss_  # and it is not vacuous



@pytest.mark.parametrize("solver", ["cd", "prox"])
def test_streamed_equals_in_memory(solver):
    X, y, _ = data(300, 5, seed=7)
    kw = dict(solver=solver, penalty="l1", alpha=0.3, epochs=20000)
    a = gradfit.fit(X, y, **kw)
    b = gradfit.fit(Streamed(X, y, 37), **kw)
    assert b.gap_ <= 1e-8
    assert b.final_loss_ == pytest.approx(a.final_loss_, rel=2e-8)
    np.testing.assert_allclose(b.coef_, a.coef_, rtol=1e-5, atol=1e-7)


def test_large_alpha_gives_zero_and_ridge_agrees_with_exact():
    X, y, _ = data(200, 4, seed=1)
    m = gradfit.fit(X, y, solver="cd", penalty="l1", alpha=1e6)
    assert np.all(m.coef_ == 0) and m.intercept_ == pytest.approx(y.mean(), rel=1e-12)
    exact = gradfit.fit(X, y, solver="exact", penalty="l2", alpha=0.5)
    for solver in ("cd", "prox"):
        r = gradfit.fit(X, y, solver=solver, penalty="l2", alpha=0.5, epochs=50000)
        assert r.final_loss_ == pytest.approx(exact.final_loss_, rel=1e-8)


def test_registry():
    l1 = get_penalty("l1", 0.1)
    assert auto_name(get_loss("l2"), l1) == "cd"
    assert get_solver("prox", get_loss("huber", scale="absolute"), l1).name == "prox"
    with pytest.raises(SolverMismatch, match="minimizes only"):
        get_solver("cd", get_loss("l1"), l1)
    with pytest.raises(SolverMismatch):
        get_solver("prox", get_loss("quantile"), l1)
