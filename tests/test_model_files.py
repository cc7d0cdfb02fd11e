"""model.json: the fields the issue lists, bit-exact floats, atomic writes, and files that are not ours."""
import json
import os
import struct

import numpy as np
import pytest

import gradfit
from gradfit.model import FORMAT_VERSION, LinearModel, ModelFileError, load


@pytest.fixture
def fitted(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = X @ [1.0, -2.0, 0.5] + 1.0 + rng.normal(size=200)
    import pandas as pd
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    return gradfit.fit(df, pd.Series(y, name="price"), solver="adam", lr=0.1, epochs=30, warn=False)


def test_file_has_every_field_of_the_issue(fitted, tmp_path):
    path = tmp_path / "m.json"
    fitted.save(path)
    d = json.loads(path.read_text())
    assert d["format"] == "gradfit-model" and d["format_version"] == FORMAT_VERSION
    assert d["gradfit_version"] == gradfit.__version__
    assert d["feature_names"] == ["a", "b", "c"] and d["target"] == "price"
    assert len(d["coef"]) == 3 and isinstance(d["intercept"], float)
    assert d["loss"]["name"] == "squared" and d["penalty"]["name"] == "none" and d["solver"] == "adam"
    tr = d["training"]
    assert tr["n_rows"] == 200 and tr["n_iter"] == 30  # rows and epochs
    assert tr["final_loss"] == pytest.approx(fitted.final_loss_) and "gap" in tr and "converged" in tr
    back = load(path)
    assert back.target_name == "price" and back.info["n_rows"] == 200 and back.n_iter_ == 30
    assert back.final_loss_ == fitted.final_loss_ and back.solver == "adam"


def test_floats_round_trip_bit_exactly(tmp_path):
    rng = np.random.default_rng(42)
    bits = rng.integers(0, 2**64, size=400, dtype=np.uint64)
    values = bits.view(np.float64)
    values = values[np.isfinite(values)]
    extremes = np.array([5e-324, -5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 0.1, -0.0, 1 / 3])
    coef = np.r_[values, extremes, rng.normal(size=50) * 10.0 ** rng.integers(-300, 300, 50)]
    model = LinearModel(coef, float(coef[0]), [f"x{i}" for i in range(len(coef))])
    path = tmp_path / "m.json"
    model.save(path)
    back = load(path)
    assert back.coef_.view(np.uint64).tolist() == coef.view(np.uint64).tolist()
    assert struct.pack("<d", back.intercept_) == struct.pack("<d", model.intercept_)
    np.testing.assert_array_equal(back.predict(np.eye(len(coef))[:3]), model.predict(np.eye(len(coef))[:3]))


def test_no_pickle_nothing_executed(tmp_path, fitted):
    path = tmp_path / "m.json"
    fitted.save(path)
    text = path.read_text()
    json.loads(text)  # plain JSON
    assert "pickle" not in text and "__" not in text


@pytest.mark.parametrize("where", ["dumps", "replace"])
def test_failed_write_leaves_old_file_intact(fitted, tmp_path, monkeypatch, where):
    path = tmp_path / "m.json"
    fitted.save(path)
    before = path.read_bytes()
    other = LinearModel(np.array([9.0, 9.0, 9.0]), 9.0, ["a", "b", "c"])

    def boom(*a, **k):
        raise OSError(28, "No space left on device")
    if where == "dumps":
        monkeypatch.setattr("gradfit.model.json.dumps", boom)
    else:
        monkeypatch.setattr("gradfit.data.atomic.os.replace", boom)
    with pytest.raises(OSError):
        other.save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.json"]  # no temporary file left behind


def test_a_non_finite_model_is_refused_and_not_written(tmp_path):
    with pytest.raises(ValueError):
        LinearModel(np.array([np.nan]), 0.0, ["a"]).save(tmp_path / "m.json")
    assert not (tmp_path / "m.json").exists()


def _good(fitted):
    return fitted.to_dict()


BAD = {  # name: (file text maker, expected message)
    "not json": (lambda d: "PK\x03\x04 zip bytes", r"is not valid JSON .* truncated or not a gradfit model"),
    "truncated": (lambda d: json.dumps(d)[:80], r"is not valid JSON"),
    "empty": (lambda d: "", r"is not valid JSON"),
    "other json": (lambda d: json.dumps({"coef": [1, 2]}), r"is not a gradfit model file"),
    "json list": (lambda d: "[1, 2, 3]", r"is not a gradfit model file"),
    "future version": (lambda d: json.dumps({**d, "format_version": FORMAT_VERSION + 1}),
                       r"format version 2, newer than this gradfit reads \(1\); upgrade gradfit"),
    "bad version": (lambda d: json.dumps({**d, "format_version": "one"}), r"invalid format_version 'one'"),
    "too few coefficients": (lambda d: json.dumps({**d, "coef": d["coef"][:2]}),
                             r"has 2 coefficients for 3 features; the file is damaged"),
    "too many coefficients": (lambda d: json.dumps({**d, "coef": d["coef"] + [1.0]}),
                              r"has 4 coefficients for 3 features"),
    "missing intercept": (lambda d: json.dumps({k: v for k, v in d.items() if k != "intercept"}),
                          r"is damaged: missing or invalid field 'intercept'"),
    "text coefficient": (lambda d: json.dumps({**d, "coef": ["one", 2, 3]}), r"is damaged"),
    "duplicate feature": (lambda d: json.dumps({**d, "feature_names": ["a", "a", "c"]}), r"names a feature twice"),
    "infinite coefficient": (lambda d: json.dumps({**d, "coef": [1e999, 1, 2]}), r"non-finite coefficients"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_model_files(name, fitted, tmp_path, run_cli):
    make, pattern = BAD[name]
    path = tmp_path / "m.json"
    path.write_text(make(_good(fitted)))
    with pytest.raises(ModelFileError, match=pattern):
        load(path)
    data = tmp_path / "d.csv"
    data.write_text("a,b,c\n1,2,3\n")
    code, out, err = run_cli("predict", path, data, "-o", tmp_path / "out.csv")
    assert code == 2 and err.startswith("gradfit: error: ") and err.count("\n") == 1
    assert "m.json" in err and not (tmp_path / "out.csv").exists()


def test_missing_or_unreadable_model_file(tmp_path, run_cli):
    with pytest.raises(ModelFileError, match="no such model file"):
        load(tmp_path / "none.json")
    with pytest.raises(ModelFileError, match="cannot read the model file"):
        load(tmp_path)  # a folder
    code, out, err = run_cli("predict", tmp_path / "none.json", tmp_path / "d.csv", "-o", tmp_path / "o.csv")
    assert code == 2 and "no such model file" in err
