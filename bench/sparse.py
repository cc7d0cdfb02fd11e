"""Sparse designs: gradfit against scikit-learn's sparse paths, time and peak memory.

A 1M x 10k CSR design at 0.1% density (10 stored values per row, 10M in all; dense it would be
80 GB) is fitted by least squares, ridge and lasso; an L1/quantile fit runs on a smaller sparse
design (scikit-learn's QuantileRegressor with HiGHS takes minutes beyond it). Every contender runs
in its own child process, which draws the same data from a fixed seed (untimed) and reports the
wall time of the fit call and the objective of its answer; the parent reads the child's peak RSS
(``ru_maxrss`` from ``os.wait4``). A ``baseline`` child draws the data and fits nothing: peak RSS
above it is what the fit itself needed.

Objectives are scored in one scale (gradfit's): least squares ``mean r^2``; ridge ``mean r^2 +
a/2 |w|^2`` with scikit-learn's ``Ridge(alpha=A)`` = ``a = 2A/n``; lasso ``mean r^2 + a |w|_1``
with ``Lasso(alpha=A)`` = ``a = 2A``; quantile ``mean pinball + a |w|_1`` (same alpha). "vs best"
is ``(F - F_best) / F_best`` over the two answers.

    python bench/sparse.py                 # the full sizes (several minutes on a quiet machine)
    python bench/sparse.py --quick         # 100k x 2k and a small quantile case: a smoke run
    python bench/sparse.py --only lasso    # cases whose name contains "lasso"
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

GIB = 1 << 30
SIZES = {"full": {"n": 1_000_000, "p": 10_000, "density": 0.001, "qn": 20_000, "qp": 500, "qdensity": 0.02},
         "quick": {"n": 100_000, "p": 2_000, "density": 0.005, "qn": 5_000, "qp": 100, "qdensity": 0.05}}
CASES = ("least-squares", "ridge", "lasso", "quantile")
RIDGE_ALPHA = 1.0      # scikit-learn's Ridge default
LASSO_FRACTION = 0.05  # Lasso alpha as a fraction of the smallest alpha that zeroes every coefficient
QUANTILE, QUANTILE_ALPHA = 0.5, 1e-4


def make_data(n: int, p: int, density: float, seed: int = 0):
    """CSR X with about density*p standard normal values per row at random columns; y from a
    coefficient vector with 5% non-zeros plus Student-t noise."""
    import numpy as np
    import scipy.sparse as sp
    rng = np.random.default_rng(seed)
    per_row = max(1, int(round(density * p)))
    cols = rng.integers(0, p, size=(n, per_row), dtype=np.int32)
    vals = rng.standard_normal(n * per_row)
    X = sp.csr_matrix((vals, cols.ravel(), np.arange(0, n * per_row + 1, per_row)), shape=(n, p))
    X.sum_duplicates()
    coef = np.where(rng.random(p) < 0.05, rng.standard_normal(p) * 2, 0.0)
    y = X @ coef + 1.0 + rng.standard_t(5, size=n)
    return X, y


def objective(case: str, X, y, coef, intercept: float, alpha: float) -> float:
    import numpy as np
    r = y - X @ coef - intercept
    if case == "least-squares":
        return float(np.mean(r * r))
    if case == "ridge":
        return float(np.mean(r * r) + alpha / 2 * coef @ coef)
    if case == "lasso":
        return float(np.mean(r * r) + alpha * np.abs(coef).sum())
    pin = np.where(r >= 0, QUANTILE * r, (QUANTILE - 1) * r)
    return float(np.mean(pin) + alpha * np.abs(coef).sum())


def child(case: str, who: str, size: str) -> dict:
    import numpy as np
    import gradfit  # noqa: F401  (imports are in the baseline's RSS too)
    import sklearn.linear_model as lm
    s = SIZES[size]
    if case == "quantile":
        X, y = make_data(s["qn"], s["qp"], s["qdensity"], seed=1)
    else:
        X, y = make_data(s["n"], s["p"], s["density"])
    n = X.shape[0]
    if case == "lasso":
        yc = y - y.mean()
        alpha_max = float(np.abs(X.T @ yc).max()) / n  # centring of X is algebra: X'(y - ybar) suffices
        sk_alpha = LASSO_FRACTION * alpha_max
    out: dict = {"case": case, "who": who, "n": n, "p": X.shape[1], "nnz": int(X.nnz)}
    if who == "baseline":
        return out
    if who == "gradfit":  # imports untimed, as scikit-learn's are: torch and the solver modules load lazily
        from gradfit.solvers.registry import load
        load()
        assert callable(gradfit.fit)  # gradfit.api (and torch) imported here, not in the timed call
    t0 = time.perf_counter()
    if case == "least-squares":
        alpha = 0.0
        model = gradfit.fit(X, y) if who == "gradfit" else lm.LinearRegression().fit(X, y)
    elif case == "ridge":
        alpha = 2 * RIDGE_ALPHA / n
        model = (gradfit.fit(X, y, penalty="l2", alpha=alpha) if who == "gradfit"
                 else lm.Ridge(alpha=RIDGE_ALPHA).fit(X, y))
    elif case == "lasso":
        alpha = 2 * sk_alpha
        model = (gradfit.fit(X, y, penalty="l1", alpha=alpha) if who == "gradfit"
                 else lm.Lasso(alpha=sk_alpha).fit(X, y))
    else:
        alpha = QUANTILE_ALPHA
        model = (gradfit.fit(X, y, loss="quantile", quantile=QUANTILE, penalty="l1", alpha=alpha)
                 if who == "gradfit" else
                 lm.QuantileRegressor(quantile=QUANTILE, alpha=alpha, solver="highs").fit(X, y))
    out["seconds"] = time.perf_counter() - t0
    coef, b = np.asarray(model.coef_, dtype=np.float64), float(model.intercept_)
    out["objective"] = objective(case, X, y, coef, b, alpha)
    out["nonzeros"] = int((coef != 0).sum())
    if who == "gradfit":
        out["solver"], out["gap"] = model.solver, float(model.gap_)
        out["method"] = str(model.info.get("method", ""))
    return out


def run_child(case: str, who: str, size: str) -> dict:
    proc = subprocess.Popen([sys.executable, __file__, "--child", case, who, size], stdout=subprocess.PIPE, text=True)
    text = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        return {"case": case, "who": who, "error": f"exit code {code}", "peak_rss": usage.ru_maxrss * 1024}
    result = json.loads(text.strip().splitlines()[-1])
    result["peak_rss"] = usage.ru_maxrss * 1024  # Linux reports KiB
    return result


def table(results: list[dict]) -> str:
    lines = ["| case | data | contender | time (s) | gradfit speed-up | peak RSS (GiB) | RSS above baseline (GiB) "
             "| objective vs best | notes |", "|---|---|---|---|---|---|---|---|---|"]
    for case in CASES:
        rows = {r["who"]: r for r in results if r["case"] == case}
        if "gradfit" not in rows:
            continue
        base = rows.get("baseline", {}).get("peak_rss", 0)
        scored = [r["objective"] for r in rows.values() if "objective" in r]
        best = min(scored) if scored else float("nan")
        g = rows["gradfit"]
        data = f"{g.get('n', 0):,} x {g.get('p', 0):,}, {g.get('nnz', 0):,} stored"
        for who in ("gradfit", "sklearn"):
            r = rows.get(who)
            if r is None:
                continue
            if "error" in r:
                lines.append(f"| {case} | {data} | {who} | failed ({r['error']}) | | {r['peak_rss'] / GIB:.2f} | | | |")
                continue
            speed = (f"{rows['sklearn']['seconds'] / g['seconds']:.2f}x" if who == "gradfit" and "seconds" in
                     rows.get("sklearn", {}) else "")
            rel = (r["objective"] - best) / abs(best) if best == best and best else float("nan")
            note = (f"{g['solver']} {g.get('method', '')}, certified gap {g['gap']:.1e}".replace("  ", " ")
                    if who == "gradfit" else _sk_name(case))
            lines.append(f"| {case} | {data} | {who} | {r['seconds']:.2f} | {speed} | {r['peak_rss'] / GIB:.2f} | "
                         f"{(r['peak_rss'] - base) / GIB:.2f} | {rel:.1e} | {note}; {r['nonzeros']} non-zero coef |")
    return "\n".join(lines)


def _sk_name(case: str) -> str:
    return {"least-squares": "LinearRegression (sparse: lsqr)", "ridge": f"Ridge(alpha={RIDGE_ALPHA}) (sparse_cg)",
            "lasso": f"Lasso (sparse CD), alpha = {LASSO_FRACTION} alpha_max",
            "quantile": f"QuantileRegressor(highs, alpha={QUANTILE_ALPHA})"}[case]


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    ap.add_argument("--only", action="append", default=[], help="cases whose name contains this (repeatable)")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(*args.child)))
        return []
    size = "quick" if args.quick else "full"
    results = []
    for case in CASES:
        if args.only and not any(o in case for o in args.only):
            continue
        for who in ("baseline", "gradfit", "sklearn"):
            r = run_child(case, who, size)
            results.append(r)
            shown = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()}
            print(json.dumps(shown), flush=True)
    with open("/proc/loadavg") as fh:
        load = fh.read().split()[:3]
    print(f"\nload average {' '.join(load)}; command: python bench/sparse.py{' --quick' if args.quick else ''}\n")
    print(table(results))
    return results


if __name__ == "__main__":
    main()
