"""The CG route for wide sparse designs says what the exact Gram route says about a singular design
(constant, duplicated and one-hot columns, more coefficients than rows), and returns the same
minimum-norm coefficients, from O(nnz) checks instead of the p x p Gram."""
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import gradfit
from gradfit.solvers.design_checks import check_sparse_design
from gradfit.solvers.exact import SingularDesignWarning

RNG = np.random.default_rng(11)
N, P = 3000, 700


def _design(n=N, p=P, seed=5):
    return sp.random(n, p, density=0.01, format="csr", random_state=seed)


def _fit(X, y, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = gradfit.fit(X, y, **kw)
    said = [str(w.message) for w in caught if issubclass(w.category, SingularDesignWarning)]
    return model, said


def _with_columns(X, columns: dict):
    X = X.tolil()
    for j, col in columns.items():
        X[:, j] = np.asarray(col).reshape(-1, 1)
    X = X.tocsr()
    X.eliminate_zeros()
    return X


def _target(X, seed=0):
    r = np.random.default_rng(seed)
    return X @ r.normal(size=X.shape[1]) + 0.1 * r.normal(size=X.shape[0]) + 2.0


def _same_as_dense(X, y, said_sparse, model, **kw):
    ref, said_dense = _fit(X.toarray(), y, **kw)
    assert model.solver == "cg" and model.converged_, model.info
    assert bool(said_sparse) == bool(said_dense), (said_sparse, said_dense)
    np.testing.assert_allclose(model.coef_, ref.coef_, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(model.intercept_, ref.intercept_, atol=1e-6)


def test_a_well_conditioned_design_is_not_warned_about():
    X = _design()
    model, said = _fit(X, _target(X))
    assert said == [] and model.solver == "cg" and model.info["singular_columns"] == ""
    assert "not general linear dependence" in model.info["design_checks"]


def test_constant_columns_are_set_to_zero_and_named():
    X = _with_columns(_design(), {5: np.zeros(N), 9: np.full(N, 3.0)})
    y = _target(X)
    model, said = _fit(X, y)
    assert len(said) == 1 and "'x5', 'x9' constant (the intercept carries it): coefficient set to 0" in said[0]
    assert model.coef_[5] == 0 and model.coef_[9] == 0
    _same_as_dense(X, y, said, model)
    # without an intercept a column of threes is a column like any other; the empty one is still named
    model, said = _fit(X, y, fit_intercept=False)
    assert len(said) == 1 and "'x5' all zero" in said[0] and "'x9'" not in said[0]


def test_duplicated_columns_give_the_minimum_norm_solution_and_are_named():
    X = _design()
    X = _with_columns(X, {7: -2.5 * X[:, 3].toarray().ravel()})
    y = _target(X)
    model, said = _fit(X, y)
    assert len(said) == 1 and "columns 'x3', 'x7' are linearly dependent (equal up to a scale factor" in said[0]
    assert "minimum-norm" in said[0] and model.info["singular_columns"] == "'x3', 'x7'"
    _same_as_dense(X, y, said, model)
    # a ridge penalty makes the answer unique: nothing to say, and CG keeps its preconditioner
    model, said = _fit(X, y, penalty="l2", alpha=1e-3)
    assert said == [] and model.solver == "cg"


def test_more_coefficients_than_rows():
    X = _design(n=400, seed=8)
    y = _target(X)
    model, said = _fit(X, y)
    assert len(said) == 1 and "rows with positive weight (rank at most 400 of" in said[0]
    _same_as_dense(X, y, said, model)


def test_one_hot_columns_with_every_level_beside_an_intercept():
    levels = RNG.integers(0, 600, N)
    levels[:600] = np.arange(600)  # every level seen
    onehot = sp.csr_matrix((np.ones(N), (np.arange(N), levels)), shape=(N, 600))
    X = sp.hstack([onehot, _design(p=150, seed=2)], format="csr")
    y = _target(X)
    model, said = _fit(X, y)
    assert len(said) == 1 and "indicator columns adding up to the same value in every row" in said[0]
    assert "drop one level of each category" in said[0]
    assert "'x0', 'x1'" in said[0] and "and 580 more" in said[0]  # 600 names are shortened
    _same_as_dense(X, y, said, model)
    # drop one level (the reference): identified, and no word about it
    model, said = _fit(X[:, 1:], y)
    assert said == [] and model.solver == "cg"


def test_zero_weight_rows_do_not_count():
    X = _design()
    w = np.ones(N)
    w[:100] = 0.0
    col = np.zeros(N)
    col[:100] = RNG.normal(size=100)  # values only where the weight is 0
    X = _with_columns(X, {4: col})
    found = check_sparse_design(X, w, intercept=True)
    assert found.constant.tolist() == [4] and found.rows == N - 100
    model, said = _fit(X, _target(X), sample_weight=w)
    assert len(said) == 1 and "'x4' constant" in said[0] and model.coef_[4] == 0


def test_other_losses_hear_what_the_checks_proved():
    X = _design()
    X = _with_columns(X, {7: X[:, 3].toarray().ravel()})
    _, said = _fit(X, _target(X), loss="huber", tol=1e-6)
    assert any("'x3', 'x7' are linearly dependent" in s and "not identified" in s for s in said), said


@pytest.mark.parametrize("scale", [1.0, -3.0, 1e-200])
def test_checks_find_exactly_the_planted_duplicates(scale):
    X = _design(p=900, seed=4)
    near = X[:, 21].toarray().ravel()
    near[near.nonzero()[0][0]] *= 1 + 1e-9  # one value off by 1e-9: not a duplicate
    X = _with_columns(X, {10: scale * X[:, 20].toarray().ravel(), 11: near,
                          12: scale * X[:, 30].toarray().ravel() * (1 + 1e-6), 13: X[:, 30].toarray().ravel()})
    found = check_sparse_design(X, None, intercept=True)
    assert found.groups == [[10, 20], [12, 13, 30]] or found.groups == [[12, 13, 30], [10, 20]], found.groups
    assert found.constant.size == 0 and found.trap == []
