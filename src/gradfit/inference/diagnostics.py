"""Residual and design diagnostics of a least-squares fit, as statsmodels' ``OLS.summary()`` prints them.

All from sums over rows (one pass, streamed sources work), on the whitened residuals
``e_i = sqrt(s_i) (y_i - x_i.w - b)`` that statsmodels uses (``wresid``; ``s_i = 1`` without weights):

- skew ``m3 / m2^1.5`` and kurtosis ``m4 / m2^2`` (central moments, not bias-corrected:
  ``scipy.stats.skew`` and ``kurtosis(fisher=False)``);
- Omnibus: D'Agostino and Pearson's ``K^2 = Z(skew)^2 + Z(kurtosis)^2`` (``scipy.stats.normaltest``),
  p-value from the chi-squared with 2 degrees of freedom;
- Jarque-Bera ``n/6 (S^2 + (K - 3)^2 / 4)``, chi-squared with 2 degrees of freedom;
- Durbin-Watson ``sum (e_t - e_{t-1})^2 / sum e_t^2`` in file order;
- condition number ``sqrt(lambda_max / lambda_min)`` of ``X'SX`` with the constant column, not centered
  (statsmodels' ``condition_number``), with its warning above 1000 (and when ``lambda_min < 1e-10``);
- variance inflation factors ``1 / (1 - R_j^2)`` of each feature on the others (and the constant):
  the diagonal of the inverse correlation matrix of the features (statsmodels'
  ``variance_inflation_factor``; with weights, ``R_j^2`` of the weighted regression).
"""
from __future__ import annotations

import math

import numpy as np

from gradfit.inference import reduce

CONDITION_WARNING = 1000.0


def residual_moments(batches, w: np.ndarray, b: float, data=None) -> dict:
    """One ordered pass over ``numpy_chunks`` output: n, central moments 2-4 and Durbin-Watson
    (over every process when ``data`` is a distributed source)."""
    n, shift, last, first = 0, None, None, 0.0
    s1 = s2 = s3 = s4 = dw = 0.0
    for X, y, s in batches:
        e = y - X @ w - b
        if s is not None:
            e = np.sqrt(s) * e
        if not len(e):
            continue
        if shift is None:
            shift, first = float(e.mean()), float(e[0])
        d = e - shift
        s1, s2 = s1 + float(d.sum()), s2 + float((d * d).sum())
        s3, s4 = s3 + float((d ** 3).sum()), s4 + float((d ** 4).sum())
        if last is not None:
            dw += (float(e[0]) - last) ** 2
        dw += float(np.sum(np.diff(e) ** 2))
        last = float(e[-1])
        n += len(e)
    if data is not None and reduce.is_distributed(data):
        dw = reduce.allreduce(data, dw)[0] + reduce.boundary(data, first, last if last is not None else 0.0, n)
        (s1, s2, s3, s4), shift = reduce.power_sums(data, [s1, s2, s3, s4], shift or 0.0, n)
        n = int(round(reduce.allreduce(data, float(n))[0]))
    if n == 0:
        raise ValueError("the data has no rows")
    mu = s1 / n  # mean of d; central moments of e from raw moments of d = e - shift
    m2 = s2 / n - mu * mu
    m3 = s3 / n - 3 * mu * s2 / n + 2 * mu ** 3
    m4 = s4 / n - 4 * mu * s3 / n + 6 * mu * mu * s2 / n - 3 * mu ** 4
    ss = s2 + 2 * shift * s1 + n * shift * shift  # sum e^2
    return {"n": n, "m2": m2, "m3": m3, "m4": m4, "durbin_watson": dw / ss if ss > 0 else float("nan")}


def skewtest_z(skew: float, n: int) -> float:
    """scipy.stats.skewtest's statistic from the sample skew."""
    y = skew * math.sqrt((n + 1) * (n + 3) / (6.0 * (n - 2)))
    beta2 = 3.0 * (n * n + 27 * n - 70) * (n + 1) * (n + 3) / ((n - 2.0) * (n + 5) * (n + 7) * (n + 9))
    w2 = -1 + math.sqrt(2 * (beta2 - 1))
    delta = 1 / math.sqrt(0.5 * math.log(w2))
    alpha = math.sqrt(2.0 / (w2 - 1))
    y = 1.0 if y == 0 else y
    return delta * math.log(y / alpha + math.sqrt((y / alpha) ** 2 + 1))


