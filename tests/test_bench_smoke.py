"""The benchmark machinery on tiny sizes, so it cannot rot: every case kind runs, objectives are
compared, targets are evaluated and the README table is rewritten between its markers."""
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

pytest.importorskip("sklearn")
pytest.importorskip("statsmodels")

from bench import report  # noqa: E402
from bench.cases import Case, all_cases  # noqa: E402
from bench.peers.base import Peer  # noqa: E402
from bench.problems import Problem, huber_scale_objective, make_data, objective  # noqa: E402
from bench.run import finish_rows, run_fit_case, time_peer  # noqa: E402
from bench.special import seed_case, sgd_case  # noqa: E402


def quiet(*args):
    pass


def test_tiny_fit_cases_compare_objectives_and_evaluate_targets(tmp_path):
    cases = [c for c in all_cases("tiny") if c.kind == "fit"]
    assert {c.problem.loss for c in cases} == {"squared", "absolute", "huber_scale"}
    done = []
    for case in cases:
        rows, targets = run_fit_case(case, repeats=1, budget=30.0, log=quiet)
        assert rows[0]["peer"].startswith("gradfit") and targets
        fits = [r for r in rows if r.get("objective") is not None]
        if rows[0].get("seconds") is None:  # a solver another helper has not delivered yet
            assert "registered" in rows[0]["note"], rows[0]
        else:
            assert len(fits) >= 2, rows  # gradfit and at least one peer answered
        for r in fits:
            assert r["rel_to_best"] >= 0
        if case.problem.loss == "squared":
            assert all(r["rel_to_best"] <= 1e-9 for r in fits)
            assert rows[0]["speedup"] == 1.0
        done.append({"key": case.key, "title": case.title, "size": case.problem.size,
                     "loss": case.problem.loss, "rows": rows, "targets": targets})
    results = {"command": "pytest", "quick": True, "cases": done,
               "environment": {"summary": {"cpu": "test"}, "versions": {"gradfit": "test"}}}
    json.dumps(results, default=str)
    readme = tmp_path / "README.md"
    readme.write_text(f"# bench\nintro\n{report.START}\nold table\n{report.END}\nafter\n")
    report.update_readme(readme, results)
    text = readme.read_text()
    assert "old table" not in text and "intro" in text and "after" in text
    assert "### Least squares 2k x 5" in text and "sklearn LinearRegression" in text
    assert "Targets" in report.summary_text(results)


def test_special_cases_measure_throughput_and_the_seed_program():
    sgd, seed = [c for c in all_cases("tiny") if c.kind != "fit"]
    sgd.options["batch_sizes"] = [1024, None]
    rows, targets = sgd_case(sgd, repeats=1, log=quiet)
    assert rows[0]["peer"].startswith("sklearn SGDRegressor") and len(rows) == 3
    assert all(r["rows_per_s"] > 0 for r in rows)
    assert {t["target"] for t in targets} >= {"rows/s vs SGDRegressor at batch 1024"}
    rows, targets = seed_case(seed, repeats=1, log=quiet)
    assert rows[0]["objective"] == pytest.approx(rows[1]["objective"], rel=1e-5)
    same = next(t for t in targets if t["target"].startswith("same answer"))
    assert same["met"], same


def test_slow_peers_are_skipped_with_a_reason():
    class Slow(Peer):
        name = "slow"

        def estimate_seconds(self, problem):
            return 1e4

    class Picky(Peer):
        name = "picky"

        def supports(self, problem):
            return "not this loss"
    prob = Problem("t", "squared", 50, 2)
    X, y = make_data(prob)
    case = Case("t", "t", prob, [Picky(), Slow()])
    from bench.peers.base import Skip
    for peer, why in ((Slow(), "budget"), (Picky(), "not this loss")):
        with pytest.raises(Skip, match=why):
            time_peer(peer, X, y, prob, 1, 60.0)
    rows = [{"peer": "gradfit", "seconds": 2.0, "objective": 1.0}, {"peer": "b", "seconds": 4.0, "objective": 1.5}]
    finish_rows(rows)
    assert rows[1]["speedup"] == 2.0 and rows[1]["rel_to_best"] == 0.5
    assert case.targets({}) == []


def test_objectives():
    prob = Problem("q", "quantile", 4, 1, tau=0.8)
    import numpy as np
    X, y = np.zeros((4, 1)), np.array([1.0, -1.0, 2.0, 0.0])
    assert objective(prob, X, y, [0.0], 0.0) == pytest.approx((0.8 + 0.2 + 1.6) / 4)
    r = np.random.default_rng(0).standard_normal(500)
    # sigma minimizing mean(sigma + H(r/sigma) sigma), checked against a grid
    grid = min(float(np.mean(s + np.where(np.abs(r / s) <= 1.35, (r / s) ** 2, 2.7 * np.abs(r / s) - 1.35 ** 2) * s))
               for s in np.linspace(0.2, 3, 2801))
    assert huber_scale_objective(r, 1.35) == pytest.approx(grid, rel=1e-6)
    assert huber_scale_objective(r, 1.35) <= grid + 1e-12


def test_bigfile_bench_runs_every_streaming_route_on_a_tiny_file(tmp_path, capsys):
    from bench import bigfile
    results = bigfile.main(["--rows", "30000", "--repeat", "1", "--skip-sklearn", "--data-dir", str(tmp_path),
                            "--only", "pyarrow-batches,gradfit-read,gradfit,gradfit-numpy"])
    assert set(results) == {"baseline", "pyarrow", "pyarrow-batches", "gradfit-read", "gradfit", "gradfit-numpy"}
    assert all(r["rows"] == 30000 for w, r in results.items() if w != "baseline")
    assert abs(results["gradfit"]["coef0"] - (-2.0)) < 0.05  # y = X linspace(-2, 2) + 3 + noise
    assert results["gradfit-numpy"]["coef0"] == pytest.approx(results["gradfit"]["coef0"], rel=1e-10)
    assert all(0 < r["peak_rss"] < 4 << 30 for r in results.values())
    out = capsys.readouterr().out
    assert "| gradfit |" in out and "x the fastest pyarrow read" in out


def test_r_quantreg_peer_same_optimum_or_one_line_skip():
    """R's quantreg pfn on the same rows: the same LP optimum as gradfit, or skipped with one line."""
    from bench.peers.r_peer import RQuantile
    from bench.problems import Problem, make_data, objective
    import gradfit
    prob = Problem("rq-tiny", "quantile", 400, 3, tau=0.9)
    X, y = make_data(prob)
    peer = RQuantile("pfn")
    why = peer.supports(prob)
    if why is not None:
        assert why.startswith("skipped: ") and "\n" not in why
        return
    coef, b = peer.fit(X, y, prob)
    assert peer.seconds is not None and peer.seconds >= 0
    m = gradfit.fit(X, y, loss="quantile", quantile=0.9)
    ours = objective(prob, X, y, m.coef_, m.intercept_)
    assert abs(objective(prob, X, y, coef, b) - ours) <= 1e-9 * ours
