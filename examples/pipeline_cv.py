"""An ML engineer's view: gradfit's estimators inside scikit-learn pipelines, cross-validation and
grid search, on data with outliers where a robust loss pays off.

    python examples/pipeline_cv.py
    GRADFIT_EXAMPLES_QUICK=1 python examples/pipeline_cv.py
"""
import os
import warnings

import numpy as np
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from gradfit import HuberRegressor, LinearRegressor, QuantileRegressor

QUICK = os.environ.get("GRADFIT_EXAMPLES_QUICK") == "1"
ROWS, FEATURES = (400, 8) if QUICK else (5000, 20)


def make_data(seed: int = 0):
    """A sparse linear signal with 5% gross outliers in y."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(ROWS, FEATURES)) * rng.uniform(0.1, 10, FEATURES)
    w = np.zeros(FEATURES)
    w[:4] = [3.0, -2.0, 1.0, 0.5]
    y = X @ (w / X.std(0)) + 1.0 + rng.normal(0, 0.5, ROWS)
    bad = rng.random(ROWS) < 0.05
    y[bad] += rng.normal(0, 30, bad.sum())
    return X, y


def main() -> None:
    X, y = make_data()
    cv = KFold(5, shuffle=True, random_state=0)
    # held-out mean absolute error: robust to the outliers in the test folds too
    score = "neg_mean_absolute_error"

    print(f"{ROWS} rows, {FEATURES} features, 5% outliers; 5-fold CV mean absolute error (lower is better)")
    candidates = {
        "sklearn Ridge": make_pipeline(StandardScaler(), Ridge(alpha=1.0)),
        "gradfit least squares": make_pipeline(StandardScaler(), LinearRegressor()),
        "gradfit Huber": make_pipeline(StandardScaler(), HuberRegressor()),  # scikit-learn's, exact
        "gradfit median (quantile 0.5)": make_pipeline(StandardScaler(), QuantileRegressor(quantile=0.5, alpha=0.0)),
    }
    results = {}
    for name, pipe in candidates.items():
        results[name] = -cross_val_score(pipe, X, y, cv=cv, scoring=score)
        print(f"  {name:<30} {results[name].mean():.4f} +- {results[name].std():.4f}")
    assert results["gradfit Huber"].mean() < results["gradfit least squares"].mean()

    # choose the loss and the penalty by grid search; alpha is gradfit's P(w) strength
    pipe = make_pipeline(StandardScaler(), LinearRegressor())
    grid = {"linearregressor__loss": ["squared", "huber"],
            "linearregressor__alpha": [0.0, 0.01, 0.1],
            "linearregressor__l1_ratio": [0.0]}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every candidate converges: no ConvergenceWarning
        search = GridSearchCV(pipe, grid, cv=cv, scoring=score).fit(X, y)
    best = search.best_estimator_[-1]
    print(f"grid search picked {search.best_params_} (MAE {-search.best_score_:.4f})")
    print(f"  fitted: solver converged={best.converged_}, n_iter_={best.n_iter_}, gap_={best.gap_:.1e}")
    print("  coefficients (standardized units):", np.round(best.coef_, 3).tolist())
    assert search.best_params_["linearregressor__loss"] == "huber"


if __name__ == "__main__":
    main()
