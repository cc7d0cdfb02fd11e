"""Issue 19's reproductions, one test each: every one gave a silent wrong answer, lost data, an open port
or a traceback before; now each gives the right answer, or exit code 2 with one line and nothing written.

The hostile-input harness over many more files and every command is tests/test_hostile_harness.py.
"""
import hashlib
import json
import os
import stat
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import gradfit
from gradfit.data.batches import DataError
from gradfit.model import LinearModel, load

RNG = np.random.default_rng(19)
X1, X2 = RNG.normal(size=40), RNG.normal(size=40)
Y = 1 + 2 * X1 - 3 * X2


def _csv(path, header, rows):
    path.write_text(",".join(header) + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return path


def _digest(paths):
    return {str(p): hashlib.sha256(open(p, "rb").read()).hexdigest() for p in paths}


def _one_error_line(code, err):
    return code == 2 and err.startswith("gradfit: error: ") and err.count("\n") == 1 and "Traceback" not in err


@pytest.fixture
def good(tmp_path):
    return _csv(tmp_path / "good.csv", ["x1", "x2", "y"], zip(X1, X2, Y))


@pytest.fixture
def model_file(tmp_path, good, run_cli):
    code, _, _ = run_cli("fit", good, "--target", "y", "--save", tmp_path / "m.json", "-q")
    assert code == 0
    return tmp_path / "m.json"


# -- 1. predictions match columns by name ------------------------------------------------------------
def test_case1_predict_folder_whose_headers_differ_in_order(tmp_path, model_file, run_cli):
    folder = tmp_path / "in"
    folder.mkdir()
    _csv(folder / "a.csv", ["x1", "x2", "y"], zip(X1[:20], X2[:20], Y[:20]))
    _csv(folder / "b.csv", ["x2", "x1", "y"], zip(X2[20:], X1[20:], Y[20:]))
    code, out, err = run_cli("predict", model_file, folder, "-o", tmp_path / "p.csv")
    assert code == 0, err
    got = pd.read_csv(tmp_path / "p.csv")
    assert list(got.columns) == ["x1", "x2", "y", "y_pred"]
    np.testing.assert_allclose(got["x1"], X1, rtol=1e-15)  # b.csv's rows relabelled by name, not position
    np.testing.assert_allclose(got["y_pred"], Y, rtol=1e-9, atol=1e-9)


def test_case1_fit_folder_whose_headers_differ_in_order(tmp_path, run_cli):
    folder = tmp_path / "in"
    folder.mkdir()
    _csv(folder / "a.csv", ["x1", "x2", "y"], zip(X1[:20], X2[:20], Y[:20]))
    _csv(folder / "b.csv", ["y", "x2", "x1"], zip(Y[20:], X2[20:], X1[20:]))
    model = gradfit.fit(gradfit.data.files.open_table(folder, target="y"))
    np.testing.assert_allclose(model.coef_, [2, -3], atol=1e-9)


def test_case1_predict_folder_with_an_unrelated_header_is_refused(tmp_path, model_file, run_cli):
    folder = tmp_path / "in"
    folder.mkdir()
    _csv(folder / "a.csv", ["x1", "x2", "y"], zip(X1, X2, Y))
    _csv(folder / "c.csv", ["foo", "bar", "baz"], zip(X1, X2, Y))
    before = _digest([folder / "a.csv", folder / "c.csv"])
    code, out, err = run_cli("predict", model_file, folder, "-o", tmp_path / "p.csv")
    assert _one_error_line(code, err) and "c.csv is missing feature column(s) x1, x2" in err
    assert not (tmp_path / "p.csv").exists() and _digest([folder / "a.csv", folder / "c.csv"]) == before


def test_case1_python_predict_matches_pyarrow_and_integer_names_by_name():
    model = gradfit.fit(pd.DataFrame({"x1": X1, "x2": X2}), Y)
    swapped = pa.table({"x2": X2, "x1": X1})
    np.testing.assert_allclose(model.predict(swapped), Y, atol=1e-9)
    np.testing.assert_allclose(model.predict(pa.record_batch([X2, X1], names=["x2", "x1"])), Y, atol=1e-9)
    numbered = LinearModel(np.array([2.0, -3.0]), 1.0, ["0", "1"])
    frame = pd.DataFrame({1: X2, 0: X1})  # integer column names, in another order
    np.testing.assert_allclose(numbered.predict(frame), Y, atol=1e-9)
    with pytest.raises(DataError, match="missing feature column"):
        model.predict(pa.table({"foo": X1, "bar": X2}))


# -- 2. duplicate column names -----------------------------------------------------------------------
def test_case2_duplicate_column_names_are_an_error_at_the_reader(tmp_path, model_file, run_cli):
    dup = tmp_path / "dup.csv"
    dup.write_text("x1,x2,x2,y\n" + "".join(f"{a},{b},{5 * a},{c}\n" for a, b, c in zip(X1, X2, Y)))
    before = _digest([dup])
    code, out, err = run_cli("fit", dup, "--target", "y", "--save", tmp_path / "d.json")
    assert _one_error_line(code, err) and "dup.csv has 2 columns named 'x2' (columns 2 and 3)" in err
    assert not (tmp_path / "d.json").exists()
    code, out, err = run_cli("predict", model_file, dup, "-o", tmp_path / "p.csv")
    assert _one_error_line(code, err) and "named 'x2'" in err and not (tmp_path / "p.csv").exists()
    assert _digest([dup]) == before
    table = pa.Table.from_arrays([pa.array(X1), pa.array(X2), pa.array(Y)], names=["x1", "x1", "y"])
    pq.write_table(table, tmp_path / "dup.parquet")
    code, out, err = run_cli("fit", tmp_path / "dup.parquet", "--target", "y")
    assert _one_error_line(code, err) and "2 columns named 'x1'" in err


# -- 3. pass-through columns are copied, never re-parsed ---------------------------------------------
@pytest.mark.parametrize("out_ext", ["csv", "parquet"])
def test_case3_predict_copies_ids_and_zip_codes_as_text(tmp_path, model_file, run_cli, out_ext):
    src = tmp_path / "ids.csv"
    src.write_text("id,zip,x1,x2\n" + "".join(f"123456789012345678{i % 10},0213{i % 10},{a},{b}\n"
                                              for i, (a, b) in enumerate(zip(X1, X2))))
    out = tmp_path / f"p.{out_ext}"
    code, _, err = run_cli("predict", model_file, src, "-o", out)
    assert code == 0, err
    got = pq.read_table(out).to_pydict() if out_ext == "parquet" else None
    if got is None:
        lines = out.read_text().splitlines()
        rows = [ln.split(",") for ln in lines[1:]]
        ids, zips = [r[0].strip('"') for r in rows], [r[1].strip('"') for r in rows]
    else:
        ids, zips = got["id"], got["zip"]
    assert ids[:2] == ["1234567890123456780", "1234567890123456781"]
    assert zips[:2] == ["02130", "02131"]


# -- 4. an output may never be an input; symlinks, FIFOs, modes; results before saving -----------------
@pytest.mark.parametrize("flag", ["--save", "--report"])
def test_case4_fit_output_that_is_the_input_is_refused(tmp_path, good, run_cli, flag):
    before = _digest([good])
    code, out, err = run_cli("fit", good, "--target", "y", flag, good)
    assert _one_error_line(code, err) and "is the input file" in err
    assert _digest([good]) == before


def test_case4_predict_output_that_is_the_input_is_refused(tmp_path, model_file, run_cli):
    src = tmp_path / "ids.csv"
    src.write_text("x1,x2\n1,2\n3,4\n")
    link = tmp_path / "alias.csv"
    link.symlink_to(src)
    before = _digest([src, model_file])
    for target in (src, link, model_file.with_suffix(".json")):
        out = target if target.suffix == ".csv" else tmp_path / "m.csv"
        code, _, err = run_cli("predict", model_file, src, "-o", out)
        assert code in (0, 2)
        if out in (src, link):
            assert _one_error_line(code, err) and "is the input file" in err
    assert _digest([src, model_file]) == before


def test_case4_save_writes_through_a_symlink_and_keeps_the_mode(tmp_path, good, run_cli):
    real = tmp_path / "real.json"
    real.write_text("{}")
    os.chmod(real, 0o600)
    link = tmp_path / "link.json"
    link.symlink_to(real)
    code, out, err = run_cli("fit", good, "--target", "y", "--save", link, "-q")
    assert code == 0, err
    assert link.is_symlink() and load(link).coef_.shape == (2,)
    assert stat.S_IMODE(real.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.csv", "link.json", "real.json"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_case4_fifo_and_device_outputs_are_refused(tmp_path, good, run_cli):
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    for out in (fifo, "/dev/null"):
        code, _, err = run_cli("fit", good, "--target", "y", "--save", out)
        assert _one_error_line(code, err) and "not a regular file" in err
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_case4_a_failed_save_still_prints_the_coefficients(tmp_path, good, run_cli, monkeypatch):
    from gradfit.data.atomic import OutputError

    def disk_full(self, path):
        raise OutputError(f"cannot write {path}: No space left on device; choose another output path")
    monkeypatch.setattr(LinearModel, "save", disk_full)
    code, out, err = run_cli("fit", good, "--target", "y", "--save", tmp_path / "m.json", "-q")
    assert _one_error_line(code, err) and "No space left" in err
    assert "x1" in out and "intercept" in out and "model saved" not in out
    code, out, err = run_cli("fit", good, "--target", "y", "--save", tmp_path / "m.json", "--json")
    assert code == 2 and json.loads(out)["coef"] == pytest.approx([2, -3]) and json.loads(out)["saved_to"] is None


def test_case4_an_unwritable_output_is_refused_before_the_fit(tmp_path, good, run_cli):
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, out, err = run_cli("fit", good, "--target", "y", "--save", blocker / "m.json", "-q")
    assert _one_error_line(code, err) and "cannot write" in err and out == ""


# -- 5. nonsense settings are refused by their flag ----------------------------------------------------
def _library_checks_settings() -> bool:
    """The library's one validation of settings (issue 13, the layers helper) has landed."""
    try:
        gradfit.fit([[0.0], [1.0], [2.0]], [0.0, 1.0, 2.0], solver="gd", lr=-1.0, epochs=1)
    except ValueError as exc:
        return str(exc).startswith("lr must")
    except Exception:  # noqa: BLE001
        return False
    return False


@pytest.mark.parametrize("flags", [["--optimizer", "adam", "--batch-size", "-3"], ["--optimizer", "gd", "--lr", "0"],
                                   ["--epochs", "-5"], ["--tol", "-1"], ["--tol", "nan"],
                                   ["--optimizer", "gd", "--lr", "-0.1"], ["--optimizer", "gd", "--lr", "nan"],
                                   ["--optimizer", "adam", "--batch-size", "0"]])
def test_case5_nonsense_settings_name_their_flag(tmp_path, good, run_cli, flags):
    code, out, err = run_cli("fit", good, "--target", "y", *flags, "--save", tmp_path / "m.json")
    assert _one_error_line(code, err), err
    assert flags[-2] in err and "converged" not in out
    assert not (tmp_path / "m.json").exists()


# -- 6 and 7: processes ----------------------------------------------------------------------------------
def _listening_ports():
    """(address, port) of every listening TCP socket on this machine, from /proc/net/tcp{,6}."""
    found = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(name):
            continue
        for line in open(name).read().splitlines()[1:]:
            f = line.split()
            if f[3] == "0A":
                addr, port = f[1].split(":")
                found.add((addr, int(port, 16)))
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/net/tcp")
def test_case7_the_rendezvous_listens_on_loopback_only():
    from gradfit.cli.launcher import local_store
    store = local_store(2, 5.0)
    try:
        mine = [addr for addr, port in _listening_ports() if port == store.port]
        assert mine and all(addr in ("0100007F", "0000000000000000FFFF00000100007F") for addr in mine), mine
    finally:
        del store


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux")
def test_case6_workers_die_with_their_launcher_and_write_nothing(tmp_path):
    import time
    n = 4000
    rng = np.random.default_rng(0)
    x = rng.normal(size=n)
    data = _csv(tmp_path / "big.csv", ["x", "y"], zip(x, 2 * x + rng.normal(size=n)))
    env = dict(os.environ, GRADFIT_TEST_CRASH="1:3h")  # rank 1 hangs in its third all-reduce
    proc = subprocess.Popen([sys.executable, "-m", "gradfit", "fit", str(data), "--target", "y", "--nproc", "2",
                             "--optimizer", "gd", "--save", str(tmp_path / "tmo.json"), "-q"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    workers = []
    deadline = time.monotonic() + 60
    while len(workers) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
        workers = _children(proc.pid)
    assert len(workers) == 2
    time.sleep(1.0)
    os.kill(proc.pid, 9)  # the launcher dies without any chance to clean up
    proc.wait()
    deadline = time.monotonic() + 15
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(w) for w in workers)
    assert not (tmp_path / "tmo.json").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["big.csv"]


@pytest.mark.slow  # three processes, ~5 s of CPU each before the signal (`make test-slow`, which CI runs)
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_case6_sigterm_to_the_launcher_mid_fit_stops_the_workers_and_writes_nothing(tmp_path):
    """``timeout 6 gradfit fit big.csv --nproc 2 --save tmo.json``: timeout's SIGTERM reaches the launcher
    alone (the workers have their own sessions); they must be gone within seconds and never write tmo.json."""
    import signal
    import time
    n = 4000
    rng = np.random.default_rng(0)
    x = rng.normal(size=n)
    data = _csv(tmp_path / "big.csv", ["x", "y"], zip(x, 2 * x + rng.normal(size=n)))
    before = _digest([data])
    # a fit that would run for hours: plain SGD at a tiny step, never within tol; quiet, so that rank 0 never
    # writes to the launcher's pipe (a broken pipe would stop it for another reason)
    proc = subprocess.Popen([sys.executable, "-m", "gradfit", "fit", str(data), "--target", "y", "--nproc", "2",
                             "--optimizer", "sgd", "--lr", "1e-9", "--epochs", "100000000", "-q",
                             "--save", str(tmp_path / "tmo.json")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        workers, deadline = [], time.monotonic() + 120
        # mid-fit: both workers exist and have each used 5 s of CPU (importing torch and gradfit takes ~3.3 s)
        while (len(workers) < 2 or min(_cpu_seconds(w) for w in workers) < 5.0) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.2)
            workers = _children(proc.pid)
        assert len(workers) == 2 and all(_alive(w) for w in workers)
        os.kill(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    gone_by = time.monotonic() + 3  # the launcher stopped them before it exited
    while any(_alive(w) for w in workers) and time.monotonic() < gone_by:
        time.sleep(0.05)
    orphans = [w for w in workers if _alive(w)]
    for w in orphans:  # (do not leave them running when the test fails)
        os.kill(w, signal.SIGKILL)
    assert not orphans, "a worker outlived its launcher"
    assert proc.returncode == 130 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == "gradfit: interrupted (stopped by SIGTERM); nothing was written", err
    time.sleep(2.0)  # no process is left that could write; make sure nothing arrives late either
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.csv"]
    assert _digest([data]) == before


def _cpu_seconds(pid):
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    except (FileNotFoundError, ProcessLookupError):
        return 0.0


def _children(pid):
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(v) for v in out.split()]


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


# -- 8. tracebacks --------------------------------------------------------------------------------------
@pytest.mark.parametrize("flag", ["--summary", "--report"])
@pytest.mark.parametrize("target", ["constant", "exact"])
def test_case8_constant_target_or_exact_fit_with_summary(tmp_path, run_cli, flag, target):
    y = np.full(40, 5.0) if target == "constant" else 2 * X1 + 1
    data = _csv(tmp_path / "d.csv", ["x", "y"], zip(X1, y))
    extra = [tmp_path / "r.html"] if flag == "--report" else []
    code, out, err = run_cli("fit", data, "--target", "y", flag, *extra, "-q")
    assert "Traceback" not in err and (code == 0 or _one_error_line(code, err)), err
    assert code == 0 or flag == "--report"  # the summary works; a report's diagnostics may refuse in one line


@pytest.mark.parametrize("flags", [["--device", "foo"], ["--optimizer", "adam", "--batch-size", "0"]])
def test_case8_bad_device_and_batch_size(tmp_path, good, run_cli, flags):
    code, out, err = run_cli("fit", good, "--target", "y", *flags)
    assert _one_error_line(code, err) and flags[-2] in err


MODEL_DAMAGE = {
    "integer 10**400": lambda d: json.dumps(d).replace('"intercept": ', '"intercept": 1' + "0" * 400 + ", \"x\": "),
    "100k-deep nesting": lambda d: json.dumps(d)[:-1] + ', "deep": ' + "[" * 100000 + "]" * 100000 + "}",
    "history.loss 5": lambda d: json.dumps({**d, "history": {"loss": 5}}),
    "n_iter 1e400": lambda d: json.dumps(d).replace('"n_iter": ', '"n_iter": 1e400, "x": '),
    "loss is a number": lambda d: json.dumps({**d, "loss": 3}),
    "penalty alpha is text": lambda d: json.dumps({**d, "penalty": {"name": "l2", "alpha": "big"}}),
}


@pytest.mark.parametrize("damage", list(MODEL_DAMAGE))
@pytest.mark.parametrize("command", ["predict", "plot"])
def test_case8_damaged_model_files_are_one_line_naming_the_file(tmp_path, model_file, good, run_cli, damage,
                                                              command):
    bad = tmp_path / "bad.json"
    bad.write_text(MODEL_DAMAGE[damage](json.loads(model_file.read_text())))
    args = ["-o", tmp_path / "p.csv"] if command == "predict" else ["--out", tmp_path / "plots"]
    code, out, err = run_cli(command, bad, good, *args)
    assert _one_error_line(code, err) and "bad.json" in err, err
    assert not (tmp_path / "p.csv").exists() and not (tmp_path / "plots").exists()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="watches /proc/PID/maps")
def test_case8_ctrl_c_while_torch_imports_is_one_line(tmp_path, good):
    import signal
    import time
    proc = subprocess.Popen([sys.executable, "-m", "gradfit", "fit", str(good), "--target", "y"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # Ctrl-C once torch's library is loading
        try:
            if "libtorch" in open(f"/proc/{proc.pid}/maps").read():
                break
        except FileNotFoundError:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert "Traceback" not in err, err
    assert proc.returncode in (0, 130) and (proc.returncode == 0 or err.strip().startswith("gradfit: interrupted"))


def test_case8_math_text_column_name_with_plot(tmp_path, run_cli):
    data = _csv(tmp_path / "d.csv", ["$\\frac$", "y"], zip(X1, 2 * X1 + X2))
    code, out, err = run_cli("fit", data, "--target", "y", "--plot", tmp_path / "plots", "-q")
    assert code == 0 and "Traceback" not in err and (tmp_path / "plots" / "fit.png").exists()


# -- 9. misleading messages ---------------------------------------------------------------------------
def _good_text():
    return "x1,x2,y\n" + "".join(f"{a},{b},{c}\n" for a, b, c in zip(X1, X2, Y))


ENCODED = {
    "UTF-16": (lambda: _good_text().encode("utf-16"), "UTF-16"),
    "gzip named .csv": (lambda: __import__("gzip").compress(_good_text().encode()), "gzip-compressed"),
    "NUL bytes": (lambda: _good_text().encode()[:30] + b"\x00\x00" + _good_text().encode()[30:], "NUL byte"),
}


@pytest.mark.parametrize("name", list(ENCODED))
def test_case9_encodings_and_compression_are_named(tmp_path, run_cli, name):
    make, words = ENCODED[name]
    path = tmp_path / "d.csv"
    path.write_bytes(make())
    code, out, err = run_cli("fit", path, "--target", "y")
    assert _one_error_line(code, err) and words in err and "d.csv" in err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_case9_a_pipe_is_named_as_a_pipe(tmp_path, run_cli):
    fifo = tmp_path / "in.csv"
    os.mkfifo(fifo)
    code, out, err = run_cli("fit", fifo, "--target", "y")
    assert _one_error_line(code, err) and "pipe" in err and "is empty" not in err


@pytest.mark.parametrize("flags,words", [(["--timeout", "nan"], "--timeout must be a positive"),
                                         (["--seed", str(10 ** 23)], "--seed must be"),
                                         (["--seed", "1e23"], "--seed")])
def test_case9_cli_values(good, run_cli, flags, words):
    code, out, err = run_cli("fit", good, "--target", "y", *flags)
    assert _one_error_line(code, err) and words in err


def test_case9_damaged_model_fields_name_the_file(tmp_path, model_file, good, run_cli):
    d = json.loads(model_file.read_text())
    d["training"]["gap"] = "small"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(d))
    code, out, err = run_cli("predict", bad, good, "-o", tmp_path / "p.csv")
    assert _one_error_line(code, err) and "bad.json" in err and "training.gap" in err


@pytest.mark.parametrize("optimizer", ["gd", "sgd", "adam", "lbfgs"])  # exact sums in float64: it fits
def test_case9_float32_overflow_names_float32(tmp_path, run_cli, optimizer):
    data = _csv(tmp_path / "d.csv", ["x", "y"], zip(X1 * 1e30, Y * 1e30))
    code, out, err = run_cli("fit", data, "--target", "y", "--dtype", "float32", "--optimizer", optimizer,
                             "--save", tmp_path / "m.json")
    assert _one_error_line(code, err) and "too large for float32" in err and "--dtype float64" in err, err
    assert "learning rate" not in err and "--lr" not in err and not (tmp_path / "m.json").exists()


def test_case9_predict_drop_na_says_rows_no_longer_line_up(tmp_path, model_file, run_cli):
    src = tmp_path / "in.csv"
    src.write_text("x1,x2\n1,2\n,3\n4,5\n")
    code, out, err = run_cli("predict", model_file, src, "-o", tmp_path / "p.csv", "--drop-na")
    assert code == 0 and "1 row(s)" in err and "no longer line up" in err and "data row 2" in err


# -- 10. one CSV reader for every path and process count ------------------------------------------------
def _quoted(tmp_path, n=300):
    rng = np.random.default_rng(1)
    a, b, c = rng.normal(size=(3, n))
    y = 1 + a - 2 * b + 0.5 * c
    lines = ['note,a,b,c,y'] + [f'"row {i}\nsays ""hi"", and more",{a[i]},{b[i]},{c[i]},{y[i]}'
                                for i in range(n)]
    path = tmp_path / "q.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_case10_quoted_newlines_read_by_one_process(tmp_path, run_cli):
    path = _quoted(tmp_path)
    code, out, err = run_cli("fit", path, "--target", "y", "--features", "a,b,c", "--json")
    assert code == 0, err
    res = json.loads(out)
    assert res["coef"] == pytest.approx([1, -2, 0.5], abs=1e-9) and res["training"]["n_rows"] == 300


def test_case10_shards_cut_between_records_not_inside_quotes(tmp_path):
    from gradfit.data.files import open_table
    path = _quoted(tmp_path)
    full = open_table(path, target="y", features=["a", "b", "c"])
    for world in (2, 3, 7):
        parts = [open_table(path, target="y", features=["a", "b", "c"], shard=(r, world), cache=True)
                 for r in range(world)]
        X = np.concatenate([p.full_batch().X.numpy() for p in parts])
        np.testing.assert_array_equal(X, full.full_batch().X.numpy())


# -- what docs/guarantees.md promises beyond the numbered cases ----------------------------------------
def test_no_pickle_eval_or_exec_anywhere_in_the_package():
    import re
    from pathlib import Path
    root = Path(gradfit.__file__).parent
    bad = re.compile(r"import pickle|\bpickle\.|\bcloudpickle\b|(?<![\w.])eval\(|(?<![\w.])exec\(|torch\.load\(|"
                     r"allow_pickle\s*=\s*True|\bmarshal\.|\bshelve\b|yaml\.load\(")
    found = [f"{p.relative_to(root)}:{i}" for p in root.rglob("*.py")
             for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if bad.search(line)]
    assert found == []


def test_model_files_are_plain_json_read_without_executing(tmp_path, model_file):
    text = model_file.read_text()
    assert isinstance(json.loads(text), dict)
    hostile = json.loads(text)
    hostile["loss"] = {"name": "__import__('os').system('touch pwned')"}
    (tmp_path / "h.json").write_text(json.dumps(hostile))
    with pytest.raises(DataError, match="h.json is damaged"):
        load(tmp_path / "h.json")
    assert not (tmp_path / "pwned").exists()
