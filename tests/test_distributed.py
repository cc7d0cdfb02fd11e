"""Many processes on torch.distributed (gloo, 127.0.0.1): the same answer as one process, and clean failures."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch.distributed as dist

from gradfit.cli import main
from gradfit.distributed import shard_range
from gradfit.cli.launcher import spawn

pytestmark = pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()),
                                reason="torch.distributed with gloo is not available")

# Runs in one process (make = as_batches) or in each of N processes (make = shard of as_batches).
CASES = '''
import json, sys, warnings
import numpy as np
from gradfit import fit
from gradfit.data.arrays import as_batches

def problem(n=101, seed=0, collinear=False):
    r = np.random.default_rng(seed)
    X = r.normal(size=(n, 3)) * [1, 2, 0.5] + [1, -1, 3]
    if collinear:  # condition number ~1e7: the exact solver takes its streaming-QR path
        X[:, 2] = X[:, 0] + X[:, 1] + 1e-7 * r.normal(size=n)
    y = X @ [1.5, -0.2, 3.0] + 7 + r.normal(size=n)
    return X, y, r.uniform(0.5, 2.0, size=n)

def compute(make):
    X, y, w = problem()
    d, dw = make(X, y, None), make(X, y, w)
    out = {"rows": d.total_rows()}
    runs = {"exact": (dw, dict(solver="exact")),
            "exact_ridge_noint": (d, dict(solver="exact", penalty="l2", alpha=0.3, fit_intercept=False)),
            "gd": (dw, dict(solver="gd")),
            "gd_huber": (d, dict(solver="gd", loss="huber", huber_scale="absolute", delta=0.5)),
            "sgd": (dw, dict(solver="sgd", lr=0.01, epochs=60, tol=0)),
            "momentum": (d, dict(solver="momentum", lr=0.005, epochs=60, tol=0)),
            "nesterov": (dw, dict(solver="nesterov", lr=0.005, epochs=60, tol=0, penalty="l2", alpha=0.01)),
            "newton": (dw, dict(solver="newton", loss="huber")),
            "prox": (dw, dict(solver="prox", penalty="l1", alpha=0.05)),
            "cd": (d, dict(solver="cd", penalty="elasticnet", alpha=0.05))}
    Xc, yc, _ = problem(collinear=True, seed=1)
    runs["exact_qr"] = (make(Xc, yc, None), dict(solver="exact"))
    for name, (data, kw) in runs.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = fit(data, **kw)
        out[name] = {"theta": [*map(float, m.coef_), m.intercept_], "n_iter": m.n_iter_,
                     "loss": m.final_loss_, "method": m.info.get("method")}
    Xb, yb, wb = problem(n=3000, seed=2)  # big enough for the streamed ipm's samples and globs
    db, dbw = make(Xb, yb, None), make(Xb, yb, wb)
    ipm = {"ipm_small": (dw, dict(loss="l1")),  # all rows to every process, one LP
           "ipm_l1": (db, dict(loss="l1", options={"min_rows": 500})),
           "ipm_q90_w": (dbw, dict(loss="quantile", quantile=0.9, options={"min_rows": 500})),
           "ipm_noint_pen": (db, dict(loss="quantile", quantile=0.2, fit_intercept=False, penalty="l1", alpha=0.01,
                                      options={"min_rows": 500})),
           "ipm_repeat": (dbw, dict(loss="quantile", quantile=0.1, options={"min_rows": 100, "subsample": 20}))}
    for name, (data, kw) in ipm.items():
        m = fit(data, solver="ipm", **kw)
        out[name] = {"loss": m.final_loss_, "gap": m.gap_, "converged": m.converged_,
                     "passes": m.info.get("passes", 0)}
    for name, kw in {"minibatch": dict(solver="sgd", batch_size=10, epochs=3)}.items():
        try:
            fit(d, **kw)
            out[name] = "ran"
        except ValueError as exc:
            out[name] = str(exc)
    return out
'''

WORKER = CASES + '''
from gradfit import distributed
with distributed.Session.from_env(timeout=30) as session:
    out = compute(lambda X, y, w: distributed.shard(as_batches(X, y, w), session))
    out["local_rows"] = distributed.shard(as_batches(*problem()[:2])).n_rows
    if session.rank == 0:
        with open(sys.argv[1], "w") as fh:
            json.dump(out, fh)
'''


def _rel(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def _run_cli(args: list[str], env: dict | None = None, timeout: float = 120):
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "gradfit", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout)
    return proc, time.perf_counter() - t0


def test_shard_range_covers_every_row_once():
    for n in (0, 1, 5, 101):
        for world in (1, 2, 3, 7):
            parts = [shard_range(n, r, world) for r in range(world)]
            assert parts[0][0] == 0 and parts[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(parts, parts[1:]))
            assert max(b - a for a, b in parts) - min(b - a for a, b in parts) <= 1


def test_two_processes_in_memory_equal_one_process(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    out_path = tmp_path / "out.json"
    code, failed, errs = spawn([sys.executable, str(script), str(out_path)], 2, timeout=30)
    assert code == 0, errs
    got = json.loads(out_path.read_text())
    scope: dict = {}
    exec(CASES, scope)
    ref = scope["compute"](lambda X, y, w: scope["as_batches"](X, y, w))
    assert got["rows"] == ref["rows"] == 101 and got["local_rows"] == 50  # uneven shards: 50 + 51
    for name in ("exact", "exact_ridge_noint", "gd", "gd_huber", "sgd", "momentum", "nesterov", "newton", "prox",
                 "cd"):
        assert got[name]["n_iter"] == ref[name]["n_iter"], name
        assert _rel(got[name]["theta"], ref[name]["theta"]) < 1e-10, (name, got[name], ref[name])
        assert abs(got[name]["loss"] - ref[name]["loss"]) <= 1e-10 * abs(ref[name]["loss"]), name
    # the ill-conditioned path stacks every process's R factor: equal up to its conditioning
    # (one process in memory also refines the augmented system with its Q: more digits, same method family)
    assert got["exact_qr"]["method"].startswith("qr") and ref["exact_qr"]["method"].startswith("qr")
    assert _rel(got["exact_qr"]["theta"], ref["exact_qr"]["theta"]) < 1e-6
    assert "mini-batch" in got["minibatch"] and "across processes" in got["minibatch"]
    assert ref["minibatch"] == "ran"
    for name in ("ipm_small", "ipm_l1", "ipm_q90_w", "ipm_noint_pen", "ipm_repeat"):  # the same optimum
        assert got[name]["converged"] and got[name]["gap"] <= 1e-8, (name, got[name])
        assert abs(got[name]["loss"] - ref[name]["loss"]) <= 1e-10 * ref[name]["loss"], (name, got[name], ref[name])
    assert got["ipm_repeat"]["passes"] > 3  # the 20-row sample failed its check and the scheme repeated


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    d = tmp_path_factory.mktemp("dist")
    r = np.random.default_rng(3)
    n = 1001
    X = r.normal(size=(n, 3)) * [1, 2, 0.5] + [1, -1, 3]
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    df["y"] = X @ [1.5, -0.2, 3.0] + 7 + r.normal(size=n)
    df["w"] = r.uniform(0.5, 2.0, size=n)
    df.to_csv(d / "d.csv", index=False)
    df.to_parquet(d / "d.parquet", row_group_size=100)
    return d


@pytest.mark.parametrize("fmt, extra", [
    ("csv", ["--weight", "w"]),  # one CSV cut into byte ranges, exact solver
    ("parquet", ["--optimizer", "sgd", "--lr", "0.01", "--epochs", "40", "--tol", "0"]),  # row groups
])
def test_cli_nproc_2_equals_one_process(table, tmp_path, capsys, fmt, extra):
    args = ["fit", str(table / f"d.{fmt}"), "--target", "y", "--json", *extra]
    assert main(args) == 0
    one = json.loads(capsys.readouterr().out)
    model = tmp_path / "model.json"
    code = main([*args, "--nproc", "2", "--save", str(model)])  # launches 2 worker processes
    out = capsys.readouterr()
    assert code == 0, out.err
    two = json.loads(out.out)  # only rank 0 printed: exactly one JSON document
    assert _rel(two["coef"] + [two["intercept"]], one["coef"] + [one["intercept"]]) < 1e-10
    assert json.loads(model.read_text())["coef"] == two["coef"]
    assert two["training"]["n_iter"] == one["training"]["n_iter"]
    assert two["training"]["final_loss"] == pytest.approx(one["training"]["final_loss"], rel=1e-10)


def test_dead_worker_stops_the_others_and_writes_nothing(table, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GRADFIT_TEST_CRASH", "1:3")  # rank 1 exits in its third all-reduce
    model = tmp_path / "model.json"
    t0 = time.perf_counter()
    code = main(["fit", str(table / "d.csv"), "--target", "y", "--nproc", "2", "--timeout", "40",
                 "--save", str(model)])
    elapsed = time.perf_counter() - t0
    out = capsys.readouterr()
    assert code == 1
    lines = out.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gradfit: error: process 1 of 2 exited with code 3"), lines
    assert "nothing was written" in lines[0]
    assert out.out == "" and list(tmp_path.iterdir()) == []
    assert elapsed < 40  # not the 40 s timeout: the launcher stops the others at once


class _Exits:
    """A process (to the launcher) that is seen to have exited with ``code`` from ``after`` seconds on."""

    def __init__(self, code, after=0.0):
        self.code, self.at, self.returncode = code, time.monotonic() + after, None

    def poll(self):
        if self.returncode is None and time.monotonic() >= self.at:
            self.returncode = self.code
        return self.returncode


@pytest.mark.parametrize("crashed_after", [0.0, 0.1, 1.0])
def test_launcher_names_the_crashed_process_over_the_one_that_lost_contact_with_it(crashed_after):
    """Rank 0 lost contact (it says so) and is seen gone first, with exit 1 or, when torch's teardown
    aborted it after its line, SIGABRT; rank 1 crashed (exit 3), seen up to a second later: rank 1 is named."""
    from gradfit.cli import launcher
    said = {0: "gradfit: error: process 0 of 2 lost contact with the others (Connection reset by peer)\n"}
    for code in (1, -6):
        procs = [_Exits(code), _Exits(3, after=crashed_after)]
        assert launcher._watch(procs, lambda rank: said.get(rank, "")) == 1
    # a process that died of its own cause without a word about a lost peer is named first
    assert launcher._blame([_Exits(-6), _Exits(3)], 0) == 0
    # a bad input (exit 2) is named before a crash, and a hung peer does not hold a timed-out one long
    assert launcher._blame([_Exits(1), _Exits(3), _Exits(2, after=0.1)], 0) == 2
    t0 = time.monotonic()
    assert launcher._blame([_Exits(1), _Exits(0, after=3600)], 0) == 0
    assert time.monotonic() - t0 < launcher.BLAME_S + 1


def test_hung_worker_times_out(table, tmp_path, capsys, monkeypatch):
    """Rank 1 stops answering inside a collective: rank 0 gives up after --timeout, one line, exit 1."""
    monkeypatch.setenv("GRADFIT_TEST_CRASH", "1:3h")
    model = tmp_path / "model.json"
    code = main(["fit", str(table / "d.csv"), "--target", "y", "--nproc", "2", "--timeout", "3",
                 "--save", str(model)])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(lines) == 1 and lines[0].startswith("gradfit: error: process 0 of 2 lost contact"), lines
    assert "Timed out" in lines[0] and list(tmp_path.iterdir()) == []


def test_missing_peer_fails_to_join_within_timeout(table, tmp_path):
    """torchrun-style environment with WORLD_SIZE=2 but only rank 0 started."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    model = tmp_path / "model.json"
    proc, elapsed = _run_cli(["fit", str(table / "d.csv"), "--target", "y", "--timeout", "2", "--save", str(model)],
                             env=env)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("gradfit: error: process 0 of 2 could not join the others") and "within 2 s" in last
    assert not model.exists()


