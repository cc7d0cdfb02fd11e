"""Sparse least squares / ridge by conjugate gradients on the normal equations (issue 16): chosen
automatically when the sparse Gram would be big, certified, never densifying X."""
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import gradfit
from gradfit.solvers.krylov import gram_is_big

RNG = np.random.default_rng(3)
N, P = 3000, 700
X = sp.random(N, P, density=0.01, format="csr", random_state=7)
COEF = RNG.normal(size=P)
W = RNG.uniform(0.5, 2.0, N)
Y = X @ COEF + 0.1 * RNG.normal(size=N) + 2.0


def test_wide_sparse_design_takes_cg_and_matches_the_dense_exact_solution():
    assert gram_is_big(X) and not gram_is_big(sp.random(N, 20, density=0.1, format="csr", random_state=1))
    for alpha, weight in [(0.0, None), (1e-3, W)]:
        model = gradfit.fit(X, Y, penalty="l2" if alpha else None, alpha=alpha, sample_weight=weight, tol=1e-10)
        ref = gradfit.fit(X.toarray(), Y, penalty="l2" if alpha else None, alpha=alpha, sample_weight=weight)
        assert model.solver == "cg" and model.converged_ and model.gap_ <= 1e-10
        assert model.info["certificate"].startswith("rigorous" if alpha else "estimated")
        np.testing.assert_allclose(model.coef_, ref.coef_, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(model.intercept_, ref.intercept_, atol=1e-6)


def test_cg_stopped_early_is_not_called_converged():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = gradfit.fit(X, Y, penalty="l2", alpha=1e-3, solver="cg", epochs=2, tol=1e-12)
    assert not model.converged_ and model.gap_ > 1e-12
    assert any("gap" in str(w.message) or "converge" in str(w.message) for w in caught)


def test_cg_by_name_on_a_dense_design_is_the_same_fit():
    sparse, dense = (gradfit.fit(A, Y, penalty="l2", alpha=1e-3, solver="cg", tol=1e-12) for A in (X, X.toarray()))
    assert dense.solver == "cg" and dense.converged_
    np.testing.assert_allclose(dense.coef_, sparse.coef_, rtol=1e-7, atol=1e-8)


def test_ridge_dropin_on_sparse_wide_design_is_no_worse_than_scikit_learn():
    sk = pytest.importorskip("sklearn.linear_model")
    from gradfit.sklearn import Ridge
    ours, theirs = Ridge(alpha=1.0).fit(X, Y), sk.Ridge(alpha=1.0).fit(X, Y)

    def objective(e):
        r = Y - X @ e.coef_ - e.intercept_
        return r @ r + e.coef_ @ e.coef_
    assert ours.model_.solver == "cg" and ours.converged_
    assert objective(ours) <= objective(theirs) * (1 + 1e-12)


def test_cg_that_does_not_certify_within_its_budget_falls_back_to_the_exact_gram_route(monkeypatch):
    import gradfit.solvers.krylov as krylov
    monkeypatch.setattr(krylov, "CG_MIN_PASSES", 1)
    monkeypatch.setattr(krylov, "CG_MAX_PASSES", 1)  # one CG step: far from a certificate
    model = gradfit.fit(X, Y, tol=1e-10)
    ref = gradfit.fit(X.toarray(), Y)
    assert model.solver == "exact" and model.converged_
    np.testing.assert_allclose(model.coef_, ref.coef_, rtol=1e-8, atol=1e-8)
