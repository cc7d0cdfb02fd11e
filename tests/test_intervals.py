"""Confidence and prediction intervals (issue 17) equal statsmodels' get_prediction().summary_frame()."""
import io
import subprocess
import sys

import numpy as np
import pytest

import gradfit
from gradfit.cli import main

sm = pytest.importorskip("statsmodels.api")
pd = pytest.importorskip("pandas")

TOL = 1e-8


def data():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 3)) * [1, 2, 0.5] + [0, 10, -1]
    w = rng.uniform(0.3, 4.0, size=200)
    y = X @ [0.7, -0.2, 2.0] + 4 + rng.normal(size=200) / np.sqrt(w)
    return X, y, w, rng.normal(size=(7, 3)) * [1, 2, 0.5] + [0, 10, -1]


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("cov", ["nonrobust", "HC1", "HC3"])
def test_intervals_equal_statsmodels_summary_frame(weighted, cov):
    X, y, w, new = data()
    w = w if weighted else None
    model = gradfit.fit(X, y, sample_weight=w)
    model.summary(X, y, sample_weight=w, cov_type=cov)  # stores the covariance on the model
    exog = sm.add_constant(X, prepend=False)
    r = (sm.WLS(y, exog, weights=w) if weighted else sm.OLS(y, exog)).fit(cov_type=cov)
    frame = r.get_prediction(sm.add_constant(new, prepend=False, has_constant="add")).summary_frame(alpha=0.1)
    conf = model.predict(new, interval="confidence", level=0.9, cov_type=cov)
    pred = model.predict(new, interval="prediction", level=0.9, cov_type=cov)
    assert list(conf.columns) == ["mean", "mean_se", "mean_ci_lower", "mean_ci_upper"]
    assert list(pred.columns) == ["mean", "mean_se", "obs_ci_lower", "obs_ci_upper"]
    for col in conf.columns:
        assert np.max(np.abs(conf[col] - frame[col])) < TOL * np.max(np.abs(frame[col]))
    for col in ("obs_ci_lower", "obs_ci_upper"):
        assert np.max(np.abs(pred[col] - frame[col])) < TOL * np.max(np.abs(frame[col]))


def test_the_covariance_survives_the_model_file_and_dataframes_keep_their_index(tmp_path):
    X, y, _, new = data()
    model = gradfit.fit(pd.DataFrame(X, columns=["a", "b", "c"]), y)
    model.summary(pd.DataFrame(X, columns=["a", "b", "c"]), y)
    model.save(tmp_path / "m.json")
    again = gradfit.load(tmp_path / "m.json")
    df = pd.DataFrame(new, columns=["a", "b", "c"], index=list("pqrstuv"))
    a, b = model.predict(df, interval="prediction"), again.predict(df, interval="prediction")
    assert list(b.index) == list("pqrstuv") and np.array_equal(a.to_numpy(), b.to_numpy())


def test_refusals_say_what_to_do():
    X, y, _, new = data()
    model = gradfit.fit(X, y)
    with pytest.raises(ValueError, match=r"model.summary\(X, y\)"):
        model.predict(new, interval="prediction")
    model.summary(X, y)
    with pytest.raises(ValueError, match="HC3"):
        model.predict(new, interval="prediction", cov_type="HC3")
    with pytest.raises(ValueError, match="confidence"):
        model.predict(new, interval="credible")
    huber = gradfit.fit(X, y, loss="huber")
    with pytest.raises(ValueError, match="squared loss"):
        huber.predict(new, interval="confidence")


def test_cli_predict_to_stdout_with_prediction_intervals(tmp_path):
    X, y, _, new = data()
    train = pd.DataFrame(X, columns=["a", "b", "c"]).assign(y=y)
    train.to_csv(tmp_path / "train.csv", index=False)
    pd.DataFrame(new, columns=["a", "b", "c"]).to_csv(tmp_path / "new.csv", index=False)
    assert main(["fit", str(tmp_path / "train.csv"), "--target", "y", "--save", str(tmp_path / "m.json"), "-q"]) == 0
    out = subprocess.run([sys.executable, "-m", "gradfit", "predict", str(tmp_path / "m.json"),
                          str(tmp_path / "new.csv"), "-o", "-", "--interval", "prediction", "--level", "0.9"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    got = pd.read_csv(io.StringIO(out.stdout))
    assert list(got.columns) == ["a", "b", "c", "y_pred", "y_pred_lower", "y_pred_upper"]
    frame = sm.OLS(y, sm.add_constant(X, prepend=False)).fit().get_prediction(
        sm.add_constant(new, prepend=False, has_constant="add")).summary_frame(alpha=0.1)
    assert np.max(np.abs(got["y_pred_lower"] - frame["obs_ci_lower"])) < 1e-8
    assert np.max(np.abs(got["y_pred_upper"] - frame["obs_ci_upper"])) < 1e-8
    assert "wrote 7 predictions" in out.stderr


def test_cli_interval_without_a_covariance_is_one_line_exit_2(tmp_path, capsys):
    from gradfit.model import LinearModel
    LinearModel(np.array([1.0]), 0.0, ["a"]).save(tmp_path / "m.json")
    (tmp_path / "new.csv").write_text("a\n1\n2\n")
    code = main(["predict", str(tmp_path / "m.json"), str(tmp_path / "new.csv"), "-o", str(tmp_path / "o.csv"),
                 "--interval", "confidence"])
    err = capsys.readouterr().err
    assert code == 2 and "covariance" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o.csv").exists()
