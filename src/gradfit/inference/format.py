"""How a :class:`~gradfit.inference.summary.Summary` reads: one number format and one set of labels for
the text table (CLI, ``print``), the HTML table (report, notebooks) and the DataFrame.

p-values are printed with three decimals (``0.000``) as statsmodels does; the other numbers with
a fixed number of significant digits per column.
"""
from __future__ import annotations

import html
import math

LABELS = {  # measure key -> the label statsmodels' reader knows
    "r_squared": "R-squared", "adj_r_squared": "Adj. R-squared", "f_statistic": "F-statistic",
    "f_pvalue": "Prob (F-statistic)", "resid_std_err": "Resid. std. err.", "log_likelihood": "Log-Likelihood",
    "aic": "AIC", "bic": "BIC", "bandwidth": "Bandwidth", "sparsity": "Sparsity",
    "omnibus": "Omnibus", "omnibus_pvalue": "Prob(Omnibus)", "skew": "Skew", "kurtosis": "Kurtosis",
    "durbin_watson": "Durbin-Watson", "jarque_bera": "Jarque-Bera (JB)", "jarque_bera_pvalue": "Prob(JB)",
    "condition_number": "Cond. No.",
}
PVALUES = {"f_pvalue", "omnibus_pvalue", "jarque_bera_pvalue", "p_value"}


def fmt(key: str, v: float) -> str:
    """One value as the summary prints it; ``key`` is a measure or a column (coef, std_err, stat, ...)."""
    v = float(v)
    if math.isnan(v):
        return ""
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if key in PVALUES:
        return f"{v:.3f}"
    if key in ("stat", "durbin_watson", "skew", "kurtosis", "omnibus", "vif"):
        return f"{v:.3f}"
    if key == "coef":
        return f"{v:.6g}"
    if key in ("ci_low", "ci_high"):
        return f"{v:.5g}"
    if key == "condition_number":
        return f"{v:.3g}"
    return f"{v:.4g}"


def label(s, key: str) -> str:
    if key == "r_squared" and s.method.startswith(("LAD", "QuantReg")):
        return "Pseudo R-squared"
    return LABELS.get(key, key.replace("_", " "))


def ci_names(s) -> tuple[str, str]:
    return f"[{(1 - s.level) / 2:.3g}", f"{1 - (1 - s.level) / 2:.3g}]"


def columns(s) -> list[tuple[str, str]]:
    """(key in a table row, printed header) for the coefficient table."""
    stat = "t" if s.use_t else "z"
    lo, hi = ci_names(s)
    cols = [("coef", "coef"), ("std_err", "std err"), ("stat", stat), ("p_value", f"P>|{stat}|"),
            ("ci_low", lo), ("ci_high", hi)]
    if s.vif is not None and any(math.isfinite(v) for v in s.vif):
        cols.append(("vif", "VIF"))
    return cols


def rows(s) -> list[dict]:
    """One dict per parameter with the keys of :func:`columns` (numbers)."""
    out = []
    vifs = s.vif if s.vif is not None else [float("nan")] * len(s.names)
    for i, name in enumerate(s.names):
        out.append({"name": name, "coef": s.coef[i], "std_err": s.std_err[i], "stat": s.stat[i],
                    "p_value": s.p_value[i], "ci_low": s.ci_low[i], "ci_high": s.ci_high[i], "vif": vifs[i]})
    return out


