"""gradfit.sklearn's drop-ins against scikit-learn's classes, the same call on the same data (issue 16).

    python bench/run.py --dropins            # dense and sparse, writes the table in bench/README.md
    python bench/run.py --dropins --quick    # small sizes, prints only

For each class the same constructor call runs on gradfit's class and on scikit-learn's; the time is
the best of ``repeats`` fits, the objective is scikit-learn's own (its scaling, float64, computed
here from coef_ and intercept_), and ``obj diff`` is ``(ours - theirs) / |theirs|`` (<= 0: gradfit's
answer is at least as good).
"""
from __future__ import annotations

import gc
import time
import warnings

import numpy as np
import scipy.sparse as sp

MARK_BEGIN, MARK_END = "<!-- dropins-table: begin -->", "<!-- dropins-table: end -->"


def objective(name: str, kw: dict, X, y, coef, intercept, scale=None) -> float:
    r = y - np.asarray(X @ coef).reshape(-1) - intercept
    n, a = len(y), kw.get("alpha", 1.0)
    if name == "LinearRegression":
        return float(r @ r)
    if name == "Ridge":
        return float(r @ r + a * coef @ coef)
    if name in ("Lasso", "ElasticNet"):
        l1 = kw.get("l1_ratio", 1.0 if name == "Lasso" else 0.5)
        return float(r @ r / (2 * n) + a * l1 * np.abs(coef).sum() + a * (1 - l1) / 2 * coef @ coef)
    if name == "QuantileRegressor":
        q = kw.get("quantile", 0.5)
        return float(np.mean(np.where(r >= 0, q * r, (q - 1) * r)) + a * np.abs(coef).sum())
    eps, alpha = kw.get("epsilon", 1.35), kw.get("alpha", 1e-4)  # HuberRegressor, joint scale
    z = np.abs(r) / scale
    return float(np.sum(scale + scale * np.where(z <= eps, z * z, 2 * eps * z - eps * eps)) + alpha * coef @ coef)


