"""Confidence and prediction intervals of a least-squares fit, as statsmodels' ``get_prediction()``.

For a new row ``z = [x, 1]`` with prediction ``m = z.theta``:

- ``mean_se = sqrt(z' C z)`` with ``C`` the parameters' covariance (``nonrobust`` or an ``HC*`` sandwich,
  the one the summary computed);
- confidence interval ``m +- q mean_se``; prediction interval ``m +- q sqrt(mean_se^2 + sigma^2 / s)``
  with ``sigma^2 = RSS / df_resid`` and ``s`` the new row's weight (1 unless given);
- ``q`` from the t distribution on ``df_resid`` degrees of freedom for ``nonrobust``, the normal for
  ``HC*`` (the summary's ``use_t``).

The covariance comes from :func:`gradfit.inference.summary.summary` on the training data, which stores
it on the model (``model.inference_``) and so in its file.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special

from gradfit.exceptions import ModelFileError

INTERVALS = ("confidence", "prediction")


def store(model, s) -> None:
    """Keep what intervals need from a least-squares summary ``s`` on ``model.inference_``."""
    if s.method not in ("OLS", "WLS") or s.cov is None:
        return
    inf = model.inference_ if isinstance(model.inference_, dict) else {}
    if inf.get("df_resid") not in (None, s.df_resid):  # a summary on other data: start again
        inf = {}
    inf.update({"scale": float(s.resid_std_err) ** 2, "df_resid": float(s.df_resid), "nobs": int(s.nobs),
                "intercept": s.names[-1:] == ["intercept"] and len(s.names) == model.n_features_in_ + 1})
    inf.setdefault("covariances", {})[s.cov_type] = {"cov": np.asarray(s.cov, dtype=np.float64).tolist(),
                                                     "use_t": bool(s.use_t)}
    model.inference_ = inf


def check_stored(d: Any, k: int, source: str) -> dict | None:
    """The ``inference`` block of a model file, validated (``k`` parameters with the intercept)."""
    if d is None:
        return None
    try:
        out = {"scale": float(d["scale"]), "df_resid": float(d["df_resid"]), "nobs": int(d["nobs"]),
               "intercept": bool(d["intercept"]), "covariances": {}}
        for name, c in dict(d["covariances"]).items():
            cov = np.asarray(c["cov"], dtype=np.float64)
            size = k + 1 if out["intercept"] else k
            if cov.shape != (size, size) or not np.all(np.isfinite(cov)):
                raise ValueError(f"covariance {name} has shape {cov.shape}, expected ({size}, {size})")
            out["covariances"][str(name)] = {"cov": cov.tolist(), "use_t": bool(c["use_t"])}
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{source} has a damaged inference block ({exc})") from None
    return out


def interval_columns(model, D: np.ndarray, mean: np.ndarray, interval: str, level: float = 0.95,
                     cov_type: str | None = None, weights: Any = None) -> dict[str, np.ndarray]:
    """statsmodels' ``summary_frame`` columns for the rows ``D`` (n, p): ``mean``, ``mean_se`` and
    ``mean_ci_lower/upper`` (confidence) or ``obs_ci_lower/upper`` (prediction)."""
    if interval not in INTERVALS:
        raise ValueError(f"interval must be 'confidence' or 'prediction', got {interval!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1 (e.g. 0.95), got {level}")
    if model.loss.get("name", "squared") != "squared":
        raise ValueError(f"intervals need the squared loss; this model has the {model.loss.get('name')} loss")
    inf = model.inference_
    if not inf or not inf.get("covariances"):
        raise ValueError("the model carries no covariance for intervals: call model.summary(X, y) on its training "
                         "data first (from the shell: gradfit fit ... --summary --save model.json)")
    have = inf["covariances"]
    if cov_type is None:
        cov_type = "nonrobust" if "nonrobust" in have else next(iter(have))
    if cov_type not in have:
        raise ValueError(f"the model has the {', '.join(have)} covariance, not {cov_type}: call "
                         f"model.summary(X, y, cov_type={cov_type!r}) on its training data first")
    cov, use_t = np.asarray(have[cov_type]["cov"]), have[cov_type]["use_t"]
    Z = np.hstack([D, np.ones((len(D), 1))]) if inf["intercept"] else D
    se = np.sqrt(np.clip(np.einsum("ij,jk,ik->i", Z, cov, Z), 0, None))
    tail = 1 - (1 - level) / 2
    q = float(special.stdtrit(inf["df_resid"], tail)) if use_t else float(special.ndtri(tail))
    out = {"mean": mean, "mean_se": se}
    if interval == "confidence":
        out["mean_ci_lower"], out["mean_ci_upper"] = mean - q * se, mean + q * se
    else:
        s = 1.0 if weights is None else np.asarray(weights, dtype=np.float64)
        obs = np.sqrt(se * se + inf["scale"] / s)
        out["obs_ci_lower"], out["obs_ci_upper"] = mean - q * obs, mean + q * obs
    return out


def as_frame(columns: dict[str, np.ndarray], index: Any = None):
    """A pandas DataFrame when pandas is installed, else the dict of arrays."""
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is in every extra that plots or reads notebooks
        return columns
    return pd.DataFrame(columns, index=index)


__all__ = ["interval_columns", "store", "check_stored", "as_frame", "INTERVALS"]