def kurtosistest_z(kurt: float, n: int) -> float:
    """scipy.stats.kurtosistest's statistic from the sample (Pearson) kurtosis."""
    e = 3.0 * (n - 1) / (n + 1)
    varb2 = 24.0 * n * (n - 2) * (n - 3) / ((n + 1) * (n + 1.0) * (n + 3) * (n + 5))
    x = (kurt - e) / math.sqrt(varb2)
    sqrtbeta1 = 6.0 * (n * n - 5 * n + 2) / ((n + 7) * (n + 9)) * math.sqrt(6.0 * (n + 3) * (n + 5) /
                                                                           (n * (n - 2) * (n - 3)))
    a = 6.0 + 8.0 / sqrtbeta1 * (2.0 / sqrtbeta1 + math.sqrt(1 + 4.0 / sqrtbeta1 ** 2))
    term1 = 1 - 2 / (9.0 * a)
    denom = 1 + x * math.sqrt(2 / (a - 4.0))
    if denom == 0:
        return float("nan")
    term2 = math.copysign(((1 - 2.0 / a) / abs(denom)) ** (1 / 3.0), denom)
    return (term1 - term2) / math.sqrt(2 / (9.0 * a))


def residual_tests(mom: dict) -> dict[str, float]:
    """Omnibus, its p, skew, kurtosis, Durbin-Watson, Jarque-Bera and its p (the order statsmodels prints)."""
    n, m2 = mom["n"], mom["m2"]
    nan = float("nan")
    if m2 <= 0:
        skew = kurt = nan
    else:
        skew, kurt = mom["m3"] / m2 ** 1.5, mom["m4"] / m2 ** 2
    omni = omni_p = nan
    if n >= 8 and math.isfinite(skew):  # scipy's normaltest needs 8 rows (kurtosistest)
        omni = skewtest_z(skew, n) ** 2 + kurtosistest_z(kurt, n) ** 2
        omni_p = math.exp(-omni / 2)  # chi-squared survival function with 2 degrees of freedom
    jb = n / 6.0 * (skew ** 2 + (kurt - 3) ** 2 / 4.0)
    return {"omnibus": omni, "omnibus_pvalue": omni_p, "skew": skew, "kurtosis": kurt,
            "durbin_watson": mom["durbin_watson"], "jarque_bera": jb,
            "jarque_bera_pvalue": math.exp(-jb / 2) if math.isfinite(jb) else nan}


def uncentered(B: np.ndarray, shift: np.ndarray, intercept: bool) -> np.ndarray:
    """``X1'SX1`` (X1 = [X, 1]) from the shifted cross-products ``Z'SZ`` (Z = [X - shift, 1])."""
    if not intercept:
        return B
    k = B.shape[0]
    M = np.eye(k)
    M[-1, :-1] = shift  # X1 = Z @ M
    return M.T @ B @ M


def condition(B: np.ndarray, shift: np.ndarray, intercept: bool) -> tuple[float, float]:
    """(condition number, smallest eigenvalue) of the uncentered ``X'SX``, as statsmodels."""
    eig = np.linalg.eigvalsh(uncentered(B, shift, intercept))
    lo, hi = float(eig[0]), float(eig[-1])
    return (math.sqrt(hi / lo) if lo > 0 else float("inf")), lo


def condition_notes(cond: float, smallest: float) -> list[str]:
    """statsmodels' two warnings about the design."""
    if smallest < 1e-10:
        return [f"the smallest eigenvalue of X'X is {smallest:.3g}: strong multicollinearity, or the design "
                "is singular"]
    if cond > CONDITION_WARNING:
        return [f"the condition number is large, {cond:.2g}: there may be strong multicollinearity or other "
                "numerical problems"]
    return []


def vif(B: np.ndarray, intercept: bool, p: int) -> np.ndarray:
    """Variance inflation factor of each of the ``p`` features (NaN without an intercept or a spread)."""
    out = np.full(p, np.nan)
    if not intercept or p == 0:
        return out
    C = B[:p, :p]  # centered at the column means of the first block only: recenter exactly
    tot = B[-1, -1]
    C = C - np.outer(B[:p, -1], B[:p, -1]) / tot
    d = np.sqrt(np.diag(C))
    if p == 1:
        return np.where(d > 0, 1.0, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        R = C / np.outer(d, d)
        try:
            out = np.diag(np.linalg.inv(R)).copy()
        except np.linalg.LinAlgError:
            out = np.full(p, np.inf)
    out[d == 0] = np.nan
    return out


def unidentified(B: np.ndarray, nullity: int, shift: np.ndarray, intercept: bool) -> list[int]:
    """Indices of the coefficients (slopes, then the intercept in original units) that move along the
    null space of the moment matrix ``B`` of ``[x - shift, 1]``: not estimable from the data."""
    d = np.sqrt(np.diag(B)).clip(1e-300)
    _, vecs = np.linalg.eigh(B / np.outer(d, d))
    N = vecs[:, :nullity] / d[:, None]  # null directions of B itself
    N /= np.linalg.norm(N, axis=0).clip(1e-300)
    p = len(shift)
    rows = N[:p] if not intercept else np.vstack([N[:p], N[p] - shift @ N[:p]])
    scale = np.abs(rows).max() or 1.0
    return [j for j in range(rows.shape[0]) if np.abs(rows[j]).max() > 1e-6 * scale]
