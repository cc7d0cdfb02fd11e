"""gradfit's scikit-learn estimators: agreement with scikit-learn, the estimator contract in
pipelines and searches, multi-output, streaming partial_fit, and sklearn staying optional."""
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
from sklearn import linear_model as sk  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import ConvergenceWarning as SkConvergenceWarning  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import gradfit  # noqa: E402
from gradfit.estimators import EstimatorConvergenceWarning, HuberRegressor, LinearRegressor, QuantileRegressor  # noqa: E402
from gradfit.solvers import available  # noqa: E402

REL = 1e-8


def assert_rel(ours, theirs, rel=REL):
    """max |ours - theirs| <= rel * max |theirs|: 1e-8 relative to the coefficients' scale."""
    ours, theirs = np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float)
    scale = max(np.abs(theirs).max(), 1.0)
    err = np.abs(ours - theirs).max()
    assert err <= rel * scale, f"max abs difference {err:.3g} > {rel:g} * {scale:.3g}"


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(7)
    n, p = 300, 6
    X = rng.normal(size=(n, p)) * rng.uniform(0.5, 3, size=p) + rng.normal(size=p)
    w = np.array([1.5, -2.0, 0.0, 0.5, 0.0, 3.0])
    y = X @ w + 4.0 + rng.standard_t(3, size=n)
    s = rng.uniform(0.2, 2.0, size=n)
    return X, y, s


def test_matches_linear_regression(problem):
    X, y, s = problem
    for weight in (None, s):
        ours = LinearRegressor().fit(X, y, sample_weight=weight)
        ref = sk.LinearRegression().fit(X, y, sample_weight=weight)
        assert_rel(ours.coef_, ref.coef_)
        assert_rel(ours.intercept_, ref.intercept_)
        assert ours.converged_ and ours.gap_ == 0.0


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_matches_ridge(problem, fit_intercept):
    X, y, s = problem
    a = 25.0
    for weight in (None, s):
        n = len(y) if weight is None else weight.sum()
        ours = LinearRegressor(alpha=2 * a / n, fit_intercept=fit_intercept).fit(X, y, sample_weight=weight)
        ref = sk.Ridge(alpha=a, fit_intercept=fit_intercept, solver="cholesky").fit(X, y, sample_weight=weight)
        assert_rel(ours.coef_, ref.coef_)
        assert_rel(ours.intercept_, ref.intercept_)


def needs(*names):
    have = set(available())
    return pytest.mark.skipif(not have & set(names), reason=f"none of the solvers {names} is registered yet")


@needs("cd", "prox")
@pytest.mark.parametrize("l1_ratio", [1.0, 0.5])
def test_matches_lasso_and_elastic_net(problem, l1_ratio):
    X, y, _ = problem
    a = 0.3
    ref = sk.ElasticNet(alpha=a, l1_ratio=l1_ratio, tol=1e-14, max_iter=100_000).fit(X, y)
    ours = LinearRegressor(alpha=2 * a, l1_ratio=l1_ratio, tol=1e-12, epochs=100_000).fit(X, y)
    assert ours.converged_ and ours.model_.solver in ("cd", "prox")
    assert np.sum(ref.coef_ == 0) >= 1  # the problem is one where the L1 term zeroes something
    assert_rel(ours.coef_, ref.coef_)
    assert_rel(ours.intercept_, ref.intercept_)


@needs("ipm")
@pytest.mark.parametrize("q,alpha", [(0.5, 0.0), (0.8, 0.0), (0.3, 0.05)])
def test_matches_quantile_regressor(problem, q, alpha):
    X, y, s = problem
    ref = sk.QuantileRegressor(quantile=q, alpha=alpha, solver="highs").fit(X, y, sample_weight=s)
    ours = QuantileRegressor(quantile=q, alpha=alpha).fit(X, y, sample_weight=s)  # same parameters
    assert ours.converged_ and ours.model_.solver == "ipm"
    assert_rel(ours.coef_, ref.coef_)
    assert_rel(ours.intercept_, ref.intercept_)


def test_partial_fit_squared_is_exact_in_any_chunk_order(problem):
    X, y, s = problem
    full = LinearRegressor(alpha=0.01).fit(X, y, sample_weight=s)
    for order in (range(0, 300, 70), reversed(range(0, 300, 70))):
        est = LinearRegressor(alpha=0.01)
        for i in order:
            est.partial_fit(X[i:i + 70], y[i:i + 70], sample_weight=s[i:i + 70])
        assert_rel(est.coef_, full.coef_, 1e-10)
        assert_rel(est.intercept_, full.intercept_, 1e-10)
        assert est.converged_ and est.n_features_in_ == X.shape[1]


