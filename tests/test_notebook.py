"""Notebook-native (issue 17): short reprs and HTML for models and summaries, coefficients() with the
intercept, est.summary() on the estimators."""
import pickle

import numpy as np
import pytest

import gradfit


def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3))
    return X, X @ [1.0, -2.0, 0.5] + 3 + rng.normal(size=400)


def test_reprs_are_short_and_html_is_a_table():
    X, y = data()
    sgd = gradfit.fit(X, y, solver="sgd", lr=0.05, epochs=300, warn=False)  # a long history, every timing
    assert len(repr(sgd)) < 300 and "sgd" in repr(sgd) and "x2" in repr(sgd)
    html = sgd._repr_html_()
    assert "<table>" in html and "intercept" in html and len(html) < 2000
    wide = gradfit.fit(np.random.default_rng(1).normal(size=(50, 20)), np.arange(50.0))
    assert "(14 more)" in repr(wide) and len(repr(wide)) < 400
    s = gradfit.fit(X, y).summary(X, y)
    assert len(repr(s)) < 200 and "<table>" in s._repr_html_() and "<script" not in s._repr_html_()


def test_coefficients_include_the_intercept_when_there_is_one():
    X, y = data()
    assert list(gradfit.fit(X, y).coefficients()) == ["x0", "x1", "x2", "intercept"]
    assert list(gradfit.fit(X, y, fit_intercept=False).coefficients()) == ["x0", "x1", "x2"]


@pytest.mark.parametrize("cls", ["LinearRegressor", "HuberRegressor"])
def test_estimator_summary_without_arguments_and_not_pickled(cls):
    pytest.importorskip("sklearn")
    X, y = data()
    # scikit-learn's HuberRegressor defaults to alpha=1e-4 (a ridge penalty); a summary needs none
    est = getattr(gradfit, cls)(**({"alpha": 0.0} if cls == "HuberRegressor" else {})).fit(X, y)
    s = est.summary()
    again = est.model_.summary(X, y)
    assert np.allclose(s.std_err, again.std_err, rtol=1e-12) and s.method == again.method
    restored = pickle.loads(pickle.dumps(est))
    with pytest.raises(ValueError, match="pass X, y"):
        restored.summary()
    assert np.allclose(restored.summary(X, y).std_err, s.std_err, rtol=1e-12)
