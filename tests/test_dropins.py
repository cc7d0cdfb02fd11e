"""gradfit.sklearn: LinearRegression, Ridge, Lasso, ElasticNet with scikit-learn's parameters and
objectives (issue 16), and patch()/unpatch()."""
import numpy as np
import pytest

sk = pytest.importorskip("sklearn.linear_model")
from sklearn.datasets import load_diabetes  # noqa: E402

import gradfit.sklearn as gs  # noqa: E402

X, Y = load_diabetes(return_X_y=True)


def sk_objective(est, alpha=0.0, l1_ratio=1.0, ridge=False):
    r = Y - X @ est.coef_ - est.intercept_
    if ridge:
        return r @ r + alpha * est.coef_ @ est.coef_
    w = est.coef_
    return r @ r / (2 * len(Y)) + alpha * l1_ratio * np.abs(w).sum() + alpha * (1 - l1_ratio) / 2 * w @ w


@pytest.mark.parametrize("name,kwargs", [("LinearRegression", {}), ("Ridge", {"alpha": 1.0}),
                                         ("Lasso", {"alpha": 0.1}), ("ElasticNet", {"alpha": 0.02, "l1_ratio": 0.5})])
def test_same_parameters_and_an_objective_no_worse_than_sklearn(name, kwargs):
    ours, theirs = getattr(gs, name)(**kwargs), getattr(sk, name)(**kwargs)
    assert ours.get_params() == theirs.get_params()
    ours.fit(X, Y), theirs.fit(X, Y)
    alpha, ratio = kwargs.get("alpha", 0.0), kwargs.get("l1_ratio", 1.0)
    ridge = name in ("LinearRegression", "Ridge")
    f_ours, f_theirs = sk_objective(ours, alpha, ratio, ridge), sk_objective(theirs, alpha, ratio, ridge)
    assert f_ours <= f_theirs * (1 + 1e-12)
    assert ours.converged_ and ours.gap_ <= 1e-8, ours.gap_
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=1e-3, atol=0.05)


def test_lasso_agrees_with_a_converged_sklearn_to_many_digits():
    ref = sk.Lasso(alpha=0.1, tol=1e-12, max_iter=100000).fit(X, Y)
    ours = gs.Lasso(alpha=0.1).fit(X, Y)
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-6, atol=1e-6)
    assert np.array_equal(ours.coef_ == 0, ref.coef_ == 0) and ours.sparse_coef_.nnz == np.count_nonzero(ref.coef_)


@pytest.mark.parametrize("name,kwargs", [("LinearRegression", {}), ("Ridge", {"alpha": 1.0}),
                                         ("Lasso", {"alpha": 0.1}), ("ElasticNet", {"alpha": 0.02, "l1_ratio": 0.5})])
def test_positive_keeps_coefficients_non_negative_and_certifies_the_constrained_optimum(name, kwargs):
    ours = getattr(gs, name)(positive=True, **kwargs).fit(X, Y)
    theirs = getattr(sk, name)(positive=True, **kwargs)
    if name in ("Lasso", "ElasticNet"):
        theirs.set_params(tol=1e-12, max_iter=100000)
    theirs.fit(X, Y)
    free = gs.LinearRegression().fit(X, Y)
    assert ours.coef_.min() >= 0 and free.coef_.min() < 0  # the constraint binds on this data
    assert ours.converged_ and ours.gap_ <= 1e-8, ours.gap_
    alpha, ratio = kwargs.get("alpha", 0.0), kwargs.get("l1_ratio", 1.0)
    ridge = name in ("LinearRegression", "Ridge")
    assert sk_objective(ours, alpha, ratio, ridge) <= sk_objective(theirs, alpha, ratio, ridge) * (1 + 1e-10)
    # scikit-learn's lbfgs (Ridge) stops about 1e-3 short of the optimum; its nnls and tight CD do not
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=1e-2 if name == "Ridge" else 1e-5, atol=1e-3)


def test_float32_in_float32_out_and_scikit_learns_solver_rules():
    X32, Y32 = X.astype(np.float32), Y.astype(np.float32)
    for est in (gs.Ridge(), gs.Lasso(alpha=0.1), gs.LinearRegression(), gs.Ridge(positive=True)):
        est.fit(X32, Y32)
        assert est.coef_.dtype == np.float32 and est.predict(X32).dtype == np.float32
    with pytest.raises(ValueError, match="does not support positive"):
        gs.Ridge(positive=True, solver="cholesky").fit(X, Y)
    with pytest.raises(ValueError, match="only when positive=True"):
        gs.Ridge(solver="lbfgs").fit(X, Y)


def test_wide_design_gives_the_minimum_norm_coefficients_as_scikit_learn():
    rng = np.random.RandomState(0)
    Xw, yw = rng.randn(20, 50), rng.randn(20)
    ours, theirs = gs.LinearRegression().fit(Xw, yw), sk.LinearRegression().fit(Xw, yw)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, atol=1e-10)
    np.testing.assert_allclose(gs.Ridge(alpha=1e-16).fit(Xw, yw).coef_, theirs.coef_, atol=1e-8)


def test_patch_swaps_the_classes_into_sklearn_and_unpatch_restores_them():
    original = sk.Ridge
    try:
        assert set(gs.patch()) == {"LinearRegression", "Ridge", "Lasso", "ElasticNet", "QuantileRegressor",
                                   "HuberRegressor"}
        from sklearn.linear_model import Ridge
        assert Ridge is gs.Ridge and hasattr(Ridge().fit(X, Y), "gap_")
    finally:
        gs.unpatch()
    from sklearn.linear_model import Ridge
    assert Ridge is original
    with gs.patched(["Lasso"]):
        assert sk.Lasso is gs.Lasso and sk.Ridge is original
    assert sk.Lasso is not gs.Lasso
