"""Statistical summary of a fitted model: standard errors, tests, intervals and fit measures.

Squared loss (OLS, or WLS with sample weights) follows statsmodels' definitions exactly:

- ``cov = sigma^2 (X'SX)^-1`` with ``sigma^2 = sum s e^2 / df_resid`` (``nonrobust``), or the
  sandwich ``(X'SX)^-1 [sum s^2 e^2 w_i x x'] (X'SX)^-1`` with ``w_i = 1`` (``HC0``; ``HC1`` scales
  by ``n / df_resid``), ``1 / (1 - h_i)`` (``HC2``) or ``1 / (1 - h_i)^2`` (``HC3``), ``h_i`` the leverage;
- ``R^2 = 1 - RSS / TSS`` (TSS centered when there is an intercept), adjusted ``R^2``, the F test of
  all slopes (a Wald F test under a robust covariance), ``AIC = -2 llf + 2 k``, ``BIC = -2 llf + k log n``
  with the Gaussian log-likelihood (plus ``sum log s / 2`` for WLS) and ``k = df_model + 1``;
- t distribution with ``df_resid`` for ``nonrobust``, the normal for ``HC*`` (statsmodels' ``use_t``
  default; pass ``use_t`` to choose).

(One difference: statsmodels' WLS log-likelihood leaves out ``sum log s / 2`` when any weight equals
exactly 1; gradfit always includes it.)

Everything comes from sums over rows, so a streamed :class:`~gradfit.data.batches.Batches` source works:
one pass for ``nonrobust``, a second one for ``HC*``. The statistics describe the model's own
coefficients; for a model stopped short of the least-squares optimum they are approximate.
Absolute, quantile and Huber losses: see :mod:`gradfit.inference.robust`.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import special

from gradfit.data.arrays import as_batches
from gradfit.data.batches import Batches
from gradfit.inference import reduce
from gradfit.inference.diagnostics import (condition, condition_notes, residual_moments, residual_tests,
                                           unidentified, vif)
from gradfit.inference.results import COV_TYPES, Summary, inference, shifted_to_original
from gradfit.inference.robust import huber_summary, quantile_summary
from gradfit.numerics.moments import moments
from gradfit.numerics.passes import numpy_chunks

# -- data access --------------------------------------------------------------------------------
def source_of(model, X: Any, y: Any = None, sample_weight: Any = None) -> Batches:
    """The data as a :class:`Batches` source; in-memory columns are matched to the model's features."""
    if isinstance(X, Batches):
        if sample_weight is not None:
            raise ValueError("sample_weight goes into the Batches source, not summary(); the source has its own")
        if X.n_features != model.n_features_in_:
            raise ValueError(f"the data has {X.n_features} features, the model {model.n_features_in_}")
        return X
    if y is None:
        raise ValueError("summary(model, X, y): y is required unless X is a Batches source")
    return as_batches(model._design(X), y, sample_weight)


def _intercept_of(model, fit_intercept: bool | None) -> bool:
    if fit_intercept is not None:
        return bool(fit_intercept)
    return bool(model.fit_intercept)


# -- public entry ---------------------------------------------------------------------------------
def summary(model, X: Any, y: Any = None, *, level: float = 0.95, cov_type: str = "nonrobust",
            sample_weight: Any = None, use_t: bool | None = None, fit_intercept: bool | None = None) -> Summary:
    """Statistical summary of ``model`` on its training data ``X, y`` (or a Batches source ``X``).

    Parameters
    ----------
    level : confidence level of the intervals.
    cov_type : ``nonrobust`` or ``HC0``..``HC3`` for the squared loss; ``robust``/``iid`` for absolute
        and quantile losses; ``H1``..``H3`` for Huber (see :mod:`gradfit.inference.robust`).
    use_t : t (True) or normal (False) reference distribution; None follows statsmodels' default.
    fit_intercept : whether the model has an intercept; None reads it from the model (default True).
    """
    if model.penalty.get("name", "none") != "none" and model.penalty.get("alpha", 0.0):
        raise ValueError(f"the statistical summary needs an unpenalized fit (this one has the "
                         f"{model.penalty['name']} penalty); refit with penalty none")
    data = source_of(model, X, y, sample_weight)
    intercept = _intercept_of(model, fit_intercept)
    name = model.loss.get("name", "squared")
    if name == "squared":
        return ols_summary(model, data, level, cov_type, use_t, intercept)
    if name in ("absolute", "quantile"):
        return quantile_summary(model, data, level, cov_type, use_t, intercept)
    if name == "huber":
        return huber_summary(model, data, level, cov_type, use_t, intercept)
    raise ValueError(f"no statistical summary for the {name} loss")


