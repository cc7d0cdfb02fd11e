"""What a statistical summary returns (:class:`Summary`) and the arithmetic every summary shares:
standard errors, tests and intervals from a covariance, and the shift of centred features undone."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import special

from gradfit.inference.format import summary_frame, summary_html, summary_text

COV_TYPES = ("nonrobust", "HC0", "HC1", "HC2", "HC3")


@dataclass
class Summary:
    """One row per parameter (features, then ``intercept``) and the fit measures.

    Arrays are in the model's parameter order; measures a method does not define are NaN.
    """

    names: list[str]
    coef: np.ndarray
    std_err: np.ndarray
    stat: np.ndarray
    p_value: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    level: float
    method: str
    cov_type: str
    use_t: bool
    nobs: int
    df_model: float
    df_resid: float
    target: str = "y"
    r_squared: float = float("nan")
    adj_r_squared: float = float("nan")
    f_statistic: float = float("nan")
    f_pvalue: float = float("nan")
    resid_std_err: float = float("nan")
    llf: float = float("nan")
    aic: float = float("nan")
    bic: float = float("nan")
    cov: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)
    diagnostics: dict = field(default_factory=dict)  # Omnibus ... condition number (least squares only)
    vif: np.ndarray | None = None  # per parameter, NaN for the intercept
    extra: dict = field(default_factory=dict)  # method-specific measures (bandwidth, sparsity)

    def table(self) -> list[dict]:
        stat = "t" if self.use_t else "z"
        return [{"name": n, "coef": float(c), "std_err": float(s), stat: float(t), "p_value": float(p),
                 "ci_low": float(lo), "ci_high": float(hi)}
                for n, c, s, t, p, lo, hi in zip(self.names, self.coef, self.std_err, self.stat, self.p_value,
                                                 self.ci_low, self.ci_high)]

    def measures(self) -> dict[str, float]:
        """The fit measures that apply to this method (a measure it does not define is left out)."""
        every = {"r_squared": self.r_squared, "adj_r_squared": self.adj_r_squared, "f_statistic": self.f_statistic,
                 "f_pvalue": self.f_pvalue, "resid_std_err": self.resid_std_err, "log_likelihood": self.llf,
                 "aic": self.aic, "bic": self.bic, **self.extra}
        return {k: float(v) for k, v in every.items() if not math.isnan(float(v))}

    def to_dict(self) -> dict:
        """JSON-able (an infinite value becomes None); measures that do not apply are left out."""
        clean = lambda v: None if isinstance(v, float) and not math.isfinite(v) else v  # noqa: E731
        rows = self.table()
        if self.vif is not None:
            for row, v in zip(rows, self.vif):
                row["vif"] = float(v)
        return {"method": self.method, "target": self.target, "cov_type": self.cov_type, "level": self.level,
                "distribution": "t" if self.use_t else "normal", "nobs": self.nobs,
                "df_model": self.df_model, "df_resid": self.df_resid,
                "coefficients": [{k: clean(v) for k, v in row.items()} for row in rows],
                **{k: clean(float(v)) for k, v in self.measures().items()},
                **{k: clean(float(v)) for k, v in self.diagnostics.items()}, "notes": list(self.notes)}

    def to_frame(self):
        """The coefficient table as a pandas DataFrame, one row per parameter (statsmodels' column names)."""
        return summary_frame(self)

    def __str__(self) -> str:
        return format_summary(self)

    def __repr__(self) -> str:
        return (f"<gradfit Summary: {self.method}, {self.nobs} observations, {len(self.names)} parameters, "
                f"cov {self.cov_type}>")

    def _repr_html_(self) -> str:
        return summary_html(self)


def format_summary(s: Summary) -> str:
    """A text table in the spirit of statsmodels' ``summary()`` (see :mod:`gradfit.inference.format`)."""
    return summary_text(s)


def inference(coef: np.ndarray, cov: np.ndarray, level: float, use_t: bool, df_resid: float):
    """(std err, statistic, two-sided p-value, CI low, CI high)."""
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1 (e.g. 0.95), got {level}")
    se = np.sqrt(np.clip(np.diag(cov), 0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = coef / se
    # scipy.special holds the same functions scipy.stats.t / norm call, without its slow import
    if use_t:
        p = 2 * special.stdtr(df_resid, -np.abs(stat))
        q = float(special.stdtrit(df_resid, 1 - (1 - level) / 2))
    else:
        p = 2 * special.ndtr(-np.abs(stat))
        q = float(special.ndtri(1 - (1 - level) / 2))
    return se, stat, p, coef - q * se, coef + q * se


def shifted_to_original(cov_z: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Covariance of (w, b) from that of (w, c), c = b + shift.w (the intercept of shifted features)."""
    k = cov_z.shape[0]
    A = np.eye(k)
    A[-1, :-1] = -shift
    return A @ cov_z @ A.T
