"""scipy.sparse X: the same fits as dense X, for every solver that takes it, without densifying."""
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import gradfit
from gradfit.data.batches import DataError
from gradfit.data.sparse import SparseRows

RNG = np.random.default_rng(0)
N, P = 400, 8
X_SP = sp.random(N, P, density=0.3, format="csr", random_state=1) * 3
Y = X_SP @ RNG.normal(size=P) + RNG.standard_t(3, size=N) + 2
W = RNG.uniform(0.5, 2.0, N)

# (loss, penalty, solver, coefficient tolerance): exact methods agree to rounding; the iterative
# ones stop at tol=1e-12 on the objective, so coefficients agree to about sqrt of that
COMBOS = [
    ("l2", None, "exact", 1e-12), ("l2", "l2", "exact", 1e-12), ("l2", "l1", "cd", 1e-6),
    ("l2", "elasticnet", "cd", 1e-6), ("l2", "l1", "prox", 1e-6), ("l2", None, "gd", 1e-6),
    ("l2", None, "lbfgs", 1e-6), ("huber", None, "newton", 1e-10), ("huber", "l2", "lbfgs", 1e-6),
    ("huber", "l1", "cd", 1e-6), ("huber", "elasticnet", "prox", 1e-6), ("l1", None, "ipm", 1e-9),
    ("quantile", "l1", "ipm", 1e-9),
]


@pytest.mark.parametrize("loss,penalty,solver,tol", COMBOS)
@pytest.mark.parametrize("variant", ["plain", "weighted-no-intercept"])
def test_sparse_equals_dense(loss, penalty, solver, tol, variant):
    kw = dict(loss=loss, penalty=penalty, alpha=0.05 if penalty else 0.0, solver=solver, tol=1e-12,
              epochs=20000, quantile=0.3)
    if loss == "huber" and solver != "newton":  # the gradient solvers fit Huber's threshold in units of y
        kw.update(huber_scale="absolute")
    if variant != "plain":
        kw.update(sample_weight=W, fit_intercept=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = gradfit.fit(X_SP, Y, **kw)
        b = gradfit.fit(X_SP.toarray(), Y, **kw)
    assert a.solver == b.solver == solver
    assert a.converged_ and b.converged_
    np.testing.assert_allclose(a.coef_, b.coef_, atol=tol, rtol=0)
    assert abs(a.intercept_ - b.intercept_) <= tol
    assert a.final_loss_ == pytest.approx(b.final_loss_, rel=1e-9) if hasattr(a, "final_loss_") else True


def test_sparse_cd_on_csc_columns_many_features():
    """Above gram_max, lasso runs coordinate descent on the CSC columns."""
    X = sp.random(2000, 30, density=0.1, format="csc", random_state=2) * 3
    y = X @ RNG.normal(size=30) + RNG.normal(size=2000)
    kw = dict(penalty="elasticnet", alpha=0.05, solver="cd", tol=1e-12, options={"gram_max": 0})
    a, b = gradfit.fit(X, y, **kw), gradfit.fit(X.toarray(), y, **kw)
    assert a.info["method"] == "residual-sparse" and a.converged_
    np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-6)


def test_stochastic_solvers_take_sparse_minibatches():
    kw = dict(solver="sgd", batch_size=50, epochs=5, lr=0.01, seed=3, warn=False)
    a, b = gradfit.fit(X_SP, Y, **kw), gradfit.fit(X_SP.toarray(), Y, **kw)
    np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-12)


FORMATS = [sp.csr_matrix, sp.csc_matrix, sp.coo_matrix, sp.csr_array, sp.csc_array, sp.coo_array]


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.__name__)
def test_estimators_and_predict_take_every_format(fmt):
    from gradfit import HuberRegressor, LinearRegressor, QuantileRegressor
    X = fmt(X_SP)
    dense = X_SP.toarray()
    for est in (LinearRegressor(), LinearRegressor(penalty="l1", alpha=0.01),
                QuantileRegressor(quantile=0.3), HuberRegressor()):
        a = est.fit(X, Y, sample_weight=W)
        coef, pred = a.coef_.copy(), a.predict(X)
        b = est.fit(dense, Y, sample_weight=W)
        np.testing.assert_allclose(coef, b.coef_, atol=1e-7)
        np.testing.assert_allclose(pred, b.predict(dense), atol=1e-7)
    model = gradfit.fit(X, Y)
    np.testing.assert_allclose(model.predict(X), model.predict(dense), atol=1e-12)


def test_partial_fit_on_sparse_chunks_is_exact():
    from gradfit import LinearRegressor
    est = LinearRegressor()
    for a in range(0, N, 150):
        est.partial_fit(X_SP[a:a + 150], Y[a:a + 150], sample_weight=W[a:a + 150])
    full = LinearRegressor().fit(X_SP.toarray(), Y, sample_weight=W)
    np.testing.assert_allclose(est.coef_, full.coef_, atol=1e-10)
    assert est.intercept_ == pytest.approx(full.intercept_, abs=1e-10)


