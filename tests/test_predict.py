"""predict_file and `gradfit predict`: features by name in any order, CSV/Parquet out, atomic, and the
CLI reading flags (--weight, --drop-na, --delimiter, --no-header) end to end against in-memory fits."""
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import gradfit
from gradfit.data.batches import DataError
from gradfit.data.files import predict_file


@pytest.fixture
def frame():
    rng = np.random.default_rng(7)
    n = 400
    df = pd.DataFrame({"id": np.arange(n), "a": rng.normal(size=n), "b": rng.normal(size=n),
                       "city": rng.choice(["Oslo", "Lima, Peru"], n)})
    df["y"] = 2 * df["a"] - df["b"] + 1 + 0.1 * rng.normal(size=n)
    df["w"] = rng.uniform(0.1, 3.0, n)
    return df


@pytest.fixture
def model(frame):
    return gradfit.fit(frame[["a", "b"]], frame["y"])


def read(path):
    return pd.read_parquet(path) if str(path).endswith(".parquet") else pd.read_csv(path)


@pytest.mark.parametrize("src_ext", ["csv", "parquet"])
@pytest.mark.parametrize("out_ext", ["csv", "parquet"])
def test_predict_matches_model_and_keeps_columns(tmp_path, frame, model, src_ext, out_ext):
    src = tmp_path / f"in.{src_ext}"
    reordered = frame[["b", "city", "id", "a", "y"]]  # features in another order, other columns around
    if src_ext == "csv":
        reordered.to_csv(src, index=False)
    else:
        pq.write_table(pa.Table.from_pandas(reordered, preserve_index=False), src, row_group_size=64)
    out = tmp_path / f"out.{out_ext}"
    rows = predict_file(model, src, out, batch_rows=50)
    assert rows == len(frame)
    got = read(out)
    assert list(got.columns) == ["b", "city", "id", "a", "y", "y_pred"]
    np.testing.assert_allclose(got["y_pred"].to_numpy(), model.predict(frame[["a", "b"]]), rtol=1e-12)
    ids = got["id"].tolist()
    if src_ext == "csv" and out_ext == "parquet":  # a CSV's other columns are copied as their text
        ids = [int(v) for v in ids]
    assert got["city"].tolist() == frame["city"].tolist() and ids == frame["id"].tolist()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_prediction_column_without_target_name_and_replaced(tmp_path, frame):
    model = gradfit.fit(frame[["a", "b"]].to_numpy(), frame["y"].to_numpy())  # names x0, x1; no target
    df = frame[["a", "b"]].rename(columns={"a": "x0", "b": "x1"}).assign(prediction=0.0)
    df.to_csv(tmp_path / "in.csv", index=False)
    predict_file(model, tmp_path / "in.csv", tmp_path / "out.csv")
    got = pd.read_csv(tmp_path / "out.csv")
    assert list(got.columns) == ["x0", "x1", "prediction"]
    np.testing.assert_allclose(got["prediction"], model.predict(frame[["a", "b"]].to_numpy()), rtol=1e-12)


def test_missing_feature_fails_and_keeps_old_output(tmp_path, frame, model, run_cli):
    frame[["a", "city"]].to_csv(tmp_path / "in.csv", index=False)
    out = tmp_path / "out.csv"
    out.write_text("old\n")
    with pytest.raises(DataError, match=r"in\.csv is missing feature column\(s\) b that the model was fitted on; "
                                        r"it has a, city"):
        predict_file(model, tmp_path / "in.csv", out)
    model.save(tmp_path / "m.json")
    code, _, err = run_cli("predict", tmp_path / "m.json", tmp_path / "in.csv", "-o", out)
    assert code == 2 and "missing feature column(s) b" in err and err.count("\n") == 1
    assert out.read_text() == "old\n"


def test_bad_row_midway_leaves_no_output(tmp_path, frame, model, run_cli):
    df = frame[["a", "b"]].copy()
    df.loc[300, "b"] = np.nan
    df.to_csv(tmp_path / "in.csv", index=False)
    model.save(tmp_path / "m.json")
    out = tmp_path / "out.parquet"
    code, _, err = run_cli("predict", tmp_path / "m.json", tmp_path / "in.csv", "-o", out)
    assert code == 2 and "column 'b' has a missing" in err and "data row 301 (line 302)" in err
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] != []
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]
    code, stdout, err = run_cli("predict", tmp_path / "m.json", tmp_path / "in.csv", "-o", out, "--drop-na")
    assert code == 0 and "wrote 399 predictions" in stdout
    assert len(pd.read_parquet(out)) == 399


def test_unknown_output_extension(tmp_path, frame, model):
    frame.to_csv(tmp_path / "in.csv", index=False)
    with pytest.raises(DataError, match=r"cannot tell the output format of .*out\.xlsx; name it \.csv or \.parquet"):
        predict_file(model, tmp_path / "in.csv", tmp_path / "out.xlsx")


@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_cli_fit_save_predict_equals_in_memory_fit(tmp_path, frame, ext, run_cli):
    src = tmp_path / f"d.{ext}"
    if ext == "csv":
        frame.to_csv(src, index=False)
    else:
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), src)
    code, out, err = run_cli("fit", src, "--target", "y", "--features", "a,b", "--weight", "w",
                             "--save", tmp_path / "m.json", "--quiet")
    assert code == 0, err
    saved = gradfit.load(tmp_path / "m.json")
    ref = gradfit.fit(frame[["a", "b"]], frame["y"], sample_weight=frame["w"])
    np.testing.assert_allclose(saved.coef_, ref.coef_, rtol=1e-10)
    assert saved.intercept_ == pytest.approx(ref.intercept_, rel=1e-10)
    for out_ext in ("csv", "parquet"):
        target = tmp_path / f"pred.{out_ext}"
        code, stdout, err = run_cli("predict", tmp_path / "m.json", src, "-o", target)
        assert code == 0 and f"wrote {len(frame)} predictions" in stdout, err
        np.testing.assert_allclose(read(target)["y_pred"], ref.predict(frame), rtol=1e-10)


def test_cli_no_header_delimiter_drop_na(tmp_path, frame, run_cli):
    body = frame[["a", "b", "y"]].copy()
    body.iloc[[5, 17], 0] = np.nan
    src = tmp_path / "d.txt"
    body.to_csv(src, sep="|", header=False, index=False)
    code, out, err = run_cli("fit", src, "--target", "c2", "--no-header", "--delimiter", "|", "--drop-na",
                             "--save", tmp_path / "m.json")
    assert code == 0, err
    kept = body.dropna()
    ref = gradfit.fit(kept[["a", "b"]].to_numpy(), kept["y"].to_numpy())
    saved = gradfit.load(tmp_path / "m.json")
    assert saved.feature_names_in_ == ["c0", "c1"] and saved.target_name == "c2"
    assert saved.info["n_rows"] == len(kept) == 398
    np.testing.assert_allclose(saved.coef_, ref.coef_, rtol=1e-10)
    code, out, err = run_cli("predict", tmp_path / "m.json", src, "-o", tmp_path / "p.csv", "--no-header",
                             "--delimiter", "|", "--drop-na")
    assert code == 0, err
    got = pd.read_csv(tmp_path / "p.csv")
    assert list(got.columns) == ["c0", "c1", "c2", "c2_pred"] and len(got) == 398
    np.testing.assert_allclose(got["c2_pred"], ref.predict(kept[["a", "b"]].to_numpy()), rtol=1e-10)
