"""The exact least-squares solver: against numpy, weights, ridge, streaming, singular designs."""
import warnings

import numpy as np
import pytest

import gradfit
from gradfit.data.arrays import as_batches
from gradfit.solvers.exact import SingularDesignWarning


def lstsq(X, y, w=None, intercept=True):
    Z = np.c_[X, np.ones(len(X))] if intercept else X
    s = np.ones(len(X)) if w is None else np.sqrt(w)
    return np.linalg.lstsq(Z * s[:, None], y * s, rcond=None)[0]


@pytest.fixture
def data():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(400, 4)) * [1.0, 5.0, 0.1, 2.0] + [10.0, -3.0, 0.0, 100.0]
    y = X @ [1.0, -2.0, 3.0, 0.5] + 4.0 + rng.normal(size=400)
    return X, y


def coef(m):
    return np.r_[m.coef_, m.intercept_]


def test_matches_lstsq_and_reports_conditioning(data):
    X, y = data
    m = gradfit.fit(X, y, solver="exact")
    assert np.allclose(coef(m), lstsq(X, y), rtol=1e-11, atol=1e-11)
    assert m.converged_ and m.gap_ == 0.0
    assert m.info["method"] == "cholesky" and 1.0 <= m.info["condition_number"] < 10
    assert m.info["rank"] == 5 and m.info["singular_columns"] == ""
    assert abs(m.final_loss_ - np.mean((y - X @ m.coef_ - m.intercept_) ** 2)) < 1e-10


def test_without_intercept(data):
    X, y = data
    m = gradfit.fit(X, y, solver="exact", fit_intercept=False)
    assert m.intercept_ == 0.0
    assert np.allclose(m.coef_, lstsq(X, y, intercept=False), rtol=1e-10)


def test_sample_weights_equal_repeated_rows(data):
    X, y = data
    counts = np.random.default_rng(0).integers(0, 4, size=len(y))
    m = gradfit.fit(X, y, sample_weight=counts.astype(float), solver="exact")
    r = gradfit.fit(np.repeat(X, counts, 0), np.repeat(y, counts), solver="exact")
    assert np.allclose(coef(m), coef(r), rtol=1e-10)
    assert np.allclose(coef(m), lstsq(X, y, counts.astype(float)), rtol=1e-10)
    assert abs(m.final_loss_ - r.final_loss_) < 1e-10 * r.final_loss_


def test_ridge_closed_form(data):
    X, y = data
    alpha = 0.3
    m = gradfit.fit(X, y, penalty="l2", alpha=alpha, solver="exact")
    # F = mean r^2 + alpha/2 ||w||^2  =>  (Xc'Xc + n*alpha/2 I) w = Xc'yc
    Xc, yc = X - X.mean(0), y - y.mean()
    w = np.linalg.solve(Xc.T @ Xc + len(y) * alpha / 2 * np.eye(4), Xc.T @ yc)
    assert np.allclose(m.coef_, w, rtol=1e-10)
    assert np.isclose(m.intercept_, y.mean() - X.mean(0) @ w, rtol=1e-10)


def test_streamed_batches_give_the_in_memory_answer(data):
    X, y = data
    w = np.random.default_rng(1).uniform(0.5, 2.0, len(y))
    full = gradfit.fit(X, y, sample_weight=w, solver="exact")
    streamed = gradfit.fit(as_batches(X, y, w, batch_size=37), solver="exact")
    assert np.allclose(coef(full), coef(streamed), rtol=1e-11)


def test_float32_data_is_solved_in_float64(data):
    X, y = data
    m = gradfit.fit(X.astype(np.float32), y.astype(np.float32), dtype="float32", solver="exact")
    ref = lstsq(X.astype(np.float32).astype(float), y.astype(np.float32).astype(float))
    assert np.allclose(coef(m), ref, rtol=1e-5)


def test_constant_and_duplicated_columns_give_minimum_norm_and_a_warning(data):
    X, y = data
    Xd = np.c_[X, X[:, 1], np.full(len(y), 7.0)]  # x4 duplicates x1, x5 is constant
    with pytest.warns(SingularDesignWarning, match="'x1', 'x4'.*minimum-norm") as rec:
        m = gradfit.fit(Xd, y, solver="exact")
    assert "'x5'" in str(rec[0].message) and "constant" in str(rec[0].message)
    assert m.info["rank"] == 5 and m.info["singular_columns"] == "'x1', 'x4', 'x5'"
    ref = lstsq(X, y)
    assert np.allclose(m.coef_[[1, 4]], ref[1] / 2, rtol=1e-9)  # equal split = minimum norm
    assert m.coef_[5] == 0.0
    assert np.allclose(np.delete(m.coef_, [1, 4, 5]), np.delete(ref[:4], 1), rtol=1e-9)
    assert np.isclose(m.intercept_, ref[4], rtol=1e-9)


def test_minimum_norm_is_in_original_units(data):
    X, y = data
    Xd = np.c_[X, 2.0 * X[:, 0]]
    with pytest.warns(SingularDesignWarning):
        m = gradfit.fit(Xd, y, solver="exact")
    np_minnorm = np.linalg.lstsq(np.c_[Xd - Xd.mean(0)], y - y.mean(), rcond=None)[0]
    assert np.allclose(m.coef_, np_minnorm, rtol=1e-8)


def test_nearly_singular_design_is_reported():
    x = np.linspace(1, 2, 300)
    X = np.vander(x, 11, increasing=True)[:, 1:]
    with pytest.warns(SingularDesignWarning, match="nearly singular.*after about .* digits"):
        m = gradfit.fit(X, np.sin(x), solver="exact")
    assert m.info["condition_number"] > 1e8 and m.info["method"].startswith("qr")


def test_ridge_makes_a_singular_design_solvable_without_warning(data):
    X, y = data
    Xd = np.c_[X, X[:, 0]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = gradfit.fit(Xd, y, penalty="l2", alpha=0.1, solver="exact")
    assert np.isclose(m.coef_[0], m.coef_[4], rtol=1e-8)


def test_underdetermined_problem_gives_minimum_norm():
    rng = np.random.default_rng(5)
    X, y = rng.normal(size=(4, 7)), rng.normal(size=4)
    with pytest.warns(SingularDesignWarning):
        m = gradfit.fit(X, y, solver="exact")
    ref = np.linalg.lstsq(X - X.mean(0), y - y.mean(), rcond=None)[0]
    assert np.allclose(m.coef_, ref, rtol=1e-8, atol=1e-10)
    assert np.allclose(X @ m.coef_ + m.intercept_, y, atol=1e-9)


def test_ridge_with_vanishing_alpha_is_least_squares(data):
    X, y = data
    m = gradfit.fit(X, y, penalty="l2", alpha=1e-14, solver="exact")
    assert np.allclose(coef(m), lstsq(X, y), rtol=1e-9)