def test_partial_fit_without_intercept_and_multioutput(problem):
    X, y, _ = problem
    Y = np.column_stack([y, -2 * y + X[:, 0]])
    full = LinearRegressor(fit_intercept=False).fit(X, Y)
    est = LinearRegressor(fit_intercept=False)
    for i in range(0, 300, 100):
        est.partial_fit(X[i:i + 100], Y[i:i + 100])
    assert est.coef_.shape == (2, 6) and est.intercept_.shape == (2,)
    assert_rel(est.coef_, full.coef_, 1e-10)
    with pytest.raises(ValueError, match="target column"):
        est.partial_fit(X[:10], y[:10])
    with pytest.raises(ValueError, match="features"):
        est.partial_fit(X[:10, :3], Y[:10])


def test_partial_fit_stochastic_huber_approaches_fit():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(2000, 3))
    y = X @ np.array([1.0, -1.0, 2.0]) + 0.5 + 0.1 * rng.normal(size=2000)
    exact = LinearRegressor(loss="huber", huber_scale="absolute").fit(X, y)
    est = LinearRegressor(loss="huber", huber_scale="absolute", batch_size=50, lr=0.02, random_state=0)
    for _ in range(4):
        for i in range(0, 2000, 500):
            est.partial_fit(X[i:i + 500], y[i:i + 500])
    assert np.abs(est.coef_ - exact.coef_).max() < 0.05
    assert not est.converged_ and est.n_iter_ == 4 * 4 * 10
    assert len(est.history_.loss) == 16 and est.history_.loss[-1] < est.history_.loss[0]
    with pytest.raises(ValueError, match="stochastic solver"):
        LinearRegressor(loss="huber", huber_scale="absolute", solver="exact").partial_fit(X, y)


def test_multioutput_fits_each_column(problem):
    X, y, _ = problem
    Y = np.column_stack([y, np.sin(y), X[:, 1]])
    est = LinearRegressor().fit(X, Y)
    assert est.coef_.shape == (3, 6) and est.intercept_.shape == (3,)
    for j in range(3):
        one = LinearRegressor().fit(X, Y[:, j])
        assert_rel(est.coef_[j], one.coef_, 1e-12)
    assert est.predict(X).shape == (300, 3)
    assert len(est.model_) == 3 and len(est.history_) == 3


def test_pipeline_grid_search_and_cross_val(problem):
    X, y, _ = problem
    pipe = make_pipeline(StandardScaler(), LinearRegressor())
    scores = cross_val_score(pipe, X, y, cv=KFold(5, shuffle=True, random_state=0))
    ref = cross_val_score(make_pipeline(StandardScaler(), sk.LinearRegression()), X, y,
                          cv=KFold(5, shuffle=True, random_state=0))
    np.testing.assert_allclose(scores, ref, rtol=1e-10)
    search = GridSearchCV(pipe, {"linearregressor__alpha": [0.0, 0.1, 10.0],
                                 "linearregressor__loss": ["squared", "huber"]}, cv=3).fit(X, y)
    assert search.best_params_["linearregressor__alpha"] in (0.0, 0.1)
    assert search.best_estimator_[-1].n_features_in_ == 6


def test_contract_details(problem):
    X, y, _ = problem
    est = LinearRegressor(alpha=0.5, penalty="l2")
    with pytest.raises(NotFittedError):
        est.predict(X)
    assert est.get_params()["alpha"] == 0.5 and clone(est).get_params() == est.get_params()
    est.fit(X, y)
    assert isinstance(est.intercept_, float) and est.coef_.shape == (6,)
    assert est.score(X, y) == pytest.approx(1 - np.sum((y - est.predict(X)) ** 2) / np.sum((y - y.mean()) ** 2))
    assert not hasattr(est, "feature_names_in_")
    again = pickle.loads(pickle.dumps(est))  # scikit-learn's own workflows pickle estimators
    np.testing.assert_array_equal(again.predict(X), est.predict(X))
    with pytest.raises(TypeError):
        LinearRegressor(0.5)  # keyword-only


def test_feature_names_reach_the_model(tmp_path, problem):
    pd = pytest.importorskip("pandas")
    X, y, _ = problem
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(6)])
    est = LinearRegressor().fit(df, pd.Series(y, name="target"))
    assert list(est.feature_names_in_) == [f"f{i}" for i in range(6)]
    est.model_.save(tmp_path / "m.json")
    loaded = gradfit.load(tmp_path / "m.json")
    assert loaded.feature_names_in_ == [f"f{i}" for i in range(6)] and loaded.target_name == "target"
    np.testing.assert_allclose(loaded.predict(df), est.predict(df), rtol=1e-12)


def test_convergence_warning_is_both_kinds(problem):
    X, y, _ = problem
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = LinearRegressor(loss="huber", huber_scale="absolute", solver="sgd", lr=1e-4, epochs=3).fit(X, y)
    kinds = [w.category for w in caught]
    assert EstimatorConvergenceWarning in kinds and not est.converged_ and est.n_iter_ == 3
    assert issubclass(EstimatorConvergenceWarning, SkConvergenceWarning)
    assert issubclass(EstimatorConvergenceWarning, gradfit.ConvergenceWarning)


