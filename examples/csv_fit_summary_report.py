"""An analyst's session: a CSV file in, a fitted model with its statistical summary, an HTML report,
and a saved model that reloads and predicts.

    python examples/csv_fit_summary_report.py [--out DIR]   # keep the files in DIR (default: a temp dir)
    GRADFIT_EXAMPLES_QUICK=1 python examples/csv_fit_summary_report.py

The same from the shell:  gradfit fit houses.csv --target price --save model.json
"""
import argparse
import os
import tempfile
from pathlib import Path

import numpy as np

import gradfit
from gradfit.data.files import open_table
from gradfit.viz.report import column_summary, write_fit_outputs

QUICK = os.environ.get("GRADFIT_EXAMPLES_QUICK") == "1"
ROWS = 300 if QUICK else 5000


def make_csv(path: Path, rows: int, seed: int = 0) -> None:
    """House prices: price = 50 + 1.2 area + 8 rooms - 0.6 age + noise (thousands)."""
    rng = np.random.default_rng(seed)
    area = rng.uniform(40, 220, rows)
    rooms = np.clip(np.round(area / 35 + rng.normal(0, 0.8, rows)), 1, 8)
    age = rng.uniform(0, 80, rows)
    price = 50 + 1.2 * area + 8 * rooms - 0.6 * age + rng.normal(0, 15, rows)
    lines = ["area,rooms,age,price"] + [f"{a:.1f},{r:.0f},{g:.1f},{p:.2f}" for a, r, g, p in zip(area, rooms, age, price)]
    path.write_text("\n".join(lines) + "\n")


def main(out: Path) -> None:
    csv = out / "houses.csv"
    make_csv(csv, ROWS)
    data = open_table(csv, target="price")  # every numeric column but the target is a feature
    model = gradfit.fit(data)                # squared loss, exact solver (one pass)
    print(f"fitted price ~ {' + '.join(model.feature_names_in_)} on {ROWS} rows ({model.solver} solver)")

    summary = model.summary(data)            # standard errors, t, p, intervals, R^2 (like statsmodels OLS)
    print(summary)
    robust = model.summary(data, cov_type="HC3")
    print("heteroskedasticity-robust (HC3) std errors:", np.round(robust.std_err, 4))

    written = write_fit_outputs(model, data, report=out / "report.html", summary=summary,
                                settings={"rows": ROWS, "source": csv.name})
    print(f"report: {written['report']} ({written['report'].stat().st_size // 1024} KiB, plots embedded)")
    print("columns:", ", ".join(f"{c['column']} mean {c['mean']:.4g}" for c in column_summary(data)))

    model.save(out / "model.json")
    again = gradfit.load(out / "model.json")
    new = {"area": np.array([80.0, 150.0]), "rooms": np.array([2.0, 4.0]), "age": np.array([30.0, 5.0])}
    import pandas as pd
    prediction = again.predict(pd.DataFrame(new))
    print(f"reloaded model predicts {np.round(prediction, 1)} for two new houses")
    assert np.allclose(again.coef_, model.coef_, rtol=0, atol=0)  # JSON round-trips bit-exactly
    assert abs(model.coefficients()["area"] - 1.2) < 0.2 and summary.r_squared > 0.8


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="folder for the CSV, report and model")
    args = parser.parse_args()
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        main(args.out)
    else:
        with tempfile.TemporaryDirectory(prefix="gradfit-example-") as tmp:
            main(Path(tmp))
