"""The hostile-input harness: a corpus of bad (and some good) files x every command.

For every (file, command) case it asserts: exit 0 with a correct result, or exit 2 with exactly one line
``gradfit: error: ...`` (never a traceback); every input byte-identical afterwards (hashed before and
after); no output file, and no temporary file, when the command failed. Commands run in-process
(``gradfit.cli.main``) except ``--nproc 2``, which needs processes (a few files only). The number of
cases run is printed at the end of the session (conftest.py, ``hostile harness: N cases``).

Two tiers: `make test` runs every file through fit, fit --summary and predict (CSV and Parquet out) and both
fuzzers (~300 cases, ~15 s on one busy core); `make test-slow` adds the picture commands on a few files
and ``--nproc 2`` on four (~2 min on one busy core, most of it starting processes).

Then hypothesis fuzzers: model files (JSON structure mutations of a real model file) through ``predict``
and ``plot``, and CLI flag values through ``fit``, with the same assertions.
"""
from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

RNG = np.random.default_rng(7)
N = 30
X1, X2 = RNG.normal(size=N).round(6), RNG.normal(size=N).round(6)
Y = 1 + 2 * X1 - 3 * X2
TRUTH = [2.0, -3.0, 1.0]


def table_text(header=("x1", "x2", "y"), rows=None, sep=",", end="\n") -> str:
    rows = rows if rows is not None else zip(X1, X2, Y)
    return sep.join(header) + end + "".join(sep.join(str(v) for v in r) + end for r in rows)


GOOD = table_text()


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def _zip_bytes() -> bytes:
    sink = io.BytesIO()
    with zipfile.ZipFile(sink, "w") as z:
        z.writestr("d.csv", GOOD)
    return sink.getvalue()


GOOD_TABLE = pa.table({"x1": X1, "x2": X2, "y": Y})