def data(n: int, p: int, density: float | None, seed: int = 0):
    rng = np.random.default_rng(seed)
    if density is None:
        X = rng.normal(size=(n, p))
    else:
        # density * p values per row at random columns (sp.random would draw from all n * p positions:
        # 13 GB of indices at 400k x 4000)
        per_row = max(1, int(round(density * p)))
        cols = rng.integers(0, p, size=(n, per_row), dtype=np.int32)
        X = sp.csr_matrix((rng.standard_normal(n * per_row), cols.ravel(), np.arange(0, n * per_row + 1, per_row)),
                          shape=(n, p))
        X.sum_duplicates()
    w = np.zeros(p)
    w[: max(p // 5, 1)] = rng.normal(size=max(p // 5, 1)) * 3
    y = np.asarray(X @ w).reshape(-1) + 1.0 + rng.standard_t(3, size=n)
    return X, y


def cases(quick: bool) -> list[tuple[str, dict, tuple]]:
    f = 10 if quick else 1
    dense = [("LinearRegression", {}, (200_000 // f, 50, None)),
             ("Ridge", {"alpha": 1.0}, (200_000 // f, 50, None)),
             ("Lasso", {"alpha": 0.05}, (50_000 // f, 100, None)),
             ("ElasticNet", {"alpha": 0.05, "l1_ratio": 0.5}, (50_000 // f, 100, None)),
             ("QuantileRegressor", {"quantile": 0.5, "alpha": 0.0}, (5_000 // f, 20, None)),
             ("HuberRegressor", {}, (20_000 // f, 20, None)),
             ("LinearRegression", {"positive": True}, (200_000 // f, 50, None)),
             ("Ridge", {"alpha": 1.0, "positive": True}, (200_000 // f, 50, None)),
             ("Lasso", {"alpha": 0.05, "positive": True}, (50_000 // f, 100, None))]
    sparse = [("LinearRegression", {}, (100_000 // f, 1000, 0.01)),
              ("Ridge", {"alpha": 1.0}, (100_000 // f, 1000, 0.01)),
              ("Lasso", {"alpha": 0.05}, (100_000 // f, 1000, 0.01)),
              ("ElasticNet", {"alpha": 0.05, "l1_ratio": 0.5}, (100_000 // f, 1000, 0.01)),
              ("QuantileRegressor", {"quantile": 0.5, "alpha": 0.0}, (5_000 // f, 50, 0.05)),
              ("HuberRegressor", {}, (20_000 // f, 100, 0.05)),
              ("LinearRegression", {}, (400_000 // f, 4000, 0.001)),  # wide: the CG route
              ("Ridge", {"alpha": 1.0}, (400_000 // f, 4000, 0.001))]
    return dense + sparse


def best_of(make, X, y, repeats: int):
    best, est = float("inf"), None
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = make().fit(X, y)
        best = min(best, time.perf_counter() - t0)
        if best > 20:
            break
    return best, est


def run(quick: bool = False, repeats: int = 3, log=print) -> list[dict]:
    import sklearn.linear_model as lm

    import gradfit.sklearn as gs
    rows = []
    for name, kw, (n, p, density) in cases(quick):
        X, y = data(n, p, density)
        t_gf, ours = best_of(lambda: getattr(gs, name)(**kw), X, y, repeats)
        t_sk, theirs = best_of(lambda: getattr(lm, name)(**kw), X, y, repeats)
        f_gf = objective(name, kw, X, y, ours.coef_, ours.intercept_, getattr(ours, "scale_", None))
        f_sk = objective(name, kw, X, y, theirs.coef_, theirs.intercept_, getattr(theirs, "scale_", None))
        row = {"class": name, "call": f"{name}({', '.join(f'{k}={v!r}' for k, v in kw.items())})",
               "data": f"{n:,} x {p} " + ("dense" if density is None else f"sparse {density:g}"),
               "gradfit_s": t_gf, "sklearn_s": t_sk, "speedup": t_sk / t_gf,
               "obj_diff": (f_gf - f_sk) / abs(f_sk), "gap": float(ours.gap_), "converged": bool(ours.converged_),
               "method": str(getattr(ours.model_, "solver", ""))}
        rows.append(row)
        log(f"{row['call']:48s} {row['data']:24s} gradfit {t_gf:8.3f} s  sklearn {t_sk:8.3f} s  "
            f"x{row['speedup']:6.2f}  obj diff {row['obj_diff']:+.1e}  gap {row['gap']:.1e}")
    return rows


def table(rows: list[dict], command: str, note: str) -> str:
    out = [f"Command: `{command}`. {note}", "",
           "| call | data | gradfit (s) | scikit-learn (s) | sklearn / gradfit | objective diff | gradfit gap_ | "
           "gradfit method |",
           "|---|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        out.append(f"| `{r['call']}` | {r['data']} | {r['gradfit_s']:.3f} | {r['sklearn_s']:.3f} | "
                   f"{r['speedup']:.2f}x | {r['obj_diff']:+.1e} | {r['gap']:.1e} | {r.get('method', '')} |")
    return "\n".join(out)


def write_readme(path, text: str) -> None:
    from gradfit.data.atomic import write_text
    old = path.read_text()
    if MARK_BEGIN in old:
        head, rest = old.split(MARK_BEGIN, 1)
        new = head + MARK_BEGIN + "\n" + text + "\n" + MARK_END + rest.split(MARK_END, 1)[1]
    else:
        new = old.rstrip() + ("\n\n## Drop-ins against scikit-learn (`gradfit.sklearn`, issue 16)\n\n"
                              + MARK_BEGIN + "\n" + text + "\n" + MARK_END + "\n")
    write_text(path, new)


__all__ = ["run", "table", "write_readme", "objective"]