def test_bad_flags_are_one_line_errors(table, capsys):
    for extra, words in ((["--nproc", "0"], "--nproc must be at least 1"),
                         (["--timeout", "-1", "--nproc", "2"], "--timeout must be a positive")):
        assert main(["fit", str(table / "d.csv"), "--target", "y", *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0], err


@pytest.mark.parametrize("fmt, extra", [
    ("csv", ["--loss", "l1", "--weight", "w"]),
    ("parquet", ["--loss", "quantile", "--quantile", "0.9"]),
    ("one_group.parquet", ["--loss", "l1"]),  # one row group: process 1 has a shard with zero rows
])
def test_cli_nproc_2_exact_l1_quantile_equals_one_process(table, tmp_path, capsys, fmt, extra):
    path = table / (fmt if "." in fmt else f"d.{fmt}")
    if fmt == "one_group.parquet":
        pd.read_parquet(table / "d.parquet").to_parquet(path, row_group_size=10_000)
    args = ["fit", str(path), "--target", "y", "--json", *extra]
    assert main(args) == 0
    one = json.loads(capsys.readouterr().out)
    model = tmp_path / "model.json"
    code = main([*args, "--nproc", "2", "--save", str(model)])
    out = capsys.readouterr()
    assert code == 0, out.err
    two = json.loads(out.out)
    assert two["solver"] == one["solver"] == "ipm" and two["training"]["converged"]
    assert two["training"]["final_loss"] == pytest.approx(one["training"]["final_loss"], rel=1e-10)
    assert json.loads(model.read_text())["coef"] == two["coef"]


def test_dead_worker_in_the_streamed_ipm_stops_the_others(table, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GRADFIT_TEST_CRASH", "1:4")  # rank 1 exits in its fourth all-reduce
    model = tmp_path / "model.json"
    code = main(["fit", str(table / "d.parquet"), "--target", "y", "--loss", "l1", "--nproc", "2",
                 "--timeout", "40", "--save", str(model)])
    out = capsys.readouterr()
    lines = out.err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and "process 1 of 2 exited with code 3" in lines[0], lines
    assert out.out == "" and not model.exists()


FILE_WORKER = '''
import json, sys
from gradfit import distributed, fit
from gradfit.data.files import open_table
from gradfit.distributed.session import ShardedBatches
kw = json.loads(sys.argv[3])
with distributed.Session.from_env(timeout=60) as session:
    data = ShardedBatches(open_table(sys.argv[2], target="y", shard=session.shard, cache=False))
    m = fit(data, options={"min_rows": 1000}, **kw)
    if session.rank == 0:
        with open(sys.argv[1], "w") as fh:
            json.dump({"loss": m.final_loss_, "gap": m.gap_, **{k: m.info[k] for k in ("passes", "sample_from")}}, fh)
'''


@pytest.mark.parametrize("kw", [dict(loss="l1"), dict(loss="quantile", quantile=0.9)])
def test_two_processes_one_pass_over_their_row_groups(tmp_path, kw):
    """Each process samples a few of its own row groups and classifies its own rows in one pass:
    the one-process optimum to 1e-10."""
    from gradfit import fit
    from gradfit.data.files import open_table
    r = np.random.default_rng(11)
    X = r.normal(size=(60000, 3)) * [1, 2, 0.5] + [1, -1, 3]
    df = pd.DataFrame(X, columns=["a", "b", "c"]).assign(y=X @ [1.5, -0.2, 3.0] + 7 + r.standard_t(3, size=60000))
    path = tmp_path / "g.parquet"
    df.to_parquet(path, row_group_size=1000)
    one = fit(open_table(path, target="y", cache=False), options={"min_rows": 1000}, **kw)
    assert one.info["sample_from"] == "a few row groups" and one.info["passes"] == 1
    script, out = tmp_path / "w.py", tmp_path / "out.json"
    script.write_text(FILE_WORKER)
    code, failed, errs = spawn([sys.executable, str(script), str(out), str(path), json.dumps(kw)], 2, timeout=90)
    assert code == 0, errs
    two = json.loads(out.read_text())
    assert two["sample_from"] == "a few row groups" and two["gap"] <= 1e-8
    assert abs(two["loss"] - one.final_loss_) <= 1e-10 * one.final_loss_