# -- least squares ------------------------------------------------------------------------------
def ols_summary(model, data: Batches, level: float, cov_type: str, use_t: bool | None,
                intercept: bool) -> Summary:
    cov_key = {c.lower(): c for c in COV_TYPES}.get(str(cov_type).lower())
    if cov_key is None:
        raise ValueError(f"unknown cov_type {cov_type!r} for the squared loss; choose {', '.join(COV_TYPES)}")
    w = np.asarray(model.coef_, dtype=np.float64)
    b = float(model.intercept_) if intercept else 0.0
    m = _moments(data, intercept)
    n, k_const = m["n"], int(intercept)
    B = m["B"]
    rank = int(np.linalg.matrix_rank(B / np.sqrt(np.outer(np.diag(B), np.diag(B)).clip(1e-300))))
    df_resid, df_model = float(n - rank), float(rank - k_const)
    if df_resid <= 0:
        raise ValueError(f"{n} rows are too few for {rank} parameters: no residual degrees of freedom")
    Binv = np.linalg.inv(B) if rank == B.shape[0] else np.linalg.pinv(B)
    theta_z = np.append(w, b + m["shift"] @ w) if intercept else w
    theta_c = np.append(w, b + m["shift"] @ w - m["y_shift"]) if intercept else w
    # RSS = sum s (y - y_shift - z.theta_c)^2 from the shifted moments
    rss = float(m["yy"] - 2 * theta_c @ m["zy"] + theta_c @ B @ theta_c)
    rss = max(rss, 0.0)
    sigma2 = rss / df_resid
    weighted = m["has_weight"]
    if cov_key == "nonrobust":
        cov_z = sigma2 * Binv
    else:
        cov_z = _sandwich(data, Binv, theta_z, m["shift"], intercept, cov_key, n, df_resid)
    cov = shifted_to_original(cov_z, m["shift"]) if intercept else cov_z
    if use_t is None:
        use_t = cov_key == "nonrobust"
    params = np.append(w, b) if intercept else w
    se, stat, p, lo, hi = inference(params, cov, level, use_t, df_resid)
    names = list(model.feature_names_in_) + (["intercept"] if intercept else [])
    lost = unidentified(B, B.shape[0] - rank, m["shift"], intercept) if rank < B.shape[0] else []
    for j in lost:  # the data cannot tell these apart: no standard error, t or p-value is printed
        se[j] = stat[j] = p[j] = lo[j] = hi[j] = float("nan")
    tss = m["centered_tss"] if intercept else m["uncentered_tss"]
    r2 = 1 - rss / tss if tss > 0 else float("nan")
    adj = 1 - (n - k_const) / df_resid * (1 - r2)
    slopes = slice(0, len(w))
    if cov_key == "nonrobust":  # an exact fit (sigma2 = 0) has F = inf, as in statsmodels; 0/0 is nan
        with np.errstate(divide="ignore", invalid="ignore"):
            f = float(np.float64(tss - rss) / df_model / np.float64(sigma2)) if df_model > 0 else float("nan")
    else:
        ws, V = params[slopes], cov[slopes, slopes]
        f = float(ws @ np.linalg.solve(V, ws)) / df_model if df_model > 0 else float("nan")
    fp = float(special.fdtrc(df_model, df_resid, f)) if df_model > 0 else float("nan")
    log_rss = math.log(rss / n) if rss > 0 else -math.inf  # exact fit: the likelihood is unbounded
    llf = -n / 2 * (math.log(2 * math.pi) + log_rss + 1) + (0.5 * m["sum_log_w"] if weighted else 0.0)
    k = df_model + k_const
    notes = [] if rank == B.shape[0] else [f"the design has rank {rank} < {B.shape[0]}: collinear columns"]
    if lost:
        notes.append(f"coefficients {', '.join(repr(names[j]) for j in lost)} are not identified (their columns are "
                     "collinear): any mix of them fits equally well, so no standard errors, t or p-values are "
                     "given; drop or combine the columns")
    if not math.isnan(model.gap_) and model.gap_ > 1e-6:
        notes.append(f"the model is {model.gap_:.1e} (relative) above the least-squares optimum; "
                     "the statistics describe its coefficients")
    diag = residual_tests(residual_moments(numpy_chunks(data), w, b, data))
    cond, smallest = condition(B, m["shift"], intercept)
    diag["condition_number"] = cond
    notes += condition_notes(cond, smallest)
    vifs = np.append(vif(B, intercept, len(w)), [np.nan] if intercept else [])
    return Summary(names, params, se, stat, p, lo, hi, level, "WLS" if weighted else "OLS", cov_key, bool(use_t),
                   int(n), df_model, df_resid, model.target_name or "y", float(r2), float(adj), float(f), fp,
                   math.sqrt(sigma2), llf, -2 * llf + 2 * k, -2 * llf + math.log(n) * k, cov, notes,
                   diagnostics=diag, vif=vifs)


