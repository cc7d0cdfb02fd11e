"""gradfit.inference.summary against statsmodels: OLS/WLS (all covariance types), QuantReg and RLM (Huber)."""
import json

import numpy as np
import pytest

import gradfit
from gradfit.data.arrays import as_batches
from gradfit.model import LinearModel
from gradfit.inference.summary import summary

sm = pytest.importorskip("statsmodels.api")

RTOL = 1e-8


def rel(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


def dataset(kind: str):
    rng = np.random.default_rng({"plain": 0, "scaled": 1, "hetero": 2}[kind])
    if kind == "plain":
        X = rng.normal(size=(120, 2))
        y = X @ [1.0, -2.0] + 0.5 + rng.normal(size=120)
    elif kind == "scaled":  # large means and scales: centering must not lose digits
        X = rng.normal(size=(300, 3)) * [1, 10, 100] + [5, -300, 1e4]
        y = X @ [1.0, 0.5, -0.02] + 1e3 + rng.normal(size=300)
    else:  # heteroskedastic, where HC errors differ from nonrobust
        X = rng.uniform(-3, 3, size=(250, 4))
        y = X @ [0.3, 0.0, -1.0, 2.0] - 1 + rng.normal(size=250) * (0.2 + np.abs(X[:, 0]))
    return X, y


def check_ols(s, r):
    assert rel(s.coef, r.params) < RTOL
    for ours, theirs in [(s.std_err, r.bse), (s.stat, r.tvalues), (s.p_value, r.pvalues),
                         (s.ci_low, r.conf_int(0.1)[:, 0]), (s.ci_high, r.conf_int(0.1)[:, 1]),
                         (s.r_squared, r.rsquared), (s.adj_r_squared, r.rsquared_adj), (s.f_statistic, r.fvalue),
                         (s.f_pvalue, r.f_pvalue), (s.llf, r.llf), (s.aic, r.aic), (s.bic, r.bic),
                         (s.resid_std_err, np.sqrt(r.scale)), (s.df_resid, r.df_resid), (s.df_model, r.df_model)]:
        assert rel(ours, theirs) < RTOL, (ours, theirs)
    assert s.nobs == r.nobs


@pytest.mark.parametrize("kind", ["plain", "scaled", "hetero"])
@pytest.mark.parametrize("weighted", [False, True])
def test_squared_loss_matches_statsmodels(kind, weighted):
    X, y = dataset(kind)
    w = np.random.default_rng(5).uniform(0.2, 3.0, size=len(y)) if weighted else None
    model = gradfit.fit(X, y, sample_weight=w)
    Xc = sm.add_constant(X, prepend=False)
    for cov in ["nonrobust", "HC0", "HC1", "HC2", "HC3"]:
        r = (sm.WLS(y, Xc, weights=w) if weighted else sm.OLS(y, Xc)).fit(cov_type=cov)
        s = summary(model, X, y, sample_weight=w, cov_type=cov, level=0.9)
        check_ols(s, r)
        assert s.method == ("WLS" if weighted else "OLS") and s.use_t == (cov == "nonrobust")


def test_no_intercept_matches_statsmodels_and_survives_the_model_file(tmp_path):
    X, y = dataset("plain")
    model = gradfit.fit(X, y, fit_intercept=False)
    model.save(tmp_path / "m.json")
    loaded = gradfit.load(tmp_path / "m.json")
    for cov in ["nonrobust", "HC3"]:
        r = sm.OLS(y, X).fit(cov_type=cov)
        s = summary(loaded, X, y, cov_type=cov, level=0.9)
        check_ols(s, r)
        assert s.names == ["x0", "x1"]


def test_streamed_batches_give_the_in_memory_numbers():
    X, y = dataset("scaled")
    model = gradfit.fit(X, y)
    streamed = as_batches(X, y, batch_size=37)  # 9 blocks, each pass re-reads them
    assert streamed.full_batch() is not None

    class Streamed(type(streamed)):
        def full_batch(self):
            return None

    source = Streamed(streamed.X, streamed.y, batch_size=37, feature_names=streamed.feature_names)
    for cov in ["nonrobust", "HC3"]:
        a, b = summary(model, X, y, cov_type=cov), summary(model, source, cov_type=cov)
        assert rel(b.std_err, a.std_err) < 1e-9 and rel(b.f_statistic, a.f_statistic) < 1e-9
        assert rel(b.aic, a.aic) < 1e-12 and b.nobs == a.nobs


def test_dataframe_columns_are_matched_by_name():
    pd = pytest.importorskip("pandas")
    X, y = dataset("plain")
    df = pd.DataFrame(X, columns=["a", "b"])
    model = gradfit.fit(df, y)
    s1 = summary(model, df[["b", "a"]], y)
    s2 = summary(model, df, y)
    assert rel(s1.std_err, s2.std_err) < 1e-14 and s1.names == ["a", "b", "intercept"]


def heavy_tailed():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(300, 2)) * [1, 5] + [2, -3]
    return X, X @ [1.5, -0.7] + 2 + rng.standard_t(3, size=300)


