"""Nothing changes the user's data silently (issue 14, item 5)."""
import warnings

import numpy as np
import pytest

import gradfit
from gradfit.data.batches import DataError
from gradfit.data.files import DataWarning, open_table
from gradfit.solvers.exact import SingularDesignWarning


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(3)
    (tmp_path / "bad.csv").write_text("a,b,y\n1,4,3\n2,x,5\n3,6,7\n4,7,9.5\n5,9,11\n")
    n = 120
    hood = rng.choice(["North", "South", "East"], n)
    area = rng.uniform(40, 200, n)
    price = 2 * area + np.select([hood == "North", hood == "South"], [50, -30], 0) + rng.normal(0, 10, n)
    (tmp_path / "houses.csv").write_text("area,neighborhood,price\n" + "".join(
        f"{a:.2f},{h},{p:.2f}\n" for a, h, p in zip(area, hood, price)))
    (tmp_path / "na.csv").write_text("a,b,y\n1,2,3\n2,,5\n3,4,\n4,5,9\n5,6,11\n6,8,13\n")
    (tmp_path / "col.csv").write_text("a,b,c,y\n" + "".join(
        f"{i},{2 * i},{rng.normal():.6f},{i + rng.normal():.6f}\n" for i in range(30)))
    return tmp_path


def test_a_bad_cell_is_an_error_naming_column_row_and_value(files, run_cli):
    with pytest.raises(DataError, match=r"column 'b' has a non-numeric value 'x' at data row 2"):
        open_table(files / "bad.csv", target="y")
    out = files / "model.json"
    code, stdout, err = run_cli("fit", files / "bad.csv", "--target", "y", "--save", out)  # was: exit 0 without b
    assert code == 2 and "'b'" in err and "'x'" in err and "row 2" in err and not out.exists()


def test_a_text_column_left_out_is_named_with_how_to_include_it(files, run_cli):
    data = open_table(files / "houses.csv", target="price")
    with pytest.warns(DataWarning, match=r"'neighborhood' holds text .* C\(neighborhood\)"):
        gradfit.fit(data)
    code, out, err = run_cli("fit", files / "houses.csv", "--target", "price")  # was: not a word
    assert code == 0 and "neighborhood" in err and "--formula 'price ~ area + C(neighborhood)'" in err
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)  # naming the features is the explicit choice: no warning
        gradfit.fit(open_table(files / "houses.csv", target="price", features=["area"]))


def test_drop_na_reports_the_rows_it_dropped(files, run_cli):
    with pytest.warns(DataWarning, match="--drop-na skipped 2 of 6 rows"):
        gradfit.fit(open_table(files / "na.csv", target="y", drop_na=True))
    with pytest.warns(DataWarning, match="--drop-na skipped 2 of 6 rows"):
        gradfit.fit(open_table(files / "na.csv", target="y", drop_na=True, cache=False))
    code, out, err = run_cli("fit", files / "na.csv", "--target", "y", "--drop-na")
    assert code == 0 and "skipped 2 of 6 rows" in err


def test_collinear_design_warns_at_fit_and_the_summary_marks_it(files, run_cli):
    data = open_table(files / "col.csv", target="y")
    with pytest.warns(SingularDesignWarning, match="'a', 'b' are linearly dependent"):
        model = gradfit.fit(data)
    code, out, err = run_cli("fit", files / "col.csv", "--target", "y")  # was: no warning in the CLI
    assert code == 0 and "linearly dependent" in err
    s = model.summary(data)
    table = {name: (se, p) for name, se, p in zip(s.names, s.std_err, s.p_value)}
    assert np.isnan(table["a"][1]) and np.isnan(table["b"][1]) and np.isnan(table["a"][0])  # was: p = 0.000
    assert np.isfinite(table["c"][1]) and np.isfinite(table["intercept"][1])
    assert any("'a', 'b' are not identified" in note for note in s.notes)
