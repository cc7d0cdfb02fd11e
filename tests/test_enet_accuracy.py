"""Default settings reach the exact optimum (issue 14, item 4): lasso / elastic net by cd and prox
agree with scikit-learn (tol 1e-12) to >= 6 significant digits with the same support, prox's
intercept included, and the Huber default (newton) is exact."""
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_diabetes
from sklearn.linear_model import ElasticNet

import gradfit


@pytest.fixture(scope="module")
def diabetes():
    return load_diabetes(return_X_y=True)


def significant_digits(ours, ref):
    ours, ref = np.asarray(ours, float), np.asarray(ref, float)
    nz = ref != 0
    return -np.log10(np.max(np.abs(ours[nz] - ref[nz]) / np.abs(ref[nz])) + 1e-300)


@pytest.mark.parametrize("solver", ["auto", "cd", "prox"])
@pytest.mark.parametrize("l1_ratio", [0.5, 1.0])
def test_default_elastic_net_matches_scikit_learn(diabetes, solver, l1_ratio):
    X, y = diabetes
    ref = ElasticNet(alpha=0.01, l1_ratio=l1_ratio, tol=1e-12, max_iter=100_000).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a default fit must converge
        m = gradfit.fit(X, y, solver=solver, alpha=0.02, l1_ratio=l1_ratio)  # ours: r^2, so 2x sklearn's alpha
    assert m.converged_
    # was (l1_ratio 0.5): cd 2-4 digits, a zero coefficient at 0.0014; prox intercept 152.12714
    assert np.array_equal(m.coef_ == 0, ref.coef_ == 0)
    assert significant_digits(m.coef_, ref.coef_) >= 6
    assert significant_digits([m.intercept_], [ref.intercept_]) >= 6


def test_prox_intercept_with_uncentred_columns(diabetes):
    X, y = diabetes
    X = X * [1, 10, 100, 1, 1, 1, 1, 1, 1, 1] + 5.0  # shifted and rescaled: the intercept moves a lot
    ref = ElasticNet(alpha=0.01, l1_ratio=0.5, tol=1e-12, max_iter=100_000).fit(X, y)
    m = gradfit.fit(X, y, solver="prox", alpha=0.02, l1_ratio=0.5)
    assert significant_digits([m.intercept_], [ref.intercept_]) >= 6
    assert significant_digits(m.coef_, ref.coef_) >= 6


def test_default_huber_is_exact(diabetes):
    X, y = diabetes
    delta = 30.0
    m = gradfit.fit(X, y, loss="huber", delta=delta, huber_scale="absolute")  # delta in units of y
    assert m.solver == "newton" and m.converged_
    # optimality with the active set the fit found: the normal equations of the quadratic rows plus
    # delta * sign of the others, solved directly; the fit must be their solution to 6+ digits
    A = np.c_[X, np.ones(len(X))]
    theta = np.r_[m.coef_, m.intercept_]
    r = y - A @ theta
    inside = np.abs(r) <= delta
    rhs = A[inside].T @ y[inside] + delta * A[~inside].T @ np.sign(r[~inside])
    exact = np.linalg.solve(A[inside].T @ A[inside], rhs)
    assert np.array_equal(np.abs(y - A @ exact) <= delta, inside)
    assert significant_digits(theta, exact) >= 6
