"""`gradfit fit` and `gradfit predict` on CSV and Parquet files made here."""
import json
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import gradfit


@pytest.fixture
def table():
    rng = np.random.default_rng(5)
    n = 300
    df = pd.DataFrame({"size": rng.uniform(20, 200, n), "rooms": rng.integers(1, 6, n).astype(float),
                       "age": rng.uniform(0, 80, n)})
    df["price"] = 3.0 * df["size"] + 12.0 * df["rooms"] - 0.8 * df["age"] + 40 + rng.normal(0, 5, n)
    return df


@pytest.fixture(params=["csv", "parquet"])
def data_file(request, tmp_path, table):
    path = tmp_path / f"houses.{request.param}"
    if request.param == "csv":
        table.to_csv(path, index=False)
    else:
        pq.write_table(pa.Table.from_pandas(table, preserve_index=False), path)
    return path


def ols(df, features, target="price"):
    A = np.c_[df[features].to_numpy(), np.ones(len(df))]
    return np.linalg.lstsq(A, df[target].to_numpy(), rcond=None)[0]


def test_fit_prints_coefficients_by_name(run_cli, data_file, table):
    code, out, err = run_cli("fit", data_file, "--target", "price")
    assert code == 0, err
    ref = ols(table, ["size", "rooms", "age"])
    for name, value in zip(["size", "rooms", "age", "intercept"], ref):
        m = re.search(rf"^\s+{name}\s+(\S+)$", out, re.M)
        assert m, f"{name} missing from\n{out}"
        assert float(m.group(1)) == pytest.approx(value, rel=1e-8)
    assert re.search(r"^final loss \S+", out, re.M)
    assert re.search(r"^converged after \d+ iterations", out, re.M)


def test_fit_features_and_gradient_logging(run_cli, data_file, table):
    code, out, err = run_cli("fit", data_file, "--target", "price", "--features", "size,rooms",
                             "--optimizer", "adam", "--lr", "0.5", "--epochs", "40", "--log-every", "10")
    assert code == 0, err
    assert re.findall(r"^epoch\s+(\d+)\s+loss", out, re.M)[:4] == ["0", "10", "20", "30"]
    assert "age" not in out.split("feature")[1]
    assert "NOT converged" in out and "did not converge" in err
    assert "\r[" not in err  # no progress bar when stderr is not a terminal


def test_fit_json_save_and_predict(run_cli, data_file, table, tmp_path):
    model_path = tmp_path / "model.json"
    code, out, err = run_cli("fit", data_file, "--target", "price", "--loss", "huber", "--json",
                             "--save", model_path)
    assert code == 0, err
    result = json.loads(out)
    assert result["feature_names"] == ["size", "rooms", "age"] and result["loss"]["name"] == "huber"
    saved = gradfit.load(model_path)
    assert saved.coef_.tolist() == result["coef"]
    for ext in ("csv", "parquet"):
        target = tmp_path / f"pred.{ext}"
        code, out, err = run_cli("predict", model_path, data_file, "-o", target)
        assert code == 0, err
        pred = pd.read_csv(target) if ext == "csv" else pd.read_parquet(target)
        col = [c for c in pred.columns if "pred" in c.lower()][0]
        np.testing.assert_allclose(pred[col].to_numpy(), saved.predict(table), rtol=1e-12)


@pytest.mark.parametrize("loss", ["l1", "quantile"])
def test_fit_robust_losses_from_the_shell(run_cli, data_file, loss):
    code, out, err = run_cli("fit", data_file, "--target", "price", "--loss", loss, "--quiet")
    assert code == 0, err
    assert f"loss {'absolute' if loss == 'l1' else 'quantile'}" in out
    assert "epoch" not in out


def test_diverging_fit_from_the_shell_is_one_line(run_cli, data_file, tmp_path):
    code, out, err = run_cli("fit", data_file, "--target", "price", "--optimizer", "sgd", "--lr", "10",
                             "--save", tmp_path / "never.json")
    assert code == 2
    assert err.startswith("gradfit: error: sgd diverged") and "smaller learning rate" in err
    assert err.count("\n") == 1
    assert not (tmp_path / "never.json").exists()
