"""Bad data files: one line naming the file, row or column and what to do; exit code 2; nothing written.

Each case runs through the CLI (``gradfit fit DATA --save model.json``) and through the Python API
(``open_table`` + ``gradfit.fit``). Rows are 1-based data rows; the CSV line is given beside.
"""
import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import gradfit
from gradfit.data.batches import DataError
from gradfit.data.files import open_table

GOOD = "a,b,y\n1,2,3\n2,1,4\n3,5,2\n4,4,6\n5,0,1\n"


def csv(text):
    return lambda d: _write(d / "data.csv", text)


def _write(path, text):
    path.write_text(text)
    return path


def parquet_damaged(how):
    def make(d):
        path = d / "data.parquet"
        rng = np.random.default_rng(0)
        pq.write_table(pa.table({"a": rng.random(4000), "y": rng.random(4000)}), path, row_group_size=1000,
                       write_page_checksum=True)
        raw = bytearray(path.read_bytes())
        if how == "truncated":
            raw = raw[:len(raw) // 2]
        elif how == "corrupt page":
            raw[len(raw) // 3:len(raw) // 3 + 200] = bytes(range(200))
        elif how == "corrupt footer":
            raw[-300:-10] = bytes((i * 37 + 11) % 256 for i in range(290))
        else:  # text that is not Parquet at all
            raw = bytearray(b"a,y\n1,2\n")
        path.write_bytes(bytes(raw))
        return path
    return make


CASES = {  # name: (make file, extra CLI args, expected message regex)
    "missing file": (lambda d: d / "nope.csv", [], r"nope\.csv: no such file; check the path"),
    "missing folder match": (lambda d: str(d / "x*.csv"), [], r"no files match .*x\*\.csv"),
    "empty file": (csv(""), [], r"data\.csv is empty"),
    "blank file": (csv("\n\n  \n"), [], r"data\.csv is empty"),
    "header only": (csv("a,b,y\n"), [], r"data\.csv has a header line but no data rows"),
    "unknown target": (csv(GOOD), ["--target", "price"],
                       r"data\.csv has no target column 'price'; its columns are: a, b, y"),
    "unknown feature": (csv(GOOD), ["--features", "a,q"],
                        r"data\.csv has no feature column 'q'; its columns are: a, b, y"),
    "no header hint": (csv("1,2,3\n4,5,6\n"), ["--no-header"], r"columns are: c0, c1, c2 \(the file is read "
                                                               r"without a header"),
    "non-numeric": (csv("a,b,y\n1,2,3\n2,abc,4\n3,5,2\n4,4,6\n5,0,1\n"), ["--features", "a,b"],
                    r"data\.csv: column 'b' has a non-numeric value 'abc' at data row 2 \(line 3\)"),
    "non-numeric target": (csv("a,b,y\n1,2,3\n2,1,4\n3,5,2\n4,4,six\n5,0,1\n"), [],
                           r"column 'y' has a non-numeric value 'six' at data row 4 \(line 5\)"),
    "nan": (csv("a,b,y\n1,2,3\n2,1,4\n3,NaN,2\n4,4,6\n5,0,1\n"), [],
            r"column 'b' has a missing \(empty, NA or NaN\) value at data row 3 \(line 4\) of .*data\.csv; "
            r"skip such rows with --drop-na"),
    "empty cell": (csv("a,b,y\n1,2,3\n2,,4\n3,5,2\n4,4,6\n5,0,1\n"), [], r"column 'b' has a missing .* data row 2"),
    "inf": (csv("a,b,y\n1,2,3\n2,1,4\n3,5,2\n4,4,6\n5,0,-inf\n"), [],
            r"column 'y' has an infinite value at data row 5 \(line 6\)"),
    "fewer rows than parameters": (csv("a,b,y\n1,2,3\n2,1,4\n"), [],
                                   r"data\.csv has 2 rows but fitting 2 features and an intercept needs at "
                                   r"least 3"),
    "all rows dropped": (csv("a,b,y\n1,,3\n2,1,\n"), ["--drop-na"], r"no rows are left after --drop-na"),
    "ragged rows": (csv("a,b,y\n1,2,3\n2,1\n3,5,2\n"), [],
                    r"data\.csv: line 3 has 2 fields but line 1 has 3; fix that row, or check --delimiter"),
    "too many fields": (csv("a,b,y\n1,2,3\n2,1,4,9\n"), [], r"line 3 has 4 fields but line 1 has 3"),
    "negative weight": (csv("a,w,y\n1,2,3\n2,-1,4\n3,5,2\n4,4,6\n"), ["--weight", "w"],
                        r"weight column 'w' has a negative value -1 at data row 2"),
    "target as feature": (csv(GOOD), ["--features", "a,y"], r"the target 'y' is also a feature"),
    "feature twice": (csv(GOOD), ["--features", "a,a"], r"feature 'a' is listed twice"),
    "duplicate header": (csv("a,a,y\n1,2,3\n2,1,4\n3,3,3\n"), ["--features", "a"], r"has 2 columns named 'a'"),
    "long delimiter": (csv(GOOD), ["--delimiter", "::"], r"--delimiter must be one character"),
    "header not utf-8": (lambda d: (d / "data.csv").write_bytes(b"\x80a,y\n1,2\n2,3\n3,5\n") and d / "data.csv", [],
                         r"data\.csv: the header line is not UTF-8 text"),
    "truncated parquet": (parquet_damaged("truncated"), [], r"data\.parquet is not a readable Parquet file"),
    "corrupt parquet page": (parquet_damaged("corrupt page"), [], r"data\.parquet is not a readable Parquet file"),
    "corrupt parquet footer": (parquet_damaged("corrupt footer"), [],
                               r"data\.parquet is not a readable Parquet file"),
    "not parquet": (parquet_damaged("text"), [], r"data\.parquet is not a readable Parquet file"),
}


def _target(extra):
    return [] if "--target" in extra else ["--target", "y"]


@pytest.mark.parametrize("name", list(CASES))
def test_cli_one_line_exit_2_nothing_written(name, tmp_path, run_cli):
    make, extra, pattern = CASES[name]
    path = make(tmp_path)
    model = tmp_path / "model.json"
    code, out, err = run_cli("fit", path, *_target(extra), *extra, "--save", model)
    assert code == 2, (out, err)
    assert err.startswith("gradfit: error: ") and err.count("\n") == 1, err
    assert __import__("re").search(pattern, err), err
    assert not model.exists()
    assert sorted(os.listdir(tmp_path)) == sorted({os.path.basename(str(path))} & set(os.listdir(tmp_path)))


def _api_kwargs(extra):
    kw = {"target": "y"}
    it = iter(extra)
    for flag in it:
        if flag == "--drop-na":
            kw["drop_na"] = True
        elif flag == "--no-header":
            kw["header"] = False
        else:
            key = flag.lstrip("-").replace("-", "_")
            value = next(it)
            kw[key] = value.split(",") if key == "features" else value
    return kw


@pytest.mark.parametrize("cache", [None, False])
@pytest.mark.parametrize("name", list(CASES))
def test_python_api_raises_data_error(name, cache, tmp_path):
    make, extra, pattern = CASES[name]
    with pytest.raises(DataError, match=pattern):
        gradfit.fit(open_table(make(tmp_path), cache=cache, **_api_kwargs(extra)))


def test_error_deep_in_a_streamed_csv_names_its_row(tmp_path, monkeypatch):
    monkeypatch.setattr("gradfit.data.sources.CSV_BLOCK", 1 << 12)  # many small blocks
    rows = [f"{i},{i % 7},{2 * i}" for i in range(5000)]
    rows[4321] = "4321,oops,1"
    path = _write(tmp_path / "big.csv", "a,b,y\n" + "\n".join(rows) + "\n")
    data = open_table(path, target="y", features=["a", "b"], cache=False)
    with pytest.raises(DataError, match=r"column 'b' has a non-numeric value 'oops' at data row 4322 \(line 4323\)"):
        gradfit.fit(data)
    rows[4321] = "4321,,1"
    _write(path, "a,b,y\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"column 'b' has a missing .* at data row 4322 \(line 4323\)"):
        gradfit.fit(open_table(path, target="y", features=["a", "b"], cache=False))


def test_parquet_string_column_names_first_bad_row(tmp_path):
    path = tmp_path / "s.parquet"
    pq.write_table(pa.table({"a": ["1", "2", "x", "4"], "y": [1.0, 2.0, 3.0, 4.0]}), path, row_group_size=2)
    with pytest.raises(DataError, match=r"column 'a' has a non-numeric value 'x' at row 3 of .*s\.parquet"):
        open_table(path, target="y", features=["a"], min_rows=0)


def test_files_with_different_columns(tmp_path):
    (tmp_path / "p").mkdir()
    pd.DataFrame({"a": [1.0, 2.0], "y": [1.0, 2.0]}).to_csv(tmp_path / "p" / "1.csv", index=False)
    pd.DataFrame({"b": [1.0, 2.0], "y": [1.0, 2.0]}).to_csv(tmp_path / "p" / "2.csv", index=False)
    with pytest.raises(DataError, match=r"2\.csv has columns b, y but .*1\.csv has a, y"):
        open_table(tmp_path / "p", target="y")


def test_constant_and_duplicated_columns_warn_on_the_cli(tmp_path, run_cli):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(size=50), "b": rng.normal(size=50)})
    df["k"], df["a_copy"] = 2.0, df["a"]
    df["y"] = df["a"] + df["b"] + rng.normal(size=50)
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False)
    code, out, err = run_cli("fit", path, "--target", "y")
    assert "warning: column 'k' is constant" in err
    assert "warning: column 'a_copy' duplicates column 'a'" in err
    assert code == 0, err  # the fit still answers (the exact solver reports its choice)
