"""The benchmark cases of issue 3 and their targets, at full size or ``quick`` (smoke) size.

A case is a problem, the peers that run on it (gradfit first) and its targets, each a function of
the measured rows. Special cases (SGD throughput, the seed program) measure differently and are
in :mod:`bench.special`.
"""
from __future__ import annotations

import functools

from dataclasses import dataclass, field
from typing import Callable

from .peers import numpy_peer, r_peer, sklearn_peer, statsmodels_peer
from .peers.base import Peer
from .peers.gradfit_peer import Gradfit
from .problems import Problem, human


@dataclass
class Case:
    key: str
    title: str
    problem: Problem
    peers: list[Peer]
    targets: Callable[[dict], list[dict]] = lambda rows: []
    kind: str = "fit"            # fit | sgd | seed
    options: dict = field(default_factory=dict)


def target(what: str, value: float | None, goal: str, met: bool | None, note: str = "") -> dict:
    return {"target": what, "value": value, "goal": goal, "met": met, "note": note}


def _speedup(rows: dict, peer: str, goal: float) -> dict:
    r = rows.get(peer)
    if r is None or r.get("speedup") is None:
        return target(f"faster than {peer}", None, f">= {goal:g}x", None,
                      (r or {}).get("note", "peer not run"))
    return target(f"faster than {peer}", r["speedup"], f">= {goal:g}x", r["speedup"] >= goal)


def _gradfit(rows: dict) -> dict:
    return next(r for r in rows.values() if r["peer"].startswith("gradfit"))


def _objective_target(g: dict, goal: float) -> dict:
    v = g.get("rel_to_best")
    return target("objective vs the best fit (relative)", v, f"<= {goal:g}", None if v is None else v <= goal,
                  "" if v is not None else g.get("note", "gradfit did not run"))


def squared_targets(rows: dict) -> list[dict]:
    g = _gradfit(rows)
    # the faster of numpy's and torch's X'X in this run: the stricter floor
    grams = [r["seconds"] for name, r in rows.items() if name.startswith("one X'X") and r.get("seconds")]
    within = g["seconds"] / min(grams) if grams and g.get("seconds") else None
    return [_speedup(rows, sklearn_peer.LinearRegression.name, 15.0),
            target("time / one X'X product (the faster of numpy, torch)", within, "<= 2x",
                   None if within is None else within <= 2.0),
            _objective_target(g, 1e-12)]


def l1_targets(rows: dict, n_rows: int = 100_000) -> list[dict]:
    g = _gradfit(rows)
    gap = g.get("info", {}).get("gap")
    # issue 3 sets the QuantReg goal at 100k and 1M rows; below, the ratio is shown without a goal
    vs_quantreg = _speedup(rows, statsmodels_peer.QuantReg.name, 5.0)
    if n_rows < 100_000 and vs_quantreg["value"] is not None:
        vs_quantreg = target(vs_quantreg["target"] + " (no goal below 100k rows)", vs_quantreg["value"],
                             "-", True)
    out = [vs_quantreg,
           _speedup(rows, sklearn_peer.QuantileRegressor.name, 100.0),
           target("certified relative gap (gap_)", gap, "<= 1e-8", None if gap is None else gap <= 1e-8),
           _objective_target(g, 1e-8)]
    return out


def rq_targets(rows: dict) -> list[dict]:
    """Issue 15: >= 3x R quantreg's pfn (Portnoy-Koenker), the same optimum to 1e-12."""
    g = _gradfit(rows)
    gap = g.get("info", {}).get("gap")
    return [_speedup(rows, "R quantreg pfn", 3.0), _speedup(rows, "R quantreg fn", 3.0),
            target("certified relative gap (gap_)", gap, "<= 1e-8", None if gap is None else gap <= 1e-8),
            _objective_target(g, 1e-12)]


def huber_targets(rows: dict) -> list[dict]:
    g = _gradfit(rows)
    return [_speedup(rows, sklearn_peer.HuberRegressor.name, 3.0),
            _objective_target(g, 1e-8)]


SIZES = {  # squared (n, p) pairs, L1 row counts, Huber rows, SGD rows, quantile rows against R
    "full": {"squared": [(10_000_000, 10), (1_000_000, 100)], "l1": [10_000, 100_000, 1_000_000],
             "rq": [100_000, 1_000_000, 10_000_000], "rq_taus": (0.1, 0.5, 0.9),
             "huber": 1_000_000, "sgd": 1_000_000, "seed_repeats": 9, "sgd_epochs": 2, "seed_epochs": 500},
    "quick": {"squared": [(200_000, 10), (50_000, 50)], "l1": [2_000, 5_000], "huber": 50_000, "rq": [20_000], "rq_taus": (0.5,),
              "sgd": 100_000, "seed_repeats": 3, "sgd_epochs": 2, "seed_epochs": 500},
    "tiny": {"squared": [(2_000, 5)], "l1": [300], "huber": 1_000, "rq": [], "sgd": 3_000, "seed_repeats": 1,
             "sgd_epochs": 1, "seed_epochs": 50},
}


def fit_cases(size: str) -> list[Case]:
    S = SIZES[size]
    cases = []
    for n, p in S["squared"]:
        prob = Problem(f"squared-{n}-{p}", "squared", n, p)
        cases.append(Case(prob.key, f"Least squares {prob.size}", prob,
                          [Gradfit("auto"), sklearn_peer.LinearRegression(), statsmodels_peer.OLS(),
                           numpy_peer.Lstsq(), numpy_peer.GramProduct(), numpy_peer.TorchGram()],
                          squared_targets))
    for n in S["l1"]:
        prob = Problem(f"l1-{n}-10", "absolute", n, 10)
        cases.append(Case(prob.key, f"L1 (least absolute deviations) {prob.size}", prob,
                          [Gradfit("auto"), statsmodels_peer.QuantReg(), sklearn_peer.QuantileRegressor()],
                          functools.partial(l1_targets, n_rows=n)))
    for n in S["rq"]:
        for tau in S["rq_taus"]:
            prob = Problem(f"rq-{human(n)}-10-q{tau:g}", "quantile", n, 10, tau=tau)
            cases.append(Case(prob.key, f"Quantile {tau:g} against R {prob.size}", prob,
                              [Gradfit("auto")] + [r_peer.RQuantile(m) for m in ("pfn", "fn", "br", "conquer")],
                              rq_targets))
    prob = Problem(f"huber-{S['huber']}-10", "huber_scale", S["huber"], 10)
    cases.append(Case(prob.key, f"Huber with a jointly estimated scale {prob.size}", prob,
                      [Gradfit("newton", label="gradfit (newton, joint scale)"),
                       sklearn_peer.HuberRegressor()], huber_targets))
    return cases


def special_cases(size: str) -> list[Case]:
    S = SIZES[size]
    sgd = Problem(f"sgd-{S['sgd']}-10", "squared", S["sgd"], 10, standardized=True)
    seed = Problem("seed-1000-1", "absolute", 1000, 1)
    return [Case(sgd.key, f"SGD epoch throughput, squared loss {sgd.size}", sgd, [], kind="sgd",
                 options={"batch_sizes": [64, 256, 1024, None], "sensible": 1024, "epochs": S["sgd_epochs"]}),
            Case(seed.key, "The seed's program: 1000 points, L1, SGD lr=0.001, 500 full-batch epochs", seed,
                 [], kind="seed", options={"repeats": S["seed_repeats"], "epochs": S["seed_epochs"]})]


def all_cases(size: str = "full") -> list[Case]:
    return fit_cases(size) + special_cases(size)