# name: (file name, bytes, expectation): "ok" = exit 0 with the true coefficients; "error" = exit 2;
# "either" = exit 0 or 2 (both fine, the other assertions hold)
CORPUS = {
    "good csv": ("d.csv", GOOD.encode(), "ok"),
    "good parquet": ("d.parquet", _parquet_bytes(GOOD_TABLE), "ok"),
    "utf-8 BOM": ("d.csv", b"\xef\xbb\xbf" + GOOD.encode(), "ok"),
    "CRLF": ("d.csv", table_text(end="\r\n").encode(), "ok"),
    "CR only": ("d.csv", table_text(end="\r").encode(), "ok"),
    "gzip named .csv.gz": ("d.csv.gz", gzip.compress(GOOD.encode()), "ok"),
    "quoted newlines (RFC 4180)": ("d.csv", ("note,x1,x2,y\n" + "".join(
        f'"line one\nline ""two""",{a},{b},{c}\n' for a, b, c in zip(X1, X2, Y))).encode(), "ok"),
    "columns reordered": ("d.csv", table_text(("y", "x2", "x1"), zip(Y, X2, X1)).encode(), "ok"),
    "extra text column": ("d.csv", ("id,x1,x2,y\n" + "".join(f"0{i},{a},{b},{c}\n" for i, (a, b, c) in
                                                            enumerate(zip(X1, X2, Y)))).encode(), "ok"),
    "UTF-16 with BOM": ("d.csv", GOOD.encode("utf-16"), "error"),
    "UTF-16-LE without BOM": ("d.csv", GOOD.encode("utf-16-le"), "error"),
    "latin-1 header": ("d.csv", ("x1,x2,y,caf\xe9\n" + "".join(f"{a},{b},{c},1\n" for a, b, c in
                                                               zip(X1, X2, Y))).encode("latin-1"), "either"),
    "latin-1 value": ("d.csv", ("x1,x2,y,city\n" + "".join(f"{a},{b},{c},Bogot\xe1\n" for a, b, c in
                                                           zip(X1, X2, Y))).encode("latin-1"), "either"),
    "gzip named .csv": ("d.csv", gzip.compress(GOOD.encode()), "error"),
    "bzip2 named .csv": ("d.csv", bz2.compress(GOOD.encode()), "error"),
    "zip named .csv": ("d.csv", _zip_bytes(), "error"),
    "parquet named .csv": ("d.csv", _parquet_bytes(GOOD_TABLE), "error"),
    "NUL bytes": ("d.csv", GOOD.encode()[:40] + b"\x00" * 8 + GOOD.encode()[40:], "error"),
    "empty": ("d.csv", b"", "error"),
    "blank lines": ("d.csv", b"\n\n   \n", "error"),
    "header only": ("d.csv", b"x1,x2,y\n", "error"),
    "one row": ("d.csv", b"x1,x2,y\n1,2,3\n", "error"),
    "ragged row": ("d.csv", (GOOD + "1,2\n").encode(), "error"),
    "extra field": ("d.csv", (GOOD + "1,2,3,4\n").encode(), "error"),
    "duplicate names": ("d.csv", table_text(("x1", "x1", "y")).encode(), "error"),
    "text in a feature": ("d.csv", (GOOD + "abc,1,2\n").encode(), "error"),
    "empty cell": ("d.csv", (GOOD + ",1,2\n").encode(), "error"),
    "inf cell": ("d.csv", (GOOD + "inf,1,2\n").encode(), "error"),
    "1e999 cell": ("d.csv", (GOOD + "1e999,1,2\n").encode(), "error"),
    "huge values": ("d.csv", table_text(rows=zip(X1 * 1e200, X2, Y * 1e200)).encode(), "either"),
    "booleans": ("d.csv", ("x1,x2,y\n" + "".join(f"{'true' if a > 0 else 'false'},{b},{c}\n" for a, b, c in
                                                  zip(X1, X2, Y))).encode(), "either"),
    "dates": ("d.csv", ("x1,x2,y\n" + "".join(f"2024-01-{i % 28 + 1:02d},{b},{c}\n" for i, (b, c) in
                                               enumerate(zip(X2, Y)))).encode(), "either"),
    "semicolons": ("d.csv", table_text(sep=";").encode(), "error"),
    "huge field": ("d.csv", ("note,x1,x2,y\n" + "".join(f"{'z' * (1 << 20) if i == 3 else 'a'},{a},{b},{c}\n"
                                                        for i, (a, b, c) in enumerate(zip(X1, X2, Y)))).encode(), "ok"),
    "math-text names": ("d.csv", table_text(("$\\frac$", "x2", "y")).encode(), "either"),
    "odd names": ("d.csv", table_text(('"a,b"', "  x2 ", "y")).encode(), "either"),
    "unicode names": ("d.csv", table_text(("면적", "x2", "y")).encode(), "either"),
    "constant column": ("d.csv", table_text(rows=zip(np.ones(N), X2, Y)).encode(), "either"),
    "constant target": ("d.csv", table_text(rows=zip(X1, X2, np.full(N, 5.0))).encode(), "either"),
    "truncated parquet": ("d.parquet", _parquet_bytes(GOOD_TABLE)[:200], "error"),
    "text named .parquet": ("d.parquet", GOOD.encode(), "error"),
    "parquet duplicate names": ("d.parquet", _parquet_bytes(pa.Table.from_arrays(
        [pa.array(X1), pa.array(X1), pa.array(Y)], names=["x1", "x1", "y"])), "error"),
    "parquet list column": ("d.parquet", _parquet_bytes(pa.table(  # left out with a warning naming it
        {"x1": pa.array([[v] for v in X1]), "x2": X2, "y": Y})), "either"),
    "parquet strings": ("d.parquet", _parquet_bytes(pa.table(
        {"x1": pa.array([str(v) for v in X1]), "x2": X2, "y": Y})), "either"),
}
# names every file must be found under: the first column, used as a feature where the file has it
FEATURES = {"math-text names": "$\\frac$,x2", "odd names": "a,b,  x2 ", "unicode names": "면적,x2",
            "booleans": "x1,x2", "dates": "x1,x2", "parquet strings": "x1,x2"}

CASES_RUN = []  # one entry per (file, command) case, reported by conftest.py


def _write(folder, name):
    fname, data, _ = CORPUS[name]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / fname
    path.write_bytes(data)
    return path


def _hashes(root):
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = os.path.join(dirpath, f)
            out[p] = hashlib.sha256(open(p, "rb").read()).hexdigest()
    return out


