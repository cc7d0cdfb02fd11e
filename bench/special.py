"""Measurements that are not one fit per peer: SGD epoch throughput and the seed's program."""
from __future__ import annotations

import gc
import time
import warnings

import numpy as np

from .cases import Case, target
from .peers.sklearn_peer import SGDRegressor
from .peers.torch_loop import TorchLoop
from .problems import make_data, objective


def _seconds(fn) -> float:
    gc.collect()
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def per_epoch(fit, epochs: int, repeats: int) -> float:
    """Seconds per epoch as (best T(1 + k epochs) - best T(1 epoch)) / k over ``repeats`` runs:
    set-up costs (validation, conversion) cancel, for gradfit and scikit-learn alike. When noise
    swamps the difference (a busy machine), fall back to T(1 + k) / (1 + k), set-up included."""
    one = min(_seconds(lambda: fit(1)) for _ in range(repeats))
    many = min(_seconds(lambda: fit(1 + epochs)) for _ in range(repeats))
    diff = (many - one) / epochs
    return diff if diff > 0.2 * many / (1 + epochs) else many / (1 + epochs)


def sgd_case(case: Case, repeats: int, log) -> tuple[list[dict], list[dict]]:
    import gradfit
    prob, opts = case.problem, case.options
    X, y = make_data(prob)
    n, epochs = prob.n, opts["epochs"]
    rows = []
    sk = SGDRegressor()

    def sk_fit(e):
        sk.epochs = e
        return sk.fit(X, y, prob)
    sec = per_epoch(sk_fit, epochs, repeats)
    coef, b = sk_fit(1 + epochs)
    base = n / sec
    rows.append({"peer": sk.name + " (per sample)", "seconds": sec, "rows_per_s": base,
                 "objective": objective(prob, X, y, coef, b), "note": f"MSE after {1 + epochs} epochs"})
    log(f"  {rows[-1]['peer']}: {sec:.3f} s/epoch, {base / 1e6:.2f} M rows/s")
    for bs in opts["batch_sizes"]:
        label = f"gradfit sgd, batch {bs}" if bs else "gradfit sgd, full batch (default)"
        models = []

        def fit(e, bs=bs):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                models.append(gradfit.fit(X, y, solver="sgd", lr=0.01, batch_size=bs, epochs=e, tol=0.0,
                                          record_path=False, warn=False))
        sec = per_epoch(fit, epochs, repeats)
        m = models[-1]
        rows.append({"peer": label, "seconds": sec, "rows_per_s": n / sec, "ratio_vs_sklearn": n / sec / base,
                     "objective": objective(prob, X, y, m.coef_, m.intercept_),
                     "note": f"MSE after {1 + epochs} epochs" + (", one step per epoch" if not bs else "")})
        log(f"  {label}: {sec:.3f} s/epoch, {n / sec / 1e6:.2f} M rows/s ({n / sec / base:.2f}x sklearn)")
    by = {r["peer"]: r for r in rows}
    sensible = by[f"gradfit sgd, batch {opts['sensible']}"]
    default = by["gradfit sgd, full batch (default)"]
    targets = [target(f"rows/s vs SGDRegressor at batch {opts['sensible']}", sensible["ratio_vs_sklearn"], ">= 1x",
                      sensible["ratio_vs_sklearn"] >= 1.0),
               target("rows/s vs SGDRegressor at the default (full batch)", default["ratio_vs_sklearn"], ">= 1x",
                      default["ratio_vs_sklearn"] >= 1.0, "one step per epoch: not the same work per row")]
    return rows, targets


def seed_case(case: Case, repeats: int, log) -> tuple[list[dict], list[dict]]:
    """gradfit.fit as the tutorial calls it against the plain PyTorch loop, same data and init,
    runs interleaved (A B A B ...) so a busy machine hurts both alike."""
    import torch

    import gradfit
    from gradfit.tutorial import seed_data
    d = seed_data()
    X, y = d.x.numpy().astype(np.float64), d.y.numpy().astype(np.float64)
    prob = case.problem
    epochs = case.options.get("epochs", 500)
    loop = TorchLoop(epochs=epochs, lr=0.001, dtype=torch.float32)
    out: dict[str, list] = {"gradfit": [], "torch": []}
    answers = {}

    def run_gradfit():
        m = gradfit.fit(d.x, d.y, loss="l1", optimizer="sgd", lr=0.001, epochs=epochs, init=[d.w0, d.b0],
                        dtype="float32", warn=False, options={"certify": False})
        answers["gradfit"] = (m.coef_, m.intercept_, m.n_iter_)

    def run_torch():
        answers["torch"] = loop.fit(d.x.numpy(), d.y.numpy(), prob, init=(d.w0, d.b0))
    run_gradfit(), run_torch()  # warm-up: first-call imports and allocations
    for _ in range(repeats):
        out["gradfit"].append(_seconds(run_gradfit))
        out["torch"].append(_seconds(run_torch))
    g, t = min(out["gradfit"]), min(out["torch"])
    cg, bg, iters = answers["gradfit"]
    ct, bt = answers["torch"]
    rows = [{"peer": "gradfit.fit (sgd, float32, as the tutorial)", "seconds": g, "speedup": 1.0,
             "objective": objective(prob, X, y, cg, bg), "note": f"{iters} epochs"},
            {"peer": loop.name, "seconds": t, "speedup": t / g, "objective": objective(prob, X, y, ct, bt),
             "note": "nn.Linear + nn.L1Loss + optim.SGD, zero_grad/forward/loss/backward/step"}]
    log(f"  gradfit {g * 1e3:.1f} ms, torch loop {t * 1e3:.1f} ms: ratio {g / t:.2f}; "
        f"|w - w_torch| = {abs(float(cg[0]) - float(ct[0])):.2e}")
    targets = [target("time / plain PyTorch loop", g / t, "<= 1.2x", g / t <= 1.2),
               target("same answer as the PyTorch loop (|dw| + |db|)",
                      abs(float(cg[0]) - float(ct[0])) + abs(bg - bt), "<= 1e-4 (float32)",
                      abs(float(cg[0]) - float(ct[0])) + abs(bg - bt) <= 1e-4)]
    return rows, targets
