"""A distributed fit (--nproc 2) prints the summary and writes the plots and the report (issue 17):
the summary's every number equals the one-process summary; the pictures come from a gathered sample."""
import json

import numpy as np
import pytest

from gradfit.cli import main

pd = pytest.importorskip("pandas")


def test_nproc_2_summary_plots_and_report_equal_one_process(tmp_path, capsys):
    rng = np.random.default_rng(3)
    n = 1001
    X = rng.normal(size=(n, 3)) * [1, 2, 0.5] + [1, -1, 3]
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    df["y"] = X @ [1.5, -0.2, 3.0] + 7 + rng.standard_t(4, size=n)
    df["w"] = rng.uniform(0.5, 2.0, size=n)
    df.to_csv(tmp_path / "d.csv", index=False)  # one CSV cut into two byte ranges
    args = ["fit", str(tmp_path / "d.csv"), "--target", "y", "--weight", "w", "--summary", "--cov-type", "HC3",
            "--json", "-q"]
    assert main(args) == 0
    one = json.loads(capsys.readouterr().out)["summary"]
    code = main([*args, "--nproc", "2", "--plot", str(tmp_path / "p"), "--report", str(tmp_path / "r.html")])
    out = capsys.readouterr()
    assert code == 0, out.err
    result = json.loads(out.out)
    two = result["summary"]
    for key, v in one.items():  # R^2, F, AIC, Omnibus, Durbin-Watson (across the shard boundary), ...
        if isinstance(v, float):
            assert two[key] == pytest.approx(v, rel=1e-9, abs=1e-300), key
    for a, b in zip(one["coefficients"], two["coefficients"]):
        assert b["std_err"] == pytest.approx(a["std_err"], rel=1e-9)
        assert (a["vif"] is None and b["vif"] is None) or b["vif"] == pytest.approx(a["vif"], rel=1e-9)
    assert {p.name for p in (tmp_path / "p").iterdir()} >= {"diagnostics.png", "partial_residuals.png"}
    html = (tmp_path / "r.html").read_text()
    assert "Durbin-Watson" in html and html.count("data:image/png;base64,") == 5
    assert html.count("<td>1001</td>") == 4  # the column summary counts every process's rows (a, b, c, y)


def test_nproc_2_formula_fit_equals_one_process(tmp_path, capsys):
    pytest.importorskip("formulaic")
    rng = np.random.default_rng(1)
    n = 600
    df = pd.DataFrame({"sqft": rng.uniform(500, 3000, n), "age": rng.uniform(0, 60, n),
                       "hood": rng.choice(["East", "North", "South"], n)})
    df["price"] = 50 + 0.1 * df.sqft - 0.8 * df.age + np.where(df.hood == "North", 30, 0) + rng.normal(0, 15, n)
    df.to_csv(tmp_path / "homes.csv", index=False)
    args = ["fit", str(tmp_path / "homes.csv"), "--formula", "price ~ sqft + age + C(hood) + sqft:age", "--summary",
            "--json", "-q"]
    assert main(args) == 0
    one = json.loads(capsys.readouterr().out)
    code = main([*args, "--nproc", "2", "--save", str(tmp_path / "m.json")])
    out = capsys.readouterr()
    assert code == 0, out.err
    two = json.loads(out.out)
    assert two["feature_names"] == one["feature_names"]  # levels from every row, not one shard's
    assert np.allclose(two["coef"], one["coef"], rtol=1e-10)
    assert two["summary"]["durbin_watson"] == pytest.approx(one["summary"]["durbin_watson"], rel=1e-10)
    assert json.loads((tmp_path / "m.json").read_text())["formula"]["encoder"]["C(hood)"]["categories"] == \
        ["East", "North", "South"]


def test_nproc_2_huber_summary_equals_one_process(tmp_path, capsys):
    """The Huber sandwich's two moment matrices (weights s and s * psi') are moved to one shift across
    processes before they are added."""
    rng = np.random.default_rng(4)
    X = rng.normal(size=(801, 2)) * [1, 2] + [5, -3]
    df = pd.DataFrame(X, columns=["a", "b"])
    df["y"] = X @ [1.5, -0.2] + 7 + rng.standard_t(2, size=len(X))
    df["w"] = rng.uniform(0.5, 2.0, size=len(X))
    df.to_csv(tmp_path / "d.csv", index=False)
    args = ["fit", str(tmp_path / "d.csv"), "--target", "y", "--weight", "w", "--loss", "huber", "--summary",
            "--cov-type", "H3", "--json", "-q"]
    assert main(args) == 0
    one = json.loads(capsys.readouterr().out)["summary"]
    assert main([*args, "--nproc", "2"]) == 0
    two = json.loads(capsys.readouterr().out)["summary"]
    assert two["cov_type"] == "H3" and two["nobs"] == one["nobs"]
    for a, b in zip(one["coefficients"], two["coefficients"]):  # the two fits agree to ~1e-9
        assert b["std_err"] == pytest.approx(a["std_err"], rel=1e-7)
