"""One rule for penalties (issue 14, item 2): fit(), the estimators and `gradfit fit` read
penalty/alpha/l1_ratio the same way (scikit-learn's elastic net), with the same defaults, and the
CLI never ignores --alpha."""
import inspect
import json

import numpy as np
import pytest

import gradfit
from gradfit import LinearRegressor
from gradfit.cli.parser import build_parser
from gradfit.estimators import HuberRegressor, QuantileRegressor
from gradfit.problem.penalties import PENALTY_RULE, Penalty, get_penalty

rng = np.random.default_rng(14)
X = rng.normal(size=(120, 4))
Y = X @ [1.5, 0.0, -2.0, 0.05] + 1.0 + rng.normal(size=120)


def test_alpha_and_l1_ratio_mean_the_same_in_fit_and_the_estimator():
    lasso_fit = gradfit.fit(X, Y, alpha=0.1, l1_ratio=1)  # was: ridge (l1_ratio dropped)
    lasso_est = LinearRegressor(alpha=0.1, l1_ratio=1).fit(X, Y)
    assert lasso_fit.penalty == {"name": "l1", "alpha": 0.1, "l1_ratio": 1.0}
    np.testing.assert_allclose(lasso_fit.coef_, lasso_est.coef_, rtol=1e-9, atol=1e-12)
    assert gradfit.fit(X, Y, alpha=0.1).penalty["name"] == "l2" == LinearRegressor(alpha=0.1).fit(X, Y).model_.penalty["name"]


@pytest.mark.parametrize("name, alpha, ratio, expect", [
    (None, 0.3, None, Penalty(0.3, 0.0)), (None, 0.3, 0.4, Penalty(0.3, 0.4)), ("l2", 0.3, None, Penalty(0.3, 0.0)),
    ("ridge", 0.3, 0.0, Penalty(0.3, 0.0)), ("l1", 0.3, None, Penalty(0.3, 1.0)), ("lasso", 0.3, 1, Penalty(0.3, 1.0)),
    ("elasticnet", 0.3, None, Penalty(0.3, 0.5)), ("elasticnet", 0.3, 0.2, Penalty(0.3, 0.2)),
    ("none", 0.0, None, Penalty(0.0, 0.0)), (None, 0.0, None, Penalty(0.0, 0.0))])
def test_the_rule(name, alpha, ratio, expect):
    assert get_penalty(name, alpha, ratio) == expect


@pytest.mark.parametrize("name, alpha, ratio", [("none", 0.5, None), ("l2", 0.5, 1.0), ("l1", 0.5, 0.0),
                                                ("lasso", 0.5, 0.3), ("bridge", 0.5, None)])
def test_contradictions_raise(name, alpha, ratio):
    with pytest.raises(ValueError):
        get_penalty(name, alpha, ratio)
    with pytest.raises(ValueError):
        gradfit.fit(X, Y, penalty=name, alpha=alpha, l1_ratio=ratio)


def test_the_same_defaults_everywhere():
    defaults = {"fit": inspect.signature(gradfit.fit).parameters}
    # gradfit's own class; HuberRegressor and QuantileRegressor take scikit-learn's parameters and defaults
    # (issue 16: alpha=1e-4 ridge and alpha=1.0 lasso, no l1_ratio), checked in tests/test_estimator.py
    for cls in (LinearRegressor,):
        defaults[cls.__name__] = inspect.signature(cls.__init__).parameters
    for where, params in defaults.items():
        assert params["alpha"].default == 0.0 and params["l1_ratio"].default is None, where
    cli = build_parser().parse_args(["fit", "d.csv", "--target", "y"])
    assert cli.alpha == 0.0 and cli.l1_ratio is None and cli.penalty is None
    assert "alpha * (l1_ratio * ||w||_1 + (1 - l1_ratio) / 2 * ||w||_2**2)" in PENALTY_RULE


@pytest.fixture
def csv(tmp_path):
    path = tmp_path / "d.csv"
    np.savetxt(path, np.c_[X, Y], delimiter=",", header="a,b,c,d,y", comments="")
    return path


def test_cli_applies_alpha_by_the_same_rule(run_cli, csv):
    code, out, err = run_cli("fit", csv, "--target", "y", "--alpha", "10", "--json")  # was: no penalty, silently
    assert code == 0, err
    got = json.loads(out)
    assert got["penalty"] == {"name": "l2", "alpha": 10.0, "l1_ratio": 0.0}
    ref = gradfit.fit(X, Y, alpha=10.0)
    np.testing.assert_allclose(got["coef"], ref.coef_, rtol=1e-9)
    code, out, err = run_cli("fit", csv, "--target", "y", "--alpha", "0.1", "--l1-ratio", "1", "--json")
    assert code == 0 and json.loads(out)["penalty"]["name"] == "l1"


def test_cli_refuses_a_contradiction_before_reading(run_cli, tmp_path):
    missing = tmp_path / "not-there.csv"
    code, out, err = run_cli("fit", missing, "--target", "y", "--penalty", "none", "--alpha", "10")
    assert code == 2 and "--alpha" in err and "contradicts" in err and not out
