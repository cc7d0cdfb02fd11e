"""An analyst's day with gradfit: a CSV with a text column, a formula, the statsmodels-grade summary,
diagnostics, intervals, the model file and the shell, end to end.

    python examples/analyst_day.py [--out DIR]     # keep the files in DIR (default: a temp dir)
    GRADFIT_EXAMPLES_QUICK=1 python examples/analyst_day.py

The same from the shell:
    gradfit fit homes.csv --formula "price ~ sqft + age + C(hood) + sqft:age" --summary --plot plots/ \\
        --report report.html --save model.json
    gradfit predict model.json new_homes.csv -o - --interval prediction --level 0.9
"""
import argparse
import contextlib
import io
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

import gradfit
from gradfit.cli import main as gradfit_cli
from gradfit.exceptions import DataError

QUICK = os.environ.get("GRADFIT_EXAMPLES_QUICK") == "1"
ROWS = 400 if QUICK else 2000
FORMULA = "price ~ sqft + age + C(hood) + sqft:age"


def homes(rows: int, seed: int) -> pd.DataFrame:
    """Prices in thousands: size, age, their interaction, and a neighbourhood written as text."""
    rng = np.random.default_rng(seed)
    sqft, age = rng.uniform(500, 3000, rows), rng.uniform(0, 60, rows)
    hood = rng.choice(["East", "North", "South"], rows)
    bonus = np.select([hood == "North", hood == "South"], [30.0, -10.0], 0.0)
    price = 50 + 0.1 * sqft - 0.8 * age + bonus + 0.001 * sqft * age + rng.normal(0, 15, rows)
    return pd.DataFrame({"sqft": sqft.round(1), "age": age.round(1), "hood": hood, "price": price.round(2)})


def main(out: Path) -> None:
    df = homes(ROWS, seed=0)
    df.to_csv(out / "homes.csv", index=False)

    # 1. A formula: the text column becomes statsmodels' treatment dummies, C(hood)[T.North] ...
    model = gradfit.fit(formula=FORMULA, data=df)
    print(f"1. fitted {FORMULA} on {ROWS} rows: {model!r}")

    # 2. The summary a statsmodels reader expects (Omnibus, Durbin-Watson, Jarque-Bera, Cond. No., VIF)
    summary = model.summary(df)
    print(summary)
    frame = summary.to_frame()
    print("2. as a DataFrame:", list(frame.columns))
    try:
        import statsmodels.formula.api as smf
        ref = smf.ols(FORMULA, df).fit()
        ours = model.coefficients()
        gap = max(abs(ours["intercept" if k == "Intercept" else k] - v) / abs(v) for k, v in ref.params.items())
        print(f"   largest relative difference from statsmodels' coefficients: {gap:.1e}")
    except ImportError:
        print("   (statsmodels is not installed: no side-by-side)")
    robust = model.summary(df, cov_type="HC3")
    print("   HC3 standard errors:", ", ".join(f"{n} {v:.4g}" for n, v in zip(robust.names, robust.std_err)))

    # 3. Diagnostics: the four pictures of R's plot(lm) and partial residuals, as matplotlib Figures
    fig = model.plot(df, kind="all")
    fig.savefig(out / "diagnostics.png", dpi=80)
    model.plot(df, kind="partial").savefig(out / "partial.png", dpi=80)
    print(f"3. diagnostics drawn: {len(fig.axes)} panels -> {out / 'diagnostics.png'}")

    # 4. Intervals for new homes, as statsmodels' summary_frame
    new = homes(5, seed=1).drop(columns=["price"])
    pred = model.predict(new, interval="prediction", level=0.9)
    print("4. prediction intervals (90%):")
    print(pd.concat([new, pred.round(1)], axis=1).to_string(index=False))

    # 5. Save, reload: the encoding travels in the JSON file; an unseen level is a clear error
    model.save(out / "model.json")
    again = gradfit.load(out / "model.json")
    assert np.array_equal(again.predict(new), model.predict(new))
    odd = new.assign(hood=["East", "West", "North", "South", "East"])
    try:
        again.predict(odd)
    except DataError as exc:
        print(f"5. reloaded model refuses new data: {exc}")

    # 6. The same day from the shell: fit with the report, predict to stdout with intervals
    new.to_csv(out / "new_homes.csv", index=False)
    with contextlib.redirect_stdout(io.StringIO()):
        code = gradfit_cli(["fit", str(out / "homes.csv"), "--formula", FORMULA, "--summary", "--save",
                            str(out / "cli_model.json"), "--report", str(out / "report.html"), "-q"])
    assert code == 0
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(io.StringIO()):
        code = gradfit_cli(["predict", str(out / "cli_model.json"), str(out / "new_homes.csv"), "-o", "-",
                            "--interval", "prediction", "--level", "0.9"])
    assert code == 0
    print("6. gradfit predict ... -o - --interval prediction:")
    print(captured.getvalue().strip().splitlines()[0])
    print(f"   report: {out / 'report.html'} ({(out / 'report.html').stat().st_size // 1024} KiB)")
    assert summary.r_squared > 0.9 and "C(hood)[T.North]" in model.feature_names_in_


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="folder for the files")
    args = parser.parse_args()
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        main(args.out)
    else:
        with tempfile.TemporaryDirectory(prefix="gradfit-analyst-") as tmp:
            main(Path(tmp))
