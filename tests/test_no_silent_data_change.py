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


# one diagnosis (the exact solver's, of [X, 1]) for every solver and loss; penalized fits are identified
@pytest.mark.parametrize("solver,loss", [("lbfgs", "l2"), ("gd", "l2"), ("sgd", "l2"), ("adam", "l2"),
                                         ("newton", "huber"), ("ipm", "l1"), ("gd", "l1"), ("ipm", "quantile")])
def test_collinear_design_warns_for_every_solver(files, solver, loss):
    data = open_table(files / "col.csv", target="y")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gradfit.fit(data, solver=solver, loss=loss, epochs=30, lr=1e-4 if solver in ("sgd", "adam") else None)
    singular = [str(w.message) for w in caught if issubclass(w.category, SingularDesignWarning)]
    assert len(singular) == 1 and "'a', 'b' are linearly dependent (rank 3 of 4)" in singular[0], singular
    assert "not identified" in singular[0] and "minimum-norm" not in singular[0]  # words for any solver


@pytest.mark.parametrize("flags", [["--optimizer", "lbfgs"], ["--optimizer", "gd"], ["--loss", "huber"],
                                   ["--loss", "l1"]])
def test_collinear_design_warns_in_the_cli_and_every_summary_marks_it(files, run_cli, flags):
    code, out, err = run_cli("fit", files / "col.csv", "--target", "y", *flags, "--summary", "-q")
    assert code == 0 and "warning: columns 'a', 'b' are linearly dependent" in err, err
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.startswith(("a ", "b ", "c "))}
    assert len(rows["a"]) == 1 and len(rows["b"]) == 1  # the coefficient alone: no std err, statistic, p
    assert len(rows["c"]) == 6  # coefficient, std err, statistic, p, interval
    assert "'a', 'b' are not identified" in out


def test_nearly_singular_design_warns_for_an_iterative_solver():
    rng = np.random.default_rng(0)
    a = rng.normal(size=200)
    X = np.column_stack([a, a + 1e-10 * rng.normal(size=200), rng.normal(size=200)])
    y = X[:, 0] + X[:, 2] + rng.normal(size=200)
    with pytest.warns(SingularDesignWarning, match="nearly singular .* 'x0', 'x1'"):
        gradfit.fit(X, y, solver="lbfgs")


def test_a_penalty_identifies_the_coefficients_and_a_full_rank_design_is_quiet(files):
    data = open_table(files / "col.csv", target="y")
    rng = np.random.default_rng(1)
    X = rng.normal(size=(100, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error", SingularDesignWarning)
        gradfit.fit(data, solver="lbfgs", penalty="l2", alpha=0.1)  # ridge: unique, as the exact solver says
        gradfit.fit(data, alpha=0.1)
        gradfit.fit(X, X @ [1.0, 2.0, 3.0] + 1, solver="lbfgs")
        gradfit.fit(X, X @ [1.0, 2.0, 3.0] + 1, loss="l1")


# -- a bad cell anywhere in the file, not only in the block the column types are guessed from -----------------
N_LATE = 60_000  # ~1.6 MB: past the 1 MB block that decides the columns' types


def _late_bad_csv(path, bad_row=N_LATE - 3):
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(2, N_LATE)).round(6)
    lines = [f"{a[i]},{'x' if i + 1 == bad_row else b[i]},{1 + a[i] - b[i]:.6f}" for i in range(N_LATE)]
    path.write_text("a,b,y\n" + "\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("block", [None, 1 << 16])  # pyarrow's read block: the default, or many blocks
def test_a_bad_cell_late_in_the_file_is_an_error_naming_it(tmp_path, run_cli, monkeypatch, block):
    from gradfit.data import sources
    if block:
        monkeypatch.setattr(sources, "CSV_BLOCK", block)
    path = _late_bad_csv(tmp_path / "late.csv")
    out = tmp_path / "m.json"
    code, stdout, err = run_cli("fit", path, "--target", "y", "--save", out)
    assert code == 2 and f"column 'b' has a non-numeric value 'x' at data row {N_LATE - 3} (line {N_LATE - 2})" in err
    assert not out.exists()
    with pytest.raises(DataError, match=f"'b' has a non-numeric value 'x' at data row {N_LATE - 3}"):
        gradfit.fit(open_table(path, target="y", cache=False))  # streamed: found by the pass that reads it


def test_a_bad_cell_in_a_later_file_of_a_folder_names_that_file(tmp_path, run_cli):
    folder = tmp_path / "parts"
    folder.mkdir()
    (folder / "a.csv").write_text("a,b,y\n1,2,3\n2,3,5\n3,5,8\n4,4,8\n")
    (folder / "b.csv").write_text("a,b,y\n5,1,6\n6,oops,9\n7,2,9\n")
    code, out, err = run_cli("fit", folder, "--target", "y", "--save", tmp_path / "m.json")
    assert code == 2 and "b.csv" in err and "'oops'" in err and "data row 2" in err
    assert not (tmp_path / "m.json").exists()


def test_numbers_stored_as_text_in_parquet_are_named_and_a_late_bad_cell_is_an_error(tmp_path, run_cli):
    import pyarrow as pa
    import pyarrow.parquet as pq
    n = 70_000  # the first batch the left-out check reads holds 65,536 rows
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(2, n))
    text = [str(v) for v in b]
    text[n - 10] = "n/a?"
    pq.write_table(pa.table({"a": a, "b": text, "y": 1 + a}), tmp_path / "t.parquet")
    code, out, err = run_cli("fit", tmp_path / "t.parquet", "--target", "y")  # was: "non-numeric '...' at row 0"
    assert code == 0 and "column 'b' holds numbers stored as text" in err and "--features a,b" in err
    code, out, err = run_cli("fit", tmp_path / "t.parquet", "--target", "y", "--features", "a,b")
    assert code == 2 and "'b' has a non-numeric value 'n/a?'" in err and f"row {n - 9}" in err


@pytest.mark.slow  # two processes (~10 s)
def test_a_bad_cell_in_the_second_process_shard_names_its_data_row(tmp_path):
    import subprocess
    import sys
    path = _late_bad_csv(tmp_path / "late.csv")
    proc = subprocess.run([sys.executable, "-m", "gradfit", "fit", str(path), "--target", "y", "--nproc", "2",
                           "--save", str(tmp_path / "m.json")], capture_output=True, text=True, timeout=240)
    assert proc.returncode == 2, proc.stderr
    assert f"'b' has a non-numeric value 'x' at data row {N_LATE - 3} (line {N_LATE - 2})" in proc.stderr
    assert not (tmp_path / "m.json").exists()
