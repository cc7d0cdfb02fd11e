"""Run gradfit and its peers in one process and print the ratios against issue 3's targets.

    python bench/run.py            # full sizes (about 10 minutes on 2 cores)
    python bench/run.py --quick    # small sizes, under a minute: a smoke run
    python bench/run.py --only l1  # the cases whose key contains "l1"
    python bench/run.py --dropins  # gradfit.sklearn's classes against scikit-learn's (bench/dropins.py)

Each fit is timed best of ``--repeats`` (slow peers once); a peer expected to take longer than
``--budget`` seconds is skipped with its reason printed. Objectives are computed in float64 by
:func:`bench.problems.objective` and compared with the best fit of the case. Results go to
bench/results.json and the table in bench/README.md (``--no-write`` to skip; a quick run writes
bench/results-quick.json only; ``--merge`` keeps the cases of an earlier run that were not rerun).
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    # Before torch loads libgomp: idle OpenMP threads sleep instead of spinning. On this shared
    # 2-core machine spinning threads made torch's parallel kernels 10-20x slower under load
    # (full-batch SGD epoch on 100k x 10: 230 ms spinning, 12 ms passive). Override by setting it.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from bench import report  # noqa: E402
from bench.cases import Case, all_cases  # noqa: E402
from bench.environment import environment  # noqa: E402
from bench.peers.base import Peer, Skip  # noqa: E402
from bench.problems import make_data, objective  # noqa: E402
from bench.special import seed_case, sgd_case  # noqa: E402

HERE = Path(__file__).resolve().parent


def time_peer(peer: Peer, X, y, problem, repeats: int, budget: float):
    """(best seconds, runs, answer) or raises Skip."""
    reason = peer.supports(problem)
    if reason:
        raise Skip(reason)
    est = peer.estimate_seconds(problem)
    if est is not None and est > budget:
        raise Skip(f"skipped: expected about {est:.0f} s (> {budget:.0f} s budget), from issue 3's timings")
    best, answer, runs, total = float("inf"), None, 0, 0.0
    if hasattr(peer, "prepare"):  # imports and first-call set-up, untimed (as R's library() is)
        peer.prepare()
    for k in range(1 if peer.slow else repeats):
        gc.collect()
        t0 = time.perf_counter()
        answer = peer.fit(X, y, problem)
        took = time.perf_counter() - t0
        if getattr(peer, "timed_inside", False):  # an external program timing its own fit call (R)
            took = peer.seconds
        best, total, runs = min(best, took), total + took, runs + 1
        if best > budget / 4 or total > budget / 2:  # enough runs of a slow peer
            break
    return best, runs, answer


def run_fit_case(case: Case, repeats: int, budget: float, log) -> tuple[list[dict], list[dict]]:
    prob = case.problem
    t0 = time.perf_counter()
    X, y = make_data(prob)
    log(f"  data {prob.size} made in {time.perf_counter() - t0:.1f} s")
    rows = []
    for peer in case.peers:
        row = {"peer": peer.name}
        try:
            sec, runs, answer = time_peer(peer, X, y, prob, repeats, budget)
        except Skip as why:
            row.update(seconds=None, note=str(why))
            log(f"  {peer.name}: {why}")
            rows.append(row)
            continue
        except Exception as exc:  # a peer that fails is reported, not fatal
            row.update(seconds=None, note=f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:160]}")
            log(f"  {peer.name}: {row['note']}")
            rows.append(row)
            continue
        row.update(seconds=sec, runs=runs, info=dict(peer.info))
        if answer is not None:
            row["objective"] = objective(prob, X, y, *answer)
        log(f"  {peer.name}: {sec:.4f} s (best of {runs})" + (f", objective {row['objective']:.15g}"
                                                              if "objective" in row else ""))
        rows.append(row)
    del X, y
    finish_rows(rows)
    return rows, case.targets({r["peer"]: r for r in rows})


def finish_rows(rows: list[dict]) -> None:
    """Speed-up of gradfit over each peer (peer time / gradfit time) and objective vs the best."""
    g = rows[0]
    values = [r["objective"] for r in rows if r.get("objective") is not None]
    best = min(values) if values else None
    for r in rows:
        if r.get("seconds") is not None and g.get("seconds"):
            r["speedup"] = r["seconds"] / g["seconds"]
        if r.get("objective") is not None:
            r["rel_to_best"] = (r["objective"] - best) / abs(best) if best else 0.0


def main(argv: list[str] | None = None, log=print) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke run under a minute")
    ap.add_argument("--only", action="append", default=[], help="run the cases whose key contains NAME")
    ap.add_argument("--repeats", type=int, default=None, help="runs per peer, best kept (default 3, quick 2)")
    ap.add_argument("--budget", type=float, default=None,
                    help="skip a peer expected to take longer (s; default 60, quick 5)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    ap.add_argument("--out", default=None, help="results file (default bench/results.json; quick: results-quick.json)")
    ap.add_argument("--readme", default=None, help="README whose table to rewrite (default bench/README.md; "
                                                   "a quick run leaves it alone unless given)")
    ap.add_argument("--no-write", action="store_true", help="print only")
    ap.add_argument("--render", action="store_true",
                    help="re-evaluate the targets of --out and rewrite the README table; run nothing")
    ap.add_argument("--merge", action="store_true",
                    help="keep the other cases already in --out (replace only those run now)")
    ap.add_argument("--dropins", action="store_true",
                    help="run gradfit.sklearn's drop-ins against scikit-learn's classes (bench/dropins.py) only")
    args = ap.parse_args(argv)
    if args.dropins:
        return run_dropins(args, argv, log)
    args.out = args.out or str(HERE / ("results-quick.json" if args.quick else "results.json"))
    if args.readme is None and not args.quick:
        args.readme = str(HERE / "README.md")
    if args.render:
        return render(args, log)
    env = environment(args.threads)
    log("gradfit benchmark: " + " | ".join(f"{k}: {v}" for k, v in env["summary"].items()))
    repeats = args.repeats or (2 if args.quick else 3)
    budget = args.budget or (5.0 if args.quick else 60.0)
    cases = [c for c in all_cases("quick" if args.quick else "full")
             if not args.only or any(o in c.key for o in args.only)]
    results = {"command": ("python bench/run.py " + " ".join(argv if argv is not None else sys.argv[1:])).strip(),
               "quick": args.quick, "environment": env, "cases": []}
    t_all = time.perf_counter()
    for case in cases:
        log(f"\n== {case.title} [{case.key}]")
        t0 = time.perf_counter()
        started = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                   "load_average": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None}
        if case.kind == "sgd":
            rows, targets = sgd_case(case, min(repeats, 2), log)  # each repeat is 2 fits per batch size
        elif case.kind == "seed":
            rows, targets = seed_case(case, case.options["repeats"], log)
        else:
            rows, targets = run_fit_case(case, repeats, budget, log)
        results["cases"].append({"key": case.key, "title": case.title, "size": case.problem.size,
                                 "command": results["command"],
                                 "loss": case.problem.loss, "rows": rows, "targets": targets,
                                 "seconds": time.perf_counter() - t0, "started": started})
        log(report.case_text(results["cases"][-1]))
    results["seconds"] = time.perf_counter() - t_all
    log("\n" + report.summary_text(results))
    if not args.no_write:
        from gradfit.data.atomic import write_text
        if args.merge and Path(args.out).exists():
            old = json.loads(Path(args.out).read_text())
            new_keys = {c["key"] for c in results["cases"]}
            order = [c.key for c in all_cases("quick" if args.quick else "full")]
            merged = [c for c in old.get("cases", []) if c["key"] not in new_keys] + results["cases"]
            merged.sort(key=lambda c: order.index(c["key"]) if c["key"] in order else len(order))
            results["cases"] = merged
            results["command"] = "python bench/run.py (cases merged from several runs; see each case)"
        write_text(args.out, json.dumps(results, indent=1, default=str) + "\n")
        if args.readme:
            report.update_readme(Path(args.readme), results)
        log(f"wrote {args.out}" + (f" and the table in {args.readme}" if args.readme else ""))
    return results


def run_dropins(args, argv, log) -> dict:
    from bench import dropins
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    rows = dropins.run(quick=args.quick, repeats=args.repeats or (2 if args.quick else 3), log=log)
    command = ("python bench/run.py " + " ".join(argv if argv is not None else sys.argv[1:])).strip()
    env = environment(args.threads)
    note = (f"{time.strftime('%Y-%m-%d', time.gmtime())}, " + ", ".join(f"{k}: {v}" for k, v in env["summary"].items())
            + f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "")
    if not args.no_write and not args.quick:
        dropins.write_readme(HERE / "README.md", dropins.table(rows, command, note))
        log("wrote the drop-in table in bench/README.md")
    return {"dropins": rows}


def render(args, log) -> dict:
    from gradfit.data.atomic import write_text
    results = json.loads(Path(args.out).read_text())
    targets = {c.key: c.targets for c in all_cases("quick" if results.get("quick") else "full") if c.kind == "fit"}
    for case in results["cases"]:
        if case["key"] in targets:
            case["targets"] = targets[case["key"]]({r["peer"]: r for r in case["rows"]})
    log(report.summary_text(results))
    write_text(args.out, json.dumps(results, indent=1, default=str) + "\n")
    if args.readme:
        report.update_readme(Path(args.readme), results)
    return results


if __name__ == "__main__":
    main()