def _moments(data: Batches, intercept: bool) -> dict:
    """One pass (over every process): sums of z z', z y, y y (z = [x - shift, 1] with ``shift`` the
    weighted mean, or x unshifted without intercept) weighted by s; y around its mean (or 0)."""
    sums = moments(data).allreduce(data)
    if sums.rows == 0:
        raise ValueError("the data has no rows")
    sums = sums.centered() if intercept else sums.about_zero()
    M, p = sums.M.cpu().numpy(), data.n_features
    z = slice(0, p + 1) if intercept else slice(0, p)
    B, zy, yy, sy, sw = M[z, z], M[z, p + 1], float(M[p + 1, p + 1]), float(M[p, p + 1]), float(M[p, p])
    y_shift = float(sums.shift_y[0])
    # sums are around y_shift (0 without intercept); the intercept absorbs it: theta_c = theta - y_shift e_last
    return {"n": sums.rows, "B": B, "zy": zy, "yy": yy, "y_shift": y_shift, "shift": sums.shift_x.cpu().numpy(),
            "has_weight": sums.weighted, "sum_log_w": sums.log_weight, "sy": sy, "sw": sw,
            "centered_tss": yy - sy * sy / sw, "uncentered_tss": yy + 2 * y_shift * sy + sw * y_shift ** 2}


def _sandwich(data: Batches, Binv: np.ndarray, theta_z: np.ndarray, shift: np.ndarray, intercept: bool,
              cov_type: str, n: int, df_resid: float) -> np.ndarray:
    """Second pass: the HC meat ``sum s^2 e^2 omega z z'`` in shifted coordinates, then the sandwich."""
    meat = np.zeros_like(Binv)
    for X, y, s in numpy_chunks(data):
        Z = X - shift
        if intercept:
            Z = np.hstack([Z, np.ones((len(Z), 1))])
        sv = np.ones(len(y)) if s is None else s
        e = y - Z @ theta_z
        u = sv * e * e * sv
        if cov_type in ("HC2", "HC3"):
            h = sv * np.einsum("ij,jk,ik->i", Z, Binv, Z)
            u = u / (1 - h) if cov_type == "HC2" else u / (1 - h) ** 2
        meat += Z.T @ (Z * u[:, None])
    if reduce.is_distributed(data):  # the shift is already common (_moments moved every process's sums to one shift)
        meat = reduce.allreduce(data, meat)[0]
    cov = Binv @ meat @ Binv
    return cov * (n / df_resid) if cov_type == "HC1" else cov
