"""Standard errors for the absolute, quantile and Huber losses, as statsmodels computes them.

Absolute and quantile losses (``tau``; absolute is ``tau = 0.5``), following ``QuantReg.fit``:
the sparsity ``1 / f(0)`` of the residuals is a kernel density estimate at 0 with the
Epanechnikov kernel and the Hall-Sheather bandwidth
``h = min(std(y), IQR(e) / 1.34) * (Phi^-1(tau + hs) - Phi^-1(tau - hs))``,
``hs = n^(-1/3) z_{0.975}^(2/3) (1.5 phi(z_tau)^2 / (2 z_tau^2 + 1))^(1/3)``. Then

- ``robust`` (statsmodels' default): ``(X'X)^-1 X' D X (X'X)^-1``, ``D_ii = (tau / f0)^2`` if
  ``e_i > 0`` else ``((1 - tau) / f0)^2``;
- ``iid``: ``tau (1 - tau) / f0^2 (X'X)^-1``;

with the t distribution on ``n - rank`` degrees of freedom. The residuals are held in memory
(one float per row). ``r_squared`` is Koenker and Machado's pseudo R^2.

Huber (``rho(r) = r^2/2`` within ``delta``): our objective has no scale, so this is statsmodels'
``RLM(y, X, M=HuberT(t=delta)).fit(scale_est=<fixed 1>, cov=...)`` -- an M-estimator with the
scale fixed at 1. ``H1`` (default), ``H2`` or ``H3`` covariance (Huber 1973/1981), normal
reference distribution. Sums only: it streams in one pass.

Sample weights (neither QuantReg nor RLM takes them) are frequency weights: a row of weight 2
counts as the row twice, so ``n`` is the sum of the weights and every sum and percentile above is
weighted. With integer weights the summary equals statsmodels' on the rows repeated.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import special

from gradfit.data.batches import Batches
from gradfit.inference import reduce
from gradfit.inference.diagnostics import unidentified, vif
from gradfit.inference.results import Summary, inference, shifted_to_original
from gradfit.numerics.moments import Moments
from gradfit.numerics.passes import numpy_chunks


def _design(X: np.ndarray, shift: np.ndarray, intercept: bool) -> np.ndarray:
    Z = X - shift
    return np.hstack([Z, np.ones((len(Z), 1))]) if intercept else Z


def _params(model, intercept: bool) -> tuple[np.ndarray, float]:
    w = np.asarray(model.coef_, dtype=np.float64)
    return w, (float(model.intercept_) if intercept else 0.0)


def _rank(B: np.ndarray) -> int:
    d = np.sqrt(np.outer(np.diag(B), np.diag(B))).clip(1e-300)
    return int(np.linalg.matrix_rank(B / d))


def _blank_unidentified(B: np.ndarray, rank: int, shift: np.ndarray, intercept: bool, names: list[str],
                        stats: tuple, notes: list[str]) -> None:
    """As the least-squares summary does: no standard error, statistic, p-value or interval for a
    coefficient the design cannot identify (its column is collinear with others), and a note naming it."""
    if rank >= B.shape[0]:
        return
    lost = unidentified(B, B.shape[0] - rank, shift, intercept)
    for values in stats:
        values[lost] = np.nan
    notes.insert(0, f"the design has rank {rank} < {B.shape[0]}: collinear columns")
    if lost:
        notes.insert(1, f"coefficients {', '.join(repr(names[j]) for j in lost)} are not identified (their columns "
                        "are collinear): any mix of them fits equally well, so no standard errors, statistics or "
                        "p-values are given; drop or combine the columns")


def _norm_pdf(z: float) -> float:
    return math.exp(-z * z / 2) / math.sqrt(2 * math.pi)


def hall_sheather(n: int, q: float, alpha: float = 0.05) -> float:
    z = float(special.ndtri(q))
    return n ** (-1 / 3) * float(special.ndtri(1 - alpha / 2)) ** (2 / 3) * \
        (1.5 * _norm_pdf(z) ** 2 / (2 * z * z + 1)) ** (1 / 3)


def weighted_percentile(v: np.ndarray, s: np.ndarray, pct: float) -> float:
    """``np.percentile(v, pct)`` (linear) of ``v`` with each value repeated ``s`` times (s may be fractional)."""
    order = np.argsort(v, kind="stable")
    v, c = v[order], np.cumsum(s[order])
    pos = pct / 100 * (c[-1] - 1)
    lo = math.floor(pos)
    at = lambda i: v[min(int(np.searchsorted(c, i, side="right")), len(v) - 1)]  # noqa: E731
    return float(at(lo) + (pos - lo) * (at(lo + 1) - at(lo)))


def epanechnikov(u: np.ndarray) -> np.ndarray:
    return 0.75 * (1 - u * u) * (np.abs(u) <= 1)


def quantile_summary(model, data: Batches, level: float, cov_type: str, use_t: bool | None,
                     intercept: bool) -> Summary:
    asked = cov_type
    cov_type = "robust" if cov_type in ("nonrobust", None) else str(cov_type).lower()
    if cov_type not in ("robust", "iid"):
        raise ValueError(f"unknown cov_type {asked!r} for the {model.loss['name']} loss; choose robust or iid")
    q = float(model.loss.get("tau", 0.5))
    w, b = _params(model, intercept)
    if reduce.is_distributed(data):
        raise ValueError(f"the {model.loss['name']} loss's standard errors need every residual in one process; "
                         "save the model (--save) and run gradfit plot --summary on the whole file")
    sums, parts_e, parts_y, parts_s = Moments(data.n_features), [], [], []
    for X, y, s in numpy_chunks(data):
        sv = np.ones(len(y)) if s is None else s
        sums.add(X, y, s)
        parts_e.append(y - X @ w - b)
        parts_y.append(y)
        parts_s.append(sv)
    if not parts_e:
        raise ValueError("the data has no rows")
    B, shift = sums.gram(intercept)
    e, yv, sw = np.concatenate(parts_e), np.concatenate(parts_y), np.concatenate(parts_s)
    weighted = bool(np.any(sw != 1))
    n = float(sw.sum()) if weighted else len(e)
    rank = _rank(B)
    df_resid = float(n - rank)
    iqr = weighted_percentile(e, sw, 75) - weighted_percentile(e, sw, 25)
    hs = hall_sheather(n, q)
    y_std = math.sqrt(float(sw @ (yv - sw @ yv / n) ** 2) / n)
    h = min(y_std, iqr / 1.34) * float(special.ndtri(q + hs) - special.ndtri(q - hs))
    f0 = float(sw @ epanechnikov(e / h)) / (n * h)
    Binv = np.linalg.pinv(B)
    if cov_type == "robust":
        meat = np.zeros_like(B)
        start = 0
        for X, _, _ in numpy_chunks(data):
            Z = _design(X, shift, intercept)
            sl = slice(start, start + len(X))
            d = sw[sl] * np.where(e[sl] > 0, (q / f0) ** 2, ((1 - q) / f0) ** 2)
            meat += Z.T @ (Z * d[:, None])
            start += len(X)
        cov_z = Binv @ meat @ Binv
    else:
        cov_z = q * (1 - q) / f0 ** 2 * Binv
    cov = shifted_to_original(cov_z, shift) if intercept else cov_z
    use_t = True if use_t is None else use_t
    params = np.append(w, b) if intercept else w
    se, stat, p, lo, hi = inference(params, cov, level, use_t, df_resid)
    pin = lambda r: float(sw @ np.where(r < 0, (q - 1) * r, q * r))  # noqa: E731
    pseudo_r2 = 1 - pin(e) / pin(yv - weighted_percentile(yv, sw, q * 100))
    name = "LAD (median)" if model.loss["name"] == "absolute" else f"QuantReg (q={q:g})"
    notes = [f"sparsity 1/f(0) = {1 / f0:.4g} (Epanechnikov kernel, Hall-Sheather bandwidth {h:.4g}); "
             "R-squared is Koenker-Machado's pseudo R-squared"]
    if weighted:
        notes.append(f"sample weights as frequency weights: n = {n:g} (their sum)")
    _blank_unidentified(B, rank, shift, intercept, _names(model, intercept), (se, stat, p, lo, hi), notes)
    vifs = np.append(vif(B, intercept, len(w)), [np.nan] if intercept else [])
    return Summary(_names(model, intercept), params, se, stat, p, lo, hi, level, name, cov_type, bool(use_t),
                   int(round(n)), float(rank - intercept), df_resid, model.target_name or "y",
                   r_squared=float(pseudo_r2), cov=cov, notes=notes, vif=vifs,
                   extra={"bandwidth": float(h), "sparsity": float(1 / f0)})


def huber_summary(model, data: Batches, level: float, cov_type: str, use_t: bool | None,
                  intercept: bool) -> Summary:
    asked = cov_type
    cov_type = "H1" if cov_type in ("nonrobust", None) else str(cov_type).upper()
    if cov_type not in ("H1", "H2", "H3"):
        raise ValueError(f"unknown cov_type {asked!r} for the huber loss; choose H1, H2 or H3")
    mode = model.loss.get("scale", "absolute")
    sigma = float(model.info.get("scale", 1.0)) if mode != "absolute" else 1.0
    # with a fitted scale the threshold in units of y is delta * sigma, and RLM's covariance at scale
    # sigma is sigma^2 times its unit-scale one on r / sigma: the same numbers as below on r itself
    delta = float(model.loss.get("delta", 1.35)) * sigma
    w, b = _params(model, intercept)
    B_sums, W_sums = Moments(data.n_features), Moments(data.n_features)  # weights s and s * psi'(r)
    s_psi2, s_d, s_d2, s_rho = 0.0, 0.0, 0.0, 0.0
    weighted = False
    for X, y, s in numpy_chunks(data):
        sv = np.ones(len(y)) if s is None else s
        weighted = weighted or (s is not None and bool(np.any(s != 1)))
        r = y - X @ w - b
        inside = np.abs(r) <= delta
        psi_d = inside.astype(np.float64)
        s_psi2 += float(sv @ np.clip(r, -delta, delta) ** 2)
        s_d += float(sv @ psi_d)
        s_d2 += float(sv @ psi_d ** 2)
        s_rho += float(sv @ np.where(inside, 0.5 * r * r, delta * np.abs(r) - 0.5 * delta * delta))
        B_sums.add(X, y, s)
        W_sums.add(X, y, sv * psi_d)
    B_sums, W_sums = B_sums.allreduce(data), W_sums.allreduce(data)  # every process's sums
    B, shift = B_sums.gram(intercept)
    W, _ = W_sums.gram(intercept, shift)
    n = B_sums.weight
    if reduce.is_distributed(data):
        s_psi2, s_d, s_d2, s_rho, wsum = reduce.allreduce(data, s_psi2, s_d, s_d2, s_rho, float(weighted))
        weighted = wsum > 0
    if not n > 0:
        raise ValueError("the data has no rows")
    rank = _rank(B)
    df_resid, df_model = float(n - rank), float(rank - intercept)
    m = s_d / n
    if m == 0:
        raise ValueError(f"no residual is within the huber delta {delta:g}: the standard errors are undefined")
    var_d = s_d2 / n - m * m
    k = 1 + (df_model + 1) / n * var_d / m ** 2
    Binv = np.linalg.pinv(B)
    if cov_type == "H1":
        cov_z = k ** 2 * (s_psi2 / df_resid) / m ** 2 * Binv
    else:
        Winv = np.linalg.inv(W)
        cov_z = k * (s_psi2 / df_resid) / m * Winv if cov_type == "H2" else \
            (s_psi2 / df_resid) / k * Winv @ B @ Winv
    cov = shifted_to_original(cov_z, shift) if intercept else cov_z
    use_t = False if use_t is None else use_t
    params = np.append(w, b) if intercept else w
    se, stat, p, lo, hi = inference(params, cov, level, use_t, df_resid)
    scale_note = "the scale fixed at 1" if mode == "absolute" else \
        f"the {mode} scale {sigma:.4g} (threshold {delta:.4g} in units of y)"
    notes = [f"M-estimator with Huber's psi at delta {float(model.loss.get('delta', 1.35)):g} and {scale_note} "
             f"(statsmodels RLM, {cov_type} covariance); {n - s_d:g} of {n:g} residuals beyond the threshold"]
    if weighted:
        notes.append(f"sample weights as frequency weights: n = {n:g} (their sum)")
    _blank_unidentified(B, rank, shift, intercept, _names(model, intercept), (se, stat, p, lo, hi), notes)
    vifs = np.append(vif(B, intercept, len(w)), [np.nan] if intercept else [])
    return Summary(_names(model, intercept), params, se, stat, p, lo, hi, level, f"Huber (delta={delta:g})",
                   cov_type, bool(use_t), int(round(n)), df_model, df_resid, model.target_name or "y", cov=cov,
                   notes=notes, vif=vifs)


def _names(model, intercept: bool) -> list[str]:
    return list(model.feature_names_in_) + (["intercept"] if intercept else [])


__all__ = ["quantile_summary", "huber_summary", "hall_sheather", "epanechnikov"]
