"""L-BFGS and the Huber Newton solver: against independent optima, weights, limits, sklearn's formulation."""
import numpy as np
import pytest
import scipy.optimize

import gradfit
from gradfit.solvers import SolverMismatch


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(21)
    X = rng.normal(size=(300, 4)) * [1.0, 30.0, 0.02, 5.0] + [0.0, 100.0, 1.0, -5.0]
    y = X @ [1.0, 0.05, 40.0, -0.3] + 2.0 + rng.standard_t(2, size=300)
    return X, y


def huber_objective(X, y, delta, l2=0.0, w=None):
    """F(theta) and its gradient in numpy: the formula of the docs, independently of gradfit."""
    s = np.ones(len(y)) if w is None else w

    def f(theta):
        r = y - X @ theta[:-1] - theta[-1]
        a = np.abs(r)
        rho = np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))
        psi = np.clip(r, -delta, delta) * s
        g = np.r_[-(X.T @ psi), -psi.sum()] / s.sum()
        g[:-1] += l2 * theta[:-1]
        return s @ rho / s.sum() + 0.5 * l2 * theta[:-1] @ theta[:-1], g
    return f


def coef(m):
    return np.r_[m.coef_, m.intercept_]


@pytest.mark.parametrize("l2", [0.0, 0.05])
def test_newton_reaches_the_huber_optimum(data, l2):
    X, y = data
    f = huber_objective(X, y, 1.0, l2)
    m = gradfit.fit(X, y, loss="huber", huber_scale="absolute", delta=1.0, solver="newton", penalty="l2", alpha=l2, tol=1e-14)
    x0 = coef(gradfit.fit(X, y, solver="exact"))
    ref = scipy.optimize.minimize(f, x0, jac=True, method="BFGS", options={"gtol": 1e-12, "maxiter": 10000})
    assert f(coef(m))[0] <= ref.fun * (1 + 1e-12)
    assert np.abs(f(coef(m))[1]).max() < 1e-9
    assert m.converged_ and m.n_iter_ <= 20 and m.gap_ < 1e-13


def test_lbfgs_matches_newton_on_huber(data):
    X, y = data
    n = gradfit.fit(X, y, loss="huber", huber_scale="absolute", delta=1.0, solver="newton")
    l = gradfit.fit(X, y, loss="huber", huber_scale="absolute", delta=1.0, solver="lbfgs", tol=1e-12)
    assert abs(l.final_loss_ - n.final_loss_) <= 1e-9 * n.final_loss_
    assert np.allclose(coef(l), coef(n), rtol=1e-4, atol=1e-6)


def test_lbfgs_squared_loss_reaches_gap_1e_6_despite_scales(data):
    X, y = data
    e = gradfit.fit(X, y, solver="exact")
    l = gradfit.fit(X, y, solver="lbfgs", tol=1e-10)
    assert (l.final_loss_ - e.final_loss_) / e.final_loss_ <= 1e-6
    assert l.gap_ <= 1e-6 and l.converged_


def test_lbfgs_ridge_and_no_intercept(data):
    X, y = data
    e = gradfit.fit(X, y, solver="exact", penalty="l2", alpha=0.01, fit_intercept=False)
    l = gradfit.fit(X, y, solver="lbfgs", penalty="l2", alpha=0.01, fit_intercept=False, tol=1e-12)
    assert l.intercept_ == 0.0
    assert abs(l.final_loss_ - e.final_loss_) <= 1e-9 * e.final_loss_


@pytest.mark.parametrize("solver", ["newton", "lbfgs"])
def test_sample_weights_equal_repeated_rows(data, solver):
    X, y = data
    counts = np.random.default_rng(2).integers(0, 3, size=len(y))
    a = gradfit.fit(X, y, sample_weight=counts.astype(float), loss="huber", huber_scale="absolute", solver=solver, tol=1e-12)
    b = gradfit.fit(np.repeat(X, counts, 0), np.repeat(y, counts), loss="huber", huber_scale="absolute", solver=solver, tol=1e-12)
    assert np.allclose(coef(a), coef(b), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("solver", ["newton", "lbfgs"])
def test_huber_with_huge_delta_is_least_squares(data, solver):
    X, y = data
    e = gradfit.fit(X, y, solver="exact")
    h = gradfit.fit(X, y, loss="huber", huber_scale="absolute", delta=1e9, solver=solver, tol=1e-14)
    assert np.allclose(coef(h), coef(e), rtol=1e-6, atol=1e-9)


def test_newton_without_intercept(data):
    X, y = data
    f = huber_objective(X, y, 1.0)
    m = gradfit.fit(X, y, loss="huber", huber_scale="absolute", delta=1.0, solver="newton", fit_intercept=False)
    assert m.intercept_ == 0.0
    g = f(coef(m))[1]
    assert np.abs(g[:-1]).max() < 1e-9


def sklearn_objective(X, y, w, b, sigma, eps, alpha=0.0):
    z = np.abs(y - X @ w - b) / sigma
    return np.sum(sigma + sigma * np.where(z <= eps, z * z, 2 * eps * z - eps * eps)) + alpha * w @ w


def test_scale_option_is_sklearn_huber_formulation(data):
    from sklearn.linear_model import HuberRegressor
    X, y = data
    Xs = (X - X.mean(0)) / X.std(0)  # keep sklearn's L-BFGS-B well conditioned
    h = HuberRegressor(epsilon=1.35, alpha=0.0, tol=1e-10, max_iter=5000).fit(Xs, y)
    m = gradfit.fit(Xs, y, loss="huber", delta=1.35, solver="newton")  # huber_scale="joint", the default
    ours = sklearn_objective(Xs, y, m.coef_, m.intercept_, m.info["scale"], 1.35)
    theirs = sklearn_objective(Xs, y, h.coef_, h.intercept_, h.scale_, 1.35)
    assert ours <= theirs * (1 + 1e-10)
    assert np.allclose(m.coef_, h.coef_, rtol=1e-4, atol=1e-4)
    assert abs(m.info["scale"] - h.scale_) < 1e-4 * h.scale_


def test_mismatches_are_refused():
    X, y = np.ones((5, 1)), np.arange(5.0)
    with pytest.raises(SolverMismatch, match="lbfgs.*absolute"):
        gradfit.fit(X, y, loss="l1", solver="lbfgs")
    with pytest.raises(SolverMismatch, match="huber"):
        gradfit.fit(X, y, solver="newton")


def test_auto_picks_newton_for_huber_and_exact_for_squared(data):
    X, y = data
    assert gradfit.fit(X, y, loss="huber", huber_scale="absolute").solver == "newton"
    assert gradfit.fit(X, y).solver == "exact"


def test_newton_float32_data(data):
    X, y = data
    m32 = gradfit.fit(X.astype(np.float32), y.astype(np.float32), loss="huber", huber_scale="absolute", dtype="float32")
    m64 = gradfit.fit(X.astype(np.float32).astype(float), y.astype(np.float32).astype(float), loss="huber", huber_scale="absolute")
    assert np.allclose(coef(m32), coef(m64), rtol=1e-4, atol=1e-5)