@pytest.mark.parametrize("q", [0.5, 0.3])
@pytest.mark.parametrize("vcov", ["robust", "iid"])
def test_quantile_matches_statsmodels_quantreg(q, vcov):
    X, y = heavy_tailed()
    r = sm.QuantReg(y, sm.add_constant(X, prepend=False)).fit(q=q, vcov=vcov)
    model = LinearModel(r.params[:-1].copy(), float(r.params[-1]), ["x0", "x1"], loss={"name": "quantile", "tau": q})
    s = summary(model, X, y, cov_type=vcov)
    for ours, theirs in [(s.std_err, r.bse), (s.p_value, r.pvalues), (s.ci_low, r.conf_int()[:, 0]),
                         (s.r_squared, r.prsquared)]:
        assert rel(ours, theirs) < RTOL


def test_our_lad_fit_gives_quantreg_standard_errors():
    X, y = heavy_tailed()
    r = sm.QuantReg(y, sm.add_constant(X, prepend=False)).fit(q=0.5, p_tol=1e-10, max_iter=5000)
    model = gradfit.fit(X, y, loss="l1", warn=False)
    assert rel(np.append(model.coef_, model.intercept_), r.params) < 1e-3
    s = summary(model, X, y)
    assert s.method.startswith("LAD") and rel(s.std_err, r.bse) < 0.05


@pytest.mark.parametrize("cov", ["H1", "H2", "H3"])
def test_huber_matches_statsmodels_rlm_with_unit_scale(cov):
    from statsmodels.robust.norms import HuberT
    X, y = heavy_tailed()
    r = sm.RLM(y, sm.add_constant(X, prepend=False), M=HuberT(t=1.35)).fit(
        scale_est=lambda model, resid: 1.0, cov=cov, tol=1e-12, maxiter=200)
    assert r.scale == 1.0
    model = LinearModel(r.params[:-1].copy(), float(r.params[-1]), ["x0", "x1"], loss={"name": "huber", "delta": 1.35})
    s = summary(model, X, y, cov_type=cov)
    for ours, theirs in [(s.std_err, r.bse), (s.stat, r.tvalues), (s.p_value, r.pvalues),
                         (s.ci_high, r.conf_int()[:, 1])]:
        assert rel(ours, theirs) < RTOL
    ours = gradfit.fit(X, y, loss="huber", huber_scale="absolute", delta=1.35, tol=1e-12, warn=False)  # the same estimator
    assert rel(np.append(ours.coef_, ours.intercept_), r.params) < 1e-5


def test_text_and_json_forms():
    X, y = dataset("plain")
    s = gradfit.fit(X, y).summary(X, y)
    text = str(s)
    for word in ("R-squared", "F-statistic", "intercept", "x0", "P>|t|", "[0.025", "AIC"):
        assert word in text
    d = json.loads(json.dumps(s.to_dict(), allow_nan=False))
    assert d["coefficients"][0]["name"] == "x0" and d["distribution"] == "t"
    assert abs(d["r_squared"] - s.r_squared) < 1e-15


def test_refuses_what_it_cannot_do():
    X, y = dataset("plain")
    with pytest.raises(ValueError, match="unpenalized"):
        summary(gradfit.fit(X, y, penalty="l2", alpha=0.1), X, y)
    model = gradfit.fit(X, y)
    with pytest.raises(ValueError, match="cov_type"):
        summary(model, X, y, cov_type="HC9")
    with pytest.raises(ValueError, match="level"):
        summary(model, X, y, level=95)
    with pytest.raises(ValueError, match="y is required"):
        summary(model, X)
