"""Formulas and categorical columns (issue 17) against statsmodels.formula.api.ols; the encoding survives
the model file, predict applies it, an unseen level is a one-line error; streamed files give the same fit."""
import json

import numpy as np
import pytest

import gradfit
from gradfit.cli import main
from gradfit.data.batches import DataError

pd = pytest.importorskip("pandas")
smf = pytest.importorskip("statsmodels.formula.api")
pytest.importorskip("formulaic")

FORMULA = "price ~ sqft + age + C(hood) + sqft:age"
TOL = 1e-8


def homes(n=400, seed=1):
    rng = np.random.default_rng(seed)
    sqft, age = rng.uniform(500, 3000, n), rng.uniform(0, 60, n)
    hood = rng.choice(["North", "South", "East"], n)
    price = 50 + 0.1 * sqft - 0.8 * age + np.select([hood == "North", hood == "South"], [30, -10], 0) \
        + 0.001 * sqft * age + rng.normal(0, 15, n)
    return pd.DataFrame({"sqft": sqft, "age": age, "hood": hood, "price": price,
                         "w": rng.uniform(0.5, 2.0, n)})


def by_name(model):
    return model.coefficients()


def check_against_statsmodels(model, r, s):
    ours = by_name(model)
    theirs = r.params.rename({"Intercept": "intercept"}).to_dict()
    assert set(ours) == set(theirs)  # statsmodels' names: C(hood)[T.North], sqft:age
    for name, v in theirs.items():
        assert abs(ours[name] - v) <= TOL * max(abs(v), 1e-3), name
    se = dict(zip(s.names, s.std_err))
    for name, v in r.bse.rename({"Intercept": "intercept"}).items():
        assert abs(se[name] - v) <= TOL * v, name
    assert abs(s.r_squared - r.rsquared) < TOL and abs(s.diagnostics["condition_number"] / r.condition_number - 1) < TOL


@pytest.mark.parametrize("weighted", [False, True])
def test_formula_fit_equals_statsmodels_ols(weighted):
    df = homes()
    w = df["w"] if weighted else None
    model = gradfit.fit(formula=FORMULA, data=df, sample_weight=w)
    r = (smf.wls(FORMULA, df, weights=df["w"]) if weighted else smf.ols(FORMULA, df)).fit()
    s = model.summary(df, sample_weight=w)  # the frame holds the target: the formula gives X and y
    check_against_statsmodels(model, r, s)
    assert model.target_name == "price" and "C(hood)[T.North]" in str(s)


def test_encoding_survives_the_model_file_and_predict_applies_it(tmp_path):
    df = homes()
    model = gradfit.fit(formula=FORMULA, data=df)
    model.summary(df)
    model.save(tmp_path / "m.json")
    saved = json.loads((tmp_path / "m.json").read_text())
    assert saved["formula"]["encoder"]["C(hood)"]["categories"] == ["East", "North", "South"]
    again = gradfit.load(tmp_path / "m.json")
    new = homes(9, seed=5).drop(columns=["price"])
    r = smf.ols(FORMULA, df).fit()
    assert np.max(np.abs(again.predict(new) - r.predict(new).to_numpy())) < 1e-8
    frame = r.get_prediction(new).summary_frame()
    ours = again.predict(new, interval="prediction")
    assert np.max(np.abs(ours["obs_ci_upper"] - frame["obs_ci_upper"])) < 1e-8


def test_an_unseen_level_names_the_column_and_the_value():
    df = homes()
    model = gradfit.fit(formula=FORMULA, data=df)
    new = homes(5, seed=2).drop(columns=["price"])
    new.loc[3, "hood"] = "West"
    with pytest.raises(DataError, match=r"row 4: column hood has the value 'West'.*levels East, North, South"):
        model.predict(new)
    with pytest.raises(DataError, match="missing column.s. age that the formula"):
        model.predict(new.drop(columns=["age"]))


def test_declared_levels_set_the_base_and_refuse_other_values():
    df = homes()
    model = gradfit.fit(formula=FORMULA, data=df, levels={"hood": ["North", "East", "South"]})
    assert "C(hood)[T.East]" in model.feature_names_in_ and "C(hood)[T.North]" not in model.feature_names_in_
    plain = gradfit.fit(formula=FORMULA, data=df)
    new = homes(6, seed=3)
    assert np.max(np.abs(model.predict(new) - plain.predict(new))) < 1e-8  # the same column space
    with pytest.raises(DataError, match="declared levels"):
        gradfit.fit(formula=FORMULA, data=df, levels={"hood": ["North", "East"]})