def test_partial_fit_stochastic_on_sparse():
    from gradfit import LinearRegressor
    a = LinearRegressor(loss="huber", huber_scale="absolute", batch_size=50)
    a.partial_fit(X_SP, Y)
    assert np.all(np.isfinite(a.coef_)) and a.coef_.shape == (P,)


@pytest.mark.parametrize("loss,cov", [("l2", "nonrobust"), ("l2", "HC3"), ("huber", "nonrobust")])
def test_summary_on_sparse(loss, cov):
    model = gradfit.fit(X_SP, Y, loss=loss)
    a, b = model.summary(X_SP, Y, cov_type=cov), model.summary(X_SP.toarray(), Y, cov_type=cov)
    np.testing.assert_allclose(a.to_dict()["cov"] if "cov" in a.to_dict() else a.cov,
                               b.to_dict()["cov"] if "cov" in b.to_dict() else b.cov, rtol=1e-9, atol=1e-14)


def test_bad_value_in_sparse_names_column_and_row():
    X = X_SP.copy().tolil()
    X[17, 3] = np.nan
    with pytest.raises(DataError, match=r"column 'x3'.*row index 17"):
        gradfit.fit(X.tocsr(), Y, loss="l1")
    with pytest.raises(DataError, match=r"column 'x3'.*row index 17"):
        gradfit.fit(X.tocsr(), Y)


def _tracking(monkeypatch):
    """Record the shape of every densified block: SparseRows.dense_rows and scipy's toarray."""
    seen = []
    orig_dense = SparseRows.dense_rows

    def dense_rows(self):
        seen.append(self.shape)
        return orig_dense(self)
    monkeypatch.setattr(SparseRows, "dense_rows", dense_rows)
    for cls in (sp.csr_matrix, sp.csc_matrix, sp.coo_matrix, sp.csr_array, sp.csc_array, sp.coo_array):
        orig = cls.toarray

        def toarray(self, *args, _orig=orig, **kwargs):
            seen.append(self.shape)
            return _orig(self, *args, **kwargs)
        monkeypatch.setattr(cls, "toarray", toarray)
    return seen


@pytest.mark.parametrize("loss,penalty,solver", [c[:3] for c in COMBOS])
def test_no_dense_n_by_p(monkeypatch, loss, penalty, solver):
    n = 60_000
    X = sp.random(n, 12, density=0.05, format="csr", random_state=4)
    y = X @ np.arange(12.0) + RNG.normal(size=n)
    seen = _tracking(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scale = {"huber_scale": "absolute"} if loss == "huber" and solver != "newton" else {}
        model = gradfit.fit(X, y, loss=loss, penalty=penalty, alpha=0.01 if penalty else 0.0, solver=solver,
                            epochs=50, **scale)
        model.predict(X)
    too_big = [s for s in seen if s[0] * s[1] > n * 12 // 2]
    assert not too_big, f"densified {too_big}"


def test_shape_that_cannot_be_dense():
    """2M x 2000 dense is 32 GB: the sparse fit needs only its non-zeros (the 2000 x 2000 Gram would cost
    more than conjugate gradients here, so the exact solver takes the CG route, certified)."""
    n, p = 2_000_000, 2000
    rng = np.random.default_rng(5)
    cols = rng.integers(0, p, n)
    X = sp.csr_matrix((rng.normal(size=n), cols, np.arange(n + 1)), shape=(n, p))
    coef = rng.normal(size=p)
    y = X @ coef + 0.01 * rng.normal(size=n) + 1.0
    model = gradfit.fit(X, y)
    assert model.solver == "cg" and model.converged_ and model.gap_ <= 1e-8
    np.testing.assert_allclose(model.coef_, coef, atol=0.01)


def test_exact_wide_design_estimates_condition_from_cholesky(monkeypatch):
    """Above EIGEN_MAX_K columns the exact solver skips eigvalsh (O(k^3), minutes at 10k columns)."""
    import gradfit.solvers.exact as exact
    X = sp.random(3000, 60, density=0.05, format="csr", random_state=6)
    y = X @ RNG.normal(size=60) + RNG.normal(size=3000)
    ref = gradfit.fit(X, y, penalty="l2", alpha=1e-3)
    monkeypatch.setattr(exact, "EIGEN_MAX_K", 10)
    monkeypatch.setattr(exact.torch.linalg, "eigvalsh", None)  # would raise if called
    est = gradfit.fit(X, y, penalty="l2", alpha=1e-3)
    np.testing.assert_allclose(est.coef_, ref.coef_, atol=1e-12)
    # power iteration approaches both extreme eigenvalues from inside: a slight underestimate
    assert 0.8 * ref.info["condition_number"] <= est.info["condition_number"] <= ref.info["condition_number"] * 1.001
