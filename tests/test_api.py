"""gradfit.fit: inputs, history, predictions, and training that does not silently fail."""

import numpy as np
import pandas as pd
import pytest
import torch

import gradfit
from gradfit import ConvergenceWarning, DivergenceError


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3))
    y = X @ np.array([1.5, -2.0, 0.5]) + 3.0 + 0.1 * rng.normal(size=400)
    return X, y


def ols(X, y):
    A = np.c_[X, np.ones(len(X))]
    return np.linalg.lstsq(A, y, rcond=None)[0]


def test_fit_numpy_pandas_torch_and_lists_agree(data):
    X, y = data
    ref = ols(X, y)
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    inputs = [(X, y), (df, pd.Series(y, name="target")), (torch.tensor(X), torch.tensor(y)),
              (X.tolist(), y.tolist())]
    for Xi, yi in inputs:
        m = gradfit.fit(Xi, yi)
        np.testing.assert_allclose(np.r_[m.coef_, m.intercept_], ref, rtol=1e-10, atol=1e-12)
    m = gradfit.fit(df, pd.Series(y, name="target"))
    assert m.feature_names_in_ == ["a", "b", "c"] and m.target_name == "target"


def test_gradient_descent_history_and_path(data):
    X, y = data
    m = gradfit.fit(X, y, optimizer="sgd", lr=0.1, epochs=300, tol=1e-12)
    h = m.history_
    assert m.converged_ and 30 < m.n_iter_ < 300
    assert len(h.loss) == m.n_iter_ + 1 and h.path_array.shape == (m.n_iter_ + 1, 4)
    assert all(a >= b for a, b in zip(h.loss, h.loss[1:]))  # full-batch GD on a quadratic: monotone
    # the last path entry is the fitted model
    np.testing.assert_allclose(h.path_array[-1], np.r_[m.coef_, m.intercept_])
    np.testing.assert_allclose(np.r_[m.coef_, m.intercept_], ols(X, y), atol=1e-4)


def test_predict_and_load_round_trip(tmp_path, data):
    X, y = data
    m = gradfit.fit(pd.DataFrame(X, columns=list("abc")), y)
    np.testing.assert_allclose(m.predict(X), np.c_[X, np.ones(len(X))] @ np.r_[m.coef_, m.intercept_])
    m.save(tmp_path / "m.json")
    m2 = gradfit.load(tmp_path / "m.json")
    assert m2.coef_.tolist() == m.coef_.tolist() and m2.intercept_ == m.intercept_
    shuffled = pd.DataFrame(X, columns=list("abc"))[["c", "a", "b"]]
    np.testing.assert_allclose(m2.predict(shuffled), m.predict(X), rtol=1e-13)


def test_diverging_learning_rate_stops_with_a_clear_message(data):
    X, y = data
    with pytest.raises(DivergenceError, match="smaller learning rate"):
        gradfit.fit(X * 100, y, optimizer="sgd", lr=10.0, epochs=500)


def test_slowly_growing_loss_is_divergence_too():
    x = np.linspace(-1, 1, 50)
    y = 2 * x
    # curvature 2*mean(x^2) = 0.69, so lr 3.0 is just above the stable 2/0.69 = 2.88: the loss
    # grows ~16% an epoch and would take thousands of epochs to overflow
    with pytest.raises(DivergenceError, match="grew for 20 epochs"):
        gradfit.fit(x, y, optimizer="sgd", lr=3.0, epochs=2000, fit_intercept=False)


def test_hitting_the_epoch_limit_warns(data):
    X, y = data
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        m = gradfit.fit(X, y, optimizer="sgd", lr=0.001, epochs=20)
    assert not m.converged_ and m.n_iter_ == 20


def test_no_nan_weights_ever(data):
    X, y = data
    for optimizer in ("sgd", "momentum", "nesterov"):
        with pytest.raises(DivergenceError, match="a smaller learning rate such as lr="):
            gradfit.fit(X, y, optimizer=optimizer, lr=1e3, epochs=300)


def test_unknown_names_fail_in_one_sentence(data):
    X, y = data
    with pytest.raises(ValueError, match="unknown loss"):
        gradfit.fit(X, y, loss="cubic")
    with pytest.raises(ValueError, match="unknown solver"):
        gradfit.fit(X, y, solver="magic")
    with pytest.raises(ValueError, match="minimizes only squared"):
        gradfit.fit(X, y, loss="l1", solver="exact")


@pytest.mark.parametrize("solver", ["auto", "sgd", "ipm"])
@pytest.mark.parametrize("where", [("X", 0, 0), ("X", 57, 2), ("y", 13, None)])
def test_nan_or_inf_is_named_whichever_solver_scans_first(data, solver, where):
    # the exact solver finds non-finite values in its own pass; the others scan before they start
    X, y = data[0].copy(), data[1].copy()
    name, row, col = where
    if name == "X":
        X[row, col] = np.nan
        expected = f"column 'x{col}' has a missing or infinite value at row index {row}"
    else:
        y[row] = -np.inf
        expected = f"target 'y' has a missing or infinite value at row index {row}"
    with pytest.raises(gradfit.data.batches.DataError, match=expected):
        gradfit.fit(X, y, solver=solver, loss="l1" if solver == "ipm" else "l2")