def test_warm_start_starts_from_previous_fit(problem):
    X, y, _ = problem
    est = LinearRegressor(loss="huber", huber_scale="absolute", solver="adam", lr=0.05, epochs=200, warm_start=True, tol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = est.fit(X, y).history_.loss[-1]
        second_start = est.fit(X, y).history_.loss[0]
    assert second_start == pytest.approx(first, rel=0.05)
    cold = clone(est).set_params(warm_start=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cold_start = cold.fit(X, y).fit(X, y).history_.loss[0]
    assert second_start < 0.5 * cold_start


def test_penalty_names_and_quantile_defaults():
    est = LinearRegressor(penalty="l1", alpha=0.2)
    assert est._penalty_object().l1 == 0.2 and est._penalty_object().l2 == 0.0
    assert LinearRegressor(alpha=0.2)._penalty_object().name == "l2"
    with pytest.raises(ValueError, match="contradicts"):  # a name and numbers that disagree: never silent
        LinearRegressor(penalty="none", alpha=3.0)._penalty_object()
    # scikit-learn's classes take exactly scikit-learn's parameters (HuberRegressor adds gradfit's scale)
    assert QuantileRegressor().get_params() == sk.QuantileRegressor().get_params()
    assert {**sk.HuberRegressor().get_params(), "scale": "joint"} == HuberRegressor().get_params()


def test_import_gradfit_does_not_need_sklearn():
    code = ("import sys; sys.modules['sklearn'] = None\n"
            "import gradfit, numpy as np\n"
            "m = gradfit.fit(np.arange(5.0), 2 * np.arange(5.0) + 1)\n"
            "assert abs(m.coef_[0] - 2) < 1e-12\n"
            "assert 'sklearn' not in [k for k, v in sys.modules.items() if v is not None]\n"
            "try:\n    gradfit.LinearRegressor\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "pip install 'gradfit[sklearn]'" in out.stdout


def test_public_api_has_numpydoc_and_working_examples():
    import doctest
    import inspect

    from gradfit import api, model
    from gradfit.estimators import linear as est_mod
    from gradfit.estimators import robust as robust_mod
    for obj in (gradfit.fit, gradfit.load, gradfit.LinearModel, gradfit.LinearModel.predict, LinearRegressor,
                LinearRegressor.fit, LinearRegressor.partial_fit, LinearRegressor.predict, QuantileRegressor,
                HuberRegressor):
        doc = inspect.getdoc(obj) or ""
        assert "Parameters\n----------" in doc or "Attributes\n----------" in doc, obj
    assert "F(w, b) = sum_i s_i rho" in inspect.getdoc(LinearRegressor)
    for mod in (api, model, est_mod, robust_mod):
        result = doctest.testmod(mod)
        assert result.attempted > 0 and result.failed == 0, mod.__name__


@needs("cd", "prox")
def test_partial_fit_lasso_is_exact(problem):
    X, y, s = problem
    kw = dict(alpha=0.4, l1_ratio=1.0, tol=1e-12, epochs=100_000)
    full = LinearRegressor(**kw).fit(X, y, sample_weight=s)
    est = LinearRegressor(**kw)
    for i in range(0, 300, 60):
        est.partial_fit(X[i:i + 60], y[i:i + 60], sample_weight=s[i:i + 60])
    assert np.sum(full.coef_ == 0) >= 1
    assert_rel(est.coef_, full.coef_)
    assert_rel(est.intercept_, full.intercept_)
    assert np.array_equal(est.coef_ == 0, full.coef_ == 0)


def test_partial_fit_stochastic_l1_takes_proximal_steps():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(600, 5))
    y = X[:, 0] * 2.0 + rng.normal(0, 0.1, 600)
    est = LinearRegressor(loss="absolute", solver="sgd", alpha=0.2, l1_ratio=1.0, lr=0.02, batch_size=20,
                          random_state=0)
    plain = clone(est).set_params(alpha=0.0)
    for _ in range(5):
        est.partial_fit(X, y)
        plain.partial_fit(X, y)
    # soft-thresholding keeps the noise features at (or within one step of) zero, exactly zero for some
    assert np.count_nonzero(est.coef_[1:] == 0.0) >= 1 and np.count_nonzero(plain.coef_ == 0.0) == 0
    assert np.abs(est.coef_[1:]).max() < 0.01 and est.coef_[0] > 1.5


def test_huber_fit_stops_when_the_optimum_has_zero_loss():
    """A line through every point: the Huber optimum has zero loss, and the fit must notice at once
    (scikit-learn's checks fit such data many times; see tests/test_sklearn_checks.py)."""
    X = np.repeat([[1.0, 3.0], [2.0, 1.0], [3.0, 3.0], [4.0, 1.0]], 4, axis=0)
    y = np.repeat([1.0, 2.0, 1.0, 2.0], 4)
    model = gradfit.fit(X, y, loss="huber", epochs=3, warn=False)
    assert model.converged_, f"{model.solver} did not converge on an exactly interpolable problem"
    np.testing.assert_allclose(X @ model.coef_ + model.intercept_, y, atol=1e-10)
