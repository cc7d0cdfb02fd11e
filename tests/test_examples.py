"""Every script in examples/ runs (small sizes: GRADFIT_EXAMPLES_QUICK=1) and prints what it promises."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
EXPECTED = {  # script -> lines its output must contain
    "seed_tutorial.py": ["x.grad", "difference from the PyTorch loop", "exact optimum"],
    "csv_fit_summary_report.py": ["R-squared", "intercept", "report:", "reloaded model predicts"],
    "pipeline_cv.py": ["gradfit Huber", "grid search picked"],
    "stream_big_file.py": ["1. exact", "2. adam", "3. partial_fit"],
    "analyst_day.py": ["C(hood)[T.North]", "Durbin-Watson", "Cond. No.", "obs_ci_lower", "column hood has the value 'West'",
                       "price_pred_lower", "report:"],
}


def test_every_example_is_tested():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(EXPECTED)


@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_example_runs(script, tmp_path):
    if script == "pipeline_cv.py":
        pytest.importorskip("sklearn")
    if script in ("csv_fit_summary_report.py", "analyst_day.py"):
        pytest.importorskip("pandas")
    env = {**os.environ, "GRADFIT_EXAMPLES_QUICK": "1", "MPLBACKEND": "Agg",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(EXAMPLES.parent / "src"), os.environ.get("PYTHONPATH")]))}
    args = [sys.executable, str(EXAMPLES / script)]
    if script == "csv_fit_summary_report.py":
        args += ["--out", str(tmp_path)]
    out = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    for text in EXPECTED[script]:
        assert text in out.stdout, f"{script} did not print {text!r}:\n{out.stdout[-2000:]}"
    if script == "csv_fit_summary_report.py":
        report = (tmp_path / "report.html").read_text()
        assert report.startswith("<!DOCTYPE html>") and "data:image/png;base64" in report
        assert (tmp_path / "model.json").exists()