def header_pairs(s) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The two columns of the head: the model (left) and the fit measures (right), each (label, text)."""
    left = [("Dep. Variable", s.target), ("Method", s.method), ("Covariance Type", s.cov_type),
            ("No. Observations", str(s.nobs)), ("Df Model", f"{s.df_model:g}"), ("Df Residuals", f"{s.df_resid:g}")]
    right = [(label(s, k), fmt(k, v)) for k, v in s.measures().items()]
    return left, right


def diagnostic_pairs(s) -> list[tuple[str, str]]:
    return [(label(s, k), fmt(k, v)) for k, v in s.diagnostics.items() if not math.isnan(float(v))]


def _two_columns(left, right, width: int) -> list[str]:
    n = max(len(left), len(right))
    left = left + [("", "")] * (n - len(left))
    right = right + [("", "")] * (n - len(right))
    half = (width - 4) // 2
    out = []
    for (a, b), (c, d) in zip(left, right):
        la = f"{a + ':' if a else '':<{half - len(b) - 1}} {b}" if a else " " * half
        rc = f"{c + ':' if c else '':<{half - len(d) - 1}} {d}" if c else ""
        out.append(f"{la:<{half}}    {rc}".rstrip())
    return out


def summary_text(s) -> str:
    """The text table (what ``print(summary)`` and ``gradfit fit --summary`` show)."""
    cols = columns(s)
    width = max([len(n) for n in s.names] + [9])
    widths = {"coef": 12, "std_err": 11, "stat": 9, "p_value": 8, "ci_low": 11, "ci_high": 11, "vif": 9}
    line_width = max(78, width + sum(widths[k] + 1 for k, _ in cols))
    rule = "=" * line_width
    left, right = header_pairs(s)
    lines = [rule, f"gradfit {s.method} summary ({s.level * 100:g}% confidence intervals)".center(line_width), rule,
             *_two_columns(left, right, line_width), "-" * line_width,
             f"{'':<{width}}" + "".join(f" {h:>{widths[k]}}" for k, h in cols), "-" * line_width]
    for row in rows(s):
        lines.append(f"{row['name']:<{width}}" + "".join(f" {fmt(k, row[k]):>{widths[k]}}" for k, _ in cols))
    lines.append(rule)
    diag = diagnostic_pairs(s)
    if diag:
        lines += _two_columns(diag[0::2], diag[1::2], line_width)
        lines.append(rule)
    lines += [f"note: {n}" for n in s.notes]
    return "\n".join(lines)


def _e(v) -> str:
    return html.escape(str(v))


def _kv(pairs) -> str:
    return "<dl class=kv>" + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in pairs) + "</dl>"


def _columns(left, right) -> str:
    """Two label lists side by side, as statsmodels prints them; they stack on a narrow screen."""
    blocks = "".join(f"<div style=\"flex:1 1 16rem\">{_kv(pairs)}</div>" for pairs in (left, right) if pairs)
    return f"<div style=\"display:flex;flex-wrap:wrap;gap:0 3rem;margin:.5rem 0\">{blocks}</div>"


def summary_html(s) -> str:
    """The summary as HTML: the head, the coefficient table, the diagnostics, the notes (no script)."""
    cols = columns(s)
    head = "<th scope=col></th>" + "".join(f"<th scope=col>{_e(h)}</th>" for _, h in cols)
    body = "".join("<tr><th scope=row>" + _e(r["name"]) + "</th>" +
                   "".join(f"<td>{_e(fmt(k, r[k]))}</td>" for k, _ in cols) + "</tr>" for r in rows(s))
    left, right = header_pairs(s)
    parts = [f"<div class=gradfit-summary><p><b>gradfit {_e(s.method)} summary</b> "
             f"({s.level * 100:g}% confidence intervals)</p>", _columns(left, right),
             "<div class=scroll><table><thead><tr>" + head + "</tr></thead><tbody>" + body + "</tbody></table></div>"]
    diag = diagnostic_pairs(s)
    if diag:
        half = (len(diag) + 1) // 2
        parts.append("<p><b>Residual diagnostics</b></p>" + _columns(diag[:half], diag[half:]))
    parts += [f"<p class=note>{_e(n)}</p>" for n in s.notes]
    return "".join(parts) + "</div>"


def summary_frame(s):
    """pandas DataFrame of the coefficient table, indexed by parameter name."""
    import pandas as pd
    cols = columns(s)
    data = {h: [float(r[k]) for r in rows(s)] for k, h in cols}
    return pd.DataFrame(data, index=pd.Index(list(s.names), name=s.target))
