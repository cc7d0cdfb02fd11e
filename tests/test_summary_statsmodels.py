"""The statsmodels reader's summary (issue 17) against statsmodels on Longley, a weighted data set and
(in test_formula.py) one with a categorical column: every printed number to 1e-8."""
import math
import re

import numpy as np
import pytest

import gradfit
from gradfit.inference.summary import summary
from gradfit.model import LinearModel

sm = pytest.importorskip("statsmodels.api")
from statsmodels.stats.outliers_influence import variance_inflation_factor  # noqa: E402
from statsmodels.stats.stattools import durbin_watson, jarque_bera, omni_normtest  # noqa: E402

RTOL = 1e-8


def rel(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


def longley():
    d = sm.datasets.longley.load_pandas()
    return d.exog, d.endog.to_numpy()


def weighted():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 3)) * [1, 2, 0.5] + [0, 10, -1]
    w = rng.uniform(0.3, 4.0, size=200)
    y = X @ [0.7, -0.2, 2.0] + 4 + rng.normal(size=200) / np.sqrt(w)
    return X, y, w


def check_all(s, r, exog, weights=None):
    """Coefficients, errors, fit measures and every diagnostic statsmodels prints."""
    assert rel(s.coef, r.params) < RTOL and rel(s.std_err, r.bse) < RTOL and rel(s.p_value, r.pvalues) < 1e-7
    for ours, theirs in [(s.r_squared, r.rsquared), (s.adj_r_squared, r.rsquared_adj), (s.f_statistic, r.fvalue),
                         (s.aic, r.aic), (s.bic, r.bic)]:
        assert rel(ours, theirs) < RTOL
    omni, omni_p = omni_normtest(r.wresid)
    jb, jb_p, skew, kurt = jarque_bera(r.wresid)
    d = s.diagnostics
    for key, theirs in [("omnibus", omni), ("omnibus_pvalue", omni_p), ("skew", skew), ("kurtosis", kurt),
                        ("jarque_bera", jb), ("jarque_bera_pvalue", jb_p),
                        ("durbin_watson", durbin_watson(r.wresid)), ("condition_number", r.condition_number)]:
        assert rel(d[key], theirs) < RTOL, (key, d[key], theirs)
    if weights is None:
        vifs = [variance_inflation_factor(exog, i) for i in range(exog.shape[1] - 1)]  # constant last
    else:  # weighted: 1 / (1 - R^2) of the WLS of each feature on the others and the constant
        vifs = [1 / (1 - sm.WLS(exog[:, i], np.delete(exog, i, axis=1), weights=weights).fit().rsquared)
                for i in range(exog.shape[1] - 1)]
    assert rel(s.vif[:-1], vifs) < RTOL and math.isnan(s.vif[-1])


def test_longley_every_number_and_the_condition_warning():
    X, y = longley()
    model = gradfit.fit(X, y)
    exog = sm.add_constant(X.to_numpy(), prepend=False)
    r = sm.OLS(y, exog).fit()
    s = model.summary(X, y)
    check_all(s, r, exog)
    text = str(s)
    for word in ("Omnibus:", "Prob(Omnibus):", "Skew:", "Kurtosis:", "Durbin-Watson:", "Jarque-Bera (JB):",
                 "Prob(JB):", "Cond. No.:", "condition number is large", "VIF"):
        assert word in text
    assert "nan" not in text


def test_weighted_least_squares_every_number():
    X, y, w = weighted()
    model = gradfit.fit(X, y, sample_weight=w)
    exog = sm.add_constant(X, prepend=False)
    r = sm.WLS(y, exog, weights=w).fit()
    s = model.summary(X, y, sample_weight=w)
    assert s.method == "WLS"
    check_all(s, r, exog, w)


def test_streamed_source_gives_the_same_diagnostics():
    from gradfit.data.arrays import as_batches
    X, y, w = weighted()
    model = gradfit.fit(X, y, sample_weight=w)
    streamed = as_batches(X, y, w, batch_size=23)

    class Streamed(type(streamed)):
        def full_batch(self):
            return None

    source = Streamed(streamed.X, streamed.y, streamed.weight, batch_size=23, feature_names=streamed.feature_names)
    a, b = model.summary(X, y, sample_weight=w), model.summary(source)
    for key, v in a.diagnostics.items():
        assert abs(b.diagnostics[key] - v) <= 1e-9 * max(abs(v), 1), key


def heavy_tailed():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(300, 2)) * [1, 5] + [2, -3]
    return X, X @ [1.5, -0.7] + 2 + rng.standard_t(3, size=300), rng.integers(1, 4, size=300).astype(float)


@pytest.mark.parametrize("q,vcov", [(0.5, "robust"), (0.3, "iid")])
def test_weighted_quantile_equals_quantreg_on_repeated_rows(q, vcov):
    X, y, w = heavy_tailed()
    rep = w.astype(int)
    r = sm.QuantReg(np.repeat(y, rep), sm.add_constant(np.repeat(X, rep, axis=0), prepend=False)).fit(q=q, vcov=vcov)
    model = LinearModel(r.params[:-1].copy(), float(r.params[-1]), ["x0", "x1"], loss={"name": "quantile", "tau": q})
    s = summary(model, X, y, sample_weight=w, cov_type=vcov)
    assert rel(s.std_err, r.bse) < RTOL and rel(s.r_squared, r.prsquared) < RTOL and s.nobs == r.nobs
    assert set(s.measures()) == {"r_squared", "bandwidth", "sparsity"}  # no nan F, AIC, adjusted R^2
    text = str(s)
    assert "Pseudo R-squared" in text and "nan" not in text and "AIC" not in text and "F-statistic" not in text


@pytest.mark.parametrize("cov", ["H1", "H3"])
def test_weighted_huber_equals_rlm_on_repeated_rows(cov):
    from statsmodels.robust.norms import HuberT
    X, y, w = heavy_tailed()
    rep = w.astype(int)
    r = sm.RLM(np.repeat(y, rep), sm.add_constant(np.repeat(X, rep, axis=0), prepend=False), M=HuberT(t=1.35)).fit(
        scale_est=lambda model, resid: 1.0, cov=cov, tol=1e-12, maxiter=200)
    model = LinearModel(r.params[:-1].copy(), float(r.params[-1]), ["x0", "x1"], loss={"name": "huber", "delta": 1.35})
    s = summary(model, X, y, sample_weight=w, cov_type=cov)
    assert rel(s.std_err, r.bse) < RTOL and rel(s.p_value, r.pvalues) < 1e-7
    assert s.measures() == {} and "nan" not in str(s) and "R-squared" not in str(s)


def test_to_frame_and_one_number_format_for_text_and_html():
    X, y = longley()
    s = gradfit.fit(X, y).summary(X, y)
    frame = s.to_frame()
    assert list(frame.columns) == ["coef", "std err", "t", "P>|t|", "[0.025", "0.975]", "VIF"]
    assert list(frame.index) == list(X.columns) + ["intercept"]
    assert rel(frame["std err"].to_numpy(), s.std_err) == 0
    html = s._repr_html_()
    text = str(s)
    for row in (s.p_value, s.std_err):
        for v in row:
            cell = f"{v:.3f}" if row is s.p_value else f"{v:.4g}"
            assert cell in text and f"<td>{cell}</td>" in html
    assert "Durbin-Watson" in html and "adj r squared" not in html and not re.search(r"\de-\d\d", html)
    assert len(repr(s)) < 200