def _files_under(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


def check_case(code, out, err, *, inputs_before, inputs_root, out_dir, expect, what):
    """The harness's assertions for one case (see the module docstring)."""
    CASES_RUN.append(what)
    assert "Traceback" not in err and "Traceback" not in out, f"{what}: a traceback\n{err}"
    assert code in (0, 2), f"{what}: exit code {code}\n{err}"
    assert _hashes(inputs_root) == inputs_before, f"{what}: an input changed"
    if code == 2:
        lines = err.strip("\n").split("\n")
        errors = [ln for ln in lines if ln.startswith("gradfit: error: ")]
        assert len(errors) == 1 and lines == errors, f"{what}: not one error line\n{err}"
        assert _files_under(out_dir) == [], f"{what}: left {_files_under(out_dir)} behind"
    if expect == "ok":
        assert code == 0, f"{what}: should work\n{err}"
    if expect == "error":
        assert code == 2, f"{what}: should be refused\n{out}"
    leftovers = [f for f in _files_under(out_dir) if os.path.basename(f).startswith(".")]
    assert leftovers == [], f"{what}: temporary files {leftovers}"


@pytest.fixture(scope="module")
def good_model(tmp_path_factory):
    """A model fitted on the good file (features x1, x2), for predict and plot."""
    from gradfit.cli import main
    d = tmp_path_factory.mktemp("model")
    (d / "d.csv").write_text(GOOD)
    assert main(["fit", str(d / "d.csv"), "--target", "y", "--save", str(d / "m.json"), "-q"]) == 0
    return d / "m.json"


COMMANDS = {  # name: argv after the data path's command (DATA, OUT, MODEL filled in)
    "fit": ["fit", "{data}", "--target", "y", "--save", "{out}/m.json", "--json"],
    "fit --summary": ["fit", "{data}", "--target", "y", "--summary", "-q"],
    "fit --report": ["fit", "{data}", "--target", "y", "--report", "{out}/r.html", "-q"],
    "fit --plot": ["fit", "{data}", "--target", "y", "--plot", "{out}/plots", "-q"],
    "predict": ["predict", "{model}", "{data}", "-o", "{out}/p.csv"],
    "predict parquet": ["predict", "{model}", "{data}", "-o", "{out}/p.parquet"],
    "plot": ["plot", "{model}", "{data}", "--out", "{out}/plots"],
}
PICTURES = ("fit --report", "fit --plot", "plot")  # matplotlib: seconds per case, so a few files each
PICTURE_FILES = {  # file: the picture commands it goes through (`make test-slow`)
    "good csv": PICTURES, "good parquet": ("plot",), "math-text names": ("fit --plot",),
    "constant target": ("fit --report", "plot"), "huge values": ("plot", "fit --report"),
    "odd names": ("fit --plot",), "UTF-16 with BOM": PICTURES,
}


@pytest.mark.parametrize("name", list(CORPUS))
def test_hostile_file_through_every_command(name, tmp_path, good_model, run_cli, record_property):
    """Every file of the corpus through fit, fit --summary, predict (CSV and Parquet out): in-process,
    a fraction of a second per file (`make test`)."""
    run_commands(name, [c for c in COMMANDS if c not in PICTURES], tmp_path, good_model, run_cli, record_property)


@pytest.mark.slow  # matplotlib: ~5 s per picture command on 2 busy cores (`make test-slow`, which CI runs)
@pytest.mark.parametrize("name", list(PICTURE_FILES))
def test_hostile_file_through_the_picture_commands(name, tmp_path, good_model, run_cli, record_property):
    run_commands(name, PICTURE_FILES[name], tmp_path, good_model, run_cli, record_property)


def run_commands(name, commands, tmp_path, good_model, run_cli, record_property):
    """The file ``name`` through each of ``commands`` in-process, checking every case (check_case)."""
    inputs = tmp_path / "in"
    data = _write(inputs, name)
    model = inputs / "m.json"
    model.write_bytes(good_model.read_bytes())
    before = _hashes(inputs)
    expect = CORPUS[name][2]
    ran = 0
    for command in commands:
        template = COMMANDS[command]
        out = tmp_path / f"out-{ran}"
        out.mkdir()
        argv = [a.format(data=data, out=out, model=model) for a in template]
        if name in FEATURES and command.startswith("fit"):
            argv += ["--features", FEATURES[name]]
        code, stdout, err = run_cli(*argv)
        this_expect = expect
        if command.startswith(("predict", "plot")) and name in (*FEATURES, "one row"):
            this_expect = "either"  # the model's features are x1, x2; one row is too few to fit, not to predict
        if command == "fit --summary" and name in ("constant column",):
            this_expect = "either"
        check_case(code, stdout, err, inputs_before=before, inputs_root=inputs, out_dir=out, expect=this_expect,
                   what=f"{name} / {command}")
        if code == 0 and expect == "ok":
            check_result(command, stdout, out)
        ran += 1
    record_property("hostile_cases", ran)


def check_result(command, stdout, out):
    """A correct answer: the true coefficients (the data is exactly y = 1 + 2 x1 - 3 x2)."""
    if command == "fit":
        res = json.loads(stdout)
        by_name = dict(zip(res["feature_names"], res["coef"]))  # in the file's column order
        np.testing.assert_allclose([by_name["x1"], by_name["x2"], res["intercept"]], TRUTH, atol=1e-8)
        from gradfit.model import load
        saved = load(out / "m.json")
        np.testing.assert_allclose([saved.coefficients()[n] for n in ("x1", "x2")], TRUTH[:2], atol=1e-8)
    elif command.startswith("predict"):
        import pandas as pd
        path = out / ("p.parquet" if "parquet" in command else "p.csv")
        got = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
        np.testing.assert_allclose(got["y_pred"], got["y"].astype(float), atol=1e-8)
    elif command == "fit --report":
        assert (out / "r.html").stat().st_size > 1000
    elif command in ("fit --plot", "plot"):
        assert any(p.suffix == ".png" for p in (out / "plots").iterdir())


NPROC_FILES = ["good csv", "quoted newlines (RFC 4180)", "duplicate names", "text in a feature"]


@pytest.mark.slow  # minutes on 2 cores: `make test-slow`, which CI runs after `make test`
@pytest.mark.parametrize("name", NPROC_FILES)
def test_hostile_file_with_two_processes(name, tmp_path, record_property):
    inputs = tmp_path / "in"
    data = _write(inputs, name)
    before = _hashes(inputs)
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.run([sys.executable, "-m", "gradfit", "fit", str(data), "--target", "y", "--nproc", "2",
                           "--save", str(out / "m.json"), "--json", "--timeout", "30"],
                          capture_output=True, text=True, timeout=240)
    check_case(proc.returncode, proc.stdout, proc.stderr, inputs_before=before, inputs_root=inputs, out_dir=out,
               expect=CORPUS[name][2], what=f"{name} / fit --nproc 2")
    if CORPUS[name][2] == "ok":
        res = json.loads(proc.stdout)
        np.testing.assert_allclose(res["coef"] + [res["intercept"]], TRUTH, atol=1e-8)
    if name == "text in a feature":  # the data error, not "lost contact", is what the user reads
        assert "non-numeric value 'abc'" in proc.stderr, proc.stderr
    record_property("hostile_cases", 1)


# -- fuzzers ---------------------------------------------------------------------------------------------
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

JSON_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(min_value=-10 ** 30, max_value=10 ** 30),
                        st.floats(allow_nan=False), st.text(max_size=12),
                        st.sampled_from([10 ** 400, -(10 ** 400), 1e308, 0, -1, "nan", "Infinity", ""]))