def test_streamed_parquet_gives_the_in_memory_fit(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa
    from gradfit.data.formula import open_formula
    df = homes()
    pq.write_table(pa.Table.from_pandas(df), tmp_path / "homes.parquet", row_group_size=64)
    source = open_formula(tmp_path / "homes.parquet", FORMULA, batch_rows=50)
    assert source.full_batch() is None and source.design.categorical == {"C(hood)": ["East", "North", "South"]}
    streamed, memory = gradfit.fit(source), gradfit.fit(formula=FORMULA, data=df)
    a, b = by_name(streamed), by_name(memory)
    assert all(abs(a[k] - b[k]) <= 1e-9 * max(abs(b[k]), 1) for k in b)
    s1, s2 = streamed.summary(source), memory.summary(df)
    assert np.max(np.abs(s1.std_err / s2.std_err - 1)) < 1e-9


def test_cli_formula_fit_save_predict_and_the_unseen_level(tmp_path, capsys):
    df = homes()
    df.drop(columns=["w"]).to_csv(tmp_path / "homes.csv", index=False)
    code = main(["fit", str(tmp_path / "homes.csv"), "--formula", FORMULA, "--save", str(tmp_path / "m.json"),
                 "--summary", "-q"])
    out = capsys.readouterr().out
    assert code == 0 and "C(hood)[T.South]" in out and "Durbin-Watson" in out
    r = smf.ols(FORMULA, df).fit()
    model = gradfit.load(tmp_path / "m.json")
    assert abs(model.coefficients()["sqft:age"] - r.params["sqft:age"]) < 1e-8 * abs(r.params["sqft:age"])
    assert main(["plot", str(tmp_path / "m.json"), str(tmp_path / "homes.csv"), "--summary"]) == 0
    assert "C(hood)[T.North]" in capsys.readouterr().out  # gradfit plot encodes the file by the saved formula
    new = homes(4, seed=9).drop(columns=["price", "w"])
    new.to_csv(tmp_path / "new.csv", index=False)
    assert main(["predict", str(tmp_path / "m.json"), str(tmp_path / "new.csv"), "-o", str(tmp_path / "p.csv")]) == 0
    got = pd.read_csv(tmp_path / "p.csv")
    assert np.max(np.abs(got["price_pred"] - r.predict(new))) < 1e-8 and list(got["hood"]) == list(new["hood"])
    new.loc[2, "hood"] = "Downtown"
    new.to_csv(tmp_path / "bad.csv", index=False)
    capsys.readouterr()
    code = main(["predict", str(tmp_path / "m.json"), str(tmp_path / "bad.csv"), "-o", str(tmp_path / "q.csv")])
    err = capsys.readouterr().err
    assert code == 2 and "column hood has the value 'Downtown'" in err and "row 3" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "q.csv").exists()


def test_bad_formulas_are_one_line_errors(tmp_path, capsys):
    df = homes()
    with pytest.raises(DataError, match="no '~'"):
        gradfit.fit(formula="sqft + age", data=df)
    df.to_csv(tmp_path / "homes.csv", index=False)
    code = main(["fit", str(tmp_path / "homes.csv"), "--formula", "price ~ sqft + rooms", "-q"])
    err = capsys.readouterr().err
    assert code == 2 and "rooms" in err and len(err.strip().splitlines()) == 1
    code = main(["fit", str(tmp_path / "homes.csv"), "--formula", FORMULA, "--drop-na", "-q"])
    assert code == 2 and "--drop-na does not apply" in capsys.readouterr().err  # never silently ignored


def test_cli_declared_levels_choose_the_base(tmp_path, capsys):
    homes(120).drop(columns=["w"]).to_csv(tmp_path / "homes.csv", index=False)
    code = main(["fit", str(tmp_path / "homes.csv"), "--formula", FORMULA, "--levels", "hood=South,East,North",
                 "--save", str(tmp_path / "m.json"), "-q"])
    assert code == 0 and "C(hood)[T.East]" in capsys.readouterr().out
    assert gradfit.load(tmp_path / "m.json").formula_.categorical == {"C(hood)": ["South", "East", "North"]}
    code = main(["fit", str(tmp_path / "homes.csv"), "--formula", FORMULA, "--levels", "hood", "-q"])
    assert code == 2 and "COLUMN=LEVEL1" in capsys.readouterr().err


def test_without_intercept_every_level_gets_a_column_as_in_statsmodels():
    df = homes()
    f = "price ~ sqft + C(hood) - 1"
    model = gradfit.fit(formula=f, data=df)
    r = smf.ols(f, df).fit()
    assert set(model.coefficients()) == set(r.params.index) and model.fit_intercept is False
    s = model.summary(df)
    se = dict(zip(s.names, s.std_err))
    assert all(abs(se[k] - v) <= 1e-8 * v for k, v in r.bse.items())
    d = model.plot(df, kind="leverage")  # leverage without an intercept column
    assert d.axes