JSON_VALUES = st.recursive(JSON_LEAVES, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                                 st.dictionaries(st.text(max_size=8), inner,
                                                                                 max_size=4)), max_leaves=12)


def _paths(d, prefix=()):
    """Every path into a JSON document: keys of objects, indexes of lists."""
    yield prefix
    if isinstance(d, dict):
        for k, v in d.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(d, list):
        for i, v in enumerate(d[:3]):
            yield from _paths(v, prefix + (i,))


def _mutate(doc, path, how, value):
    if not path:
        return value if how == "replace" else doc
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    key = path[-1]
    if how == "delete":
        del parent[key]
    elif how == "replace":
        parent[key] = value
    elif how == "wrap":
        parent[key] = [parent[key]]
    elif how == "stringify":
        parent[key] = json.dumps(parent[key])
    return doc


@pytest.fixture(scope="module")
def model_doc(good_model):
    return json.loads(good_model.read_text())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_model_files(data, model_doc, tmp_path_factory, run_cli, record_property):
    doc = json.loads(json.dumps(model_doc))
    doc.setdefault("history", {"loss": [1.0, 0.5]})
    paths = list(_paths(doc))
    for _ in range(data.draw(st.integers(1, 3))):
        paths = list(_paths(doc)) or [()]
        path = data.draw(st.sampled_from(paths))
        how = data.draw(st.sampled_from(["delete", "replace", "wrap", "stringify"]))
        value = data.draw(JSON_VALUES)
        try:
            doc = _mutate(doc, path, how, value)
        except (KeyError, IndexError, TypeError):
            pass
    d = tmp_path_factory.mktemp("fuzzm")
    (d / "in").mkdir()
    (d / "in" / "d.csv").write_text(GOOD)
    (d / "in" / "m.json").write_text(json.dumps(doc))
    before = _hashes(d / "in")
    command = data.draw(st.sampled_from(["predict", "summary"]))  # plot's pictures: the corpus covers them
    (d / "out").mkdir()
    if command == "predict":
        argv = ["predict", d / "in" / "m.json", d / "in" / "d.csv", "-o", d / "out" / "p.csv"]
    else:
        argv = ["plot", d / "in" / "m.json", d / "in" / "d.csv", "--summary"]
    code, out, err = run_cli(*argv)
    check_case(code, out, err, inputs_before=before, inputs_root=d / "in", out_dir=d / "out", expect="either",
               what=f"model fuzz / {command}")
    if code == 2:
        assert "m.json" in err or "d.csv" in err or "--" in err, err
    record_property("hostile_cases", 1)


FLAG_VALUES = st.one_of(st.sampled_from(["0", "-1", "-0.0", "nan", "inf", "-inf", "1e309", "1e23", "", " ",
                                         "abc", "1,2", "0x10", "10" * 30, "-3", "1e-320", "NaN", "\x00"]),
                        st.integers(-10 ** 25, 10 ** 25).map(str),
                        st.floats(allow_nan=True, allow_infinity=True).map(repr))
NUMERIC_FLAGS = ["--lr", "--batch-size", "--tol", "--delta", "--quantile", "--alpha", "--l1-ratio",
                 "--seed", "--log-every", "--timeout", "--summary-level"]
CHOICE_FLAGS = {"--optimizer": ["sgd", "adam", "gd", "lbfgs", "exact", "ipm", "foo"],
                "--epochs": ["0", "-5", "3", "1e3", "abc", "nan"],  # (a huge epoch count would just run long)
                "--loss": ["l2", "l1", "huber", "quantile"], "--device": ["cpu", "foo", "cuda:99", ""],
                "--dtype": ["float32", "float64"], "--penalty": ["none", "l1", "l2", "elasticnet"]}


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(numeric=st.dictionaries(st.sampled_from(NUMERIC_FLAGS), FLAG_VALUES, max_size=3),
       choices=st.dictionaries(st.sampled_from(sorted(CHOICE_FLAGS)), st.just(None), max_size=2), data=st.data())
def test_fuzz_cli_flag_values(numeric, choices, data, tmp_path_factory, run_cli, record_property):
    d = tmp_path_factory.mktemp("fuzzf")
    (d / "in").mkdir()
    (d / "in" / "d.csv").write_text(GOOD)
    (d / "out").mkdir()
    before = _hashes(d / "in")
    argv = ["fit", d / "in" / "d.csv", "--target", "y", "--save", d / "out" / "m.json", "-q"]
    if "--epochs" not in choices:
        argv += ["--epochs", "20"]
    for flag, value in numeric.items():
        argv += [f"{flag}={value}"]
    for flag in choices:
        argv += [flag, data.draw(st.sampled_from(CHOICE_FLAGS[flag]))]
    code, out, err = run_cli(*argv)
    check_case(code, out, err, inputs_before=before, inputs_root=d / "in", out_dir=d / "out", expect="either",
               what=f"flag fuzz {argv[6:]}")
    if code == 2:  # it names the flag, the file, or the value it refuses
        given = [str(a) for a in argv[6:] if not str(a).startswith("-")] + list(numeric.values())
        assert "--" in err or "d.csv" in err or any(v and v in err for v in given), err
    record_property("hostile_cases", 1)
