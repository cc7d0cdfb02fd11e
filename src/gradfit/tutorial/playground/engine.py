"""What the playground computes for one control change, as a stream of events (plain dicts).

``setup``: the data shown (at most :data:`SHOWN_POINTS`), the exact optimum with its certificate, the
loss surface over (w, b), the stability limit and the PyTorch program; then ``frames``: (epoch, loss,
w, b) of each run as gradfit's solver produces them (the learner's optimizer and up to two racers);
then ``done`` per run with the words of :func:`gradfit.tutorial.explain.explain`. A new control change
cancels the run in flight (``cancel``). Every input is bounded; :class:`InputError` says which and how.
"""
from __future__ import annotations

import math
import queue
import threading
import time
from dataclasses import replace
from typing import Iterator

import numpy as np
import torch

from gradfit.tutorial.code import LOSSES, OPTIMIZERS, RunSettings, pytorch_program
from gradfit.tutorial.explain import explain, pct
from gradfit.tutorial.i18n import translator
from gradfit.tutorial.run import TutorialData, exact_optimum, lr_limit, run_facts, train, tutorial_data, tutorial_loss
from gradfit.tutorial.playground.uploads import LIMITS, UPLOADS  # noqa: F401  (LIMITS re-exported)

SHOWN_POINTS = 2_000
GRID = 48
SURFACE_ROWS = 5_000
FRAME_EVERY_S = 0.03


class InputError(ValueError):
    """A setting outside what the playground accepts: the message names it and the bound."""


class Cancelled(Exception):
    pass


def _number(obj: dict, key: str, kind, lo, hi, default):
    value = obj.get(key, default)
    try:
        value = kind(value)
    except (TypeError, ValueError):
        raise InputError(f"{key} must be a number, got {value!r}") from None
    if not (lo <= value <= hi) or (kind is float and not math.isfinite(value)):
        raise InputError(f"{key} must be between {lo:g} and {hi:g}, got {value:g}")
    return value


def parse_settings(obj: dict) -> tuple[RunSettings, list[str]]:
    """The run settings and the racing optimizers from the page's JSON, every field bounded."""
    loss = obj.get("loss", "l1")
    optimizer = obj.get("optimizer", "sgd")
    if loss not in LOSSES:
        raise InputError(f"loss must be one of {', '.join(LOSSES)}, got {loss!r}")
    if optimizer not in OPTIMIZERS:
        raise InputError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {optimizer!r}")
    race = [r for r in obj.get("race", []) or [] if r != optimizer]
    if len(race) > LIMITS["race"] or any(r not in OPTIMIZERS for r in race):
        raise InputError(f"race takes at most {LIMITS['race']} other optimizers from {', '.join(OPTIMIZERS)}")
    n = _number(obj, "n", int, 2, LIMITS["n"], 1000)
    batch = obj.get("batch_size")
    batch = None if batch in (None, "", 0, "full") else _number(obj, "batch_size", int, 1, LIMITS["n"], None)
    added = [(float(a), float(b)) for a, b in obj.get("added", [])]
    moved = {int(k): (float(a), float(b)) for k, (a, b) in (obj.get("moved") or {}).items()}
    if len(added) + len(moved) > LIMITS["points"]:
        raise InputError(f"at most {LIMITS['points']} added or moved points")
    if any(not 0 <= k < n for k in moved) or not all(math.isfinite(v) for p in added + list(moved.values()) for v in p):
        raise InputError("a moved point refers to no data point, or a point is not a finite number")
    start = obj.get("start")
    if start is not None:
        start = (float(start[0]), float(start[1]))
        if not all(math.isfinite(v) and abs(v) < 1e6 for v in start):
            raise InputError("the start point must be two finite numbers below 1e6 in size")
    s = RunSettings(n=n, noise=_number(obj, "noise", float, 0.0, 100.0, 1.0),
                    seed=_number(obj, "seed", int, 0, 2**31 - 1, 0), loss=loss, optimizer=optimizer,
                    lr=_number(obj, "lr", float, 1e-8, 100.0, 0.001),
                    epochs=_number(obj, "epochs", int, 1, LIMITS["epochs"], 500), batch_size=batch,
                    standardize=bool(obj.get("standardize", False)), start=start,
                    delta=_number(obj, "delta", float, 1e-6, 1e6, 1.0), tau=_number(obj, "tau", float, 0.01, 0.99, 0.5),
                    added=added, moved=moved)
    return s, race


def surface(d: TutorialData, s: RunSettings, optimum: tuple[float, float], start: tuple[float, float]) -> dict:
    """Mean loss on a GRID x GRID lattice of (w, b) framing the start and the optimum."""
    x, y = d.x[:, 0].double(), d.y.double()
    if len(x) > SURFACE_ROWS:  # a picture: a fixed sample of rows is enough
        pick = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:SURFACE_ROWS]
        x, y = x[pick], y[pick]
    spans = []
    for k, natural in ((0, float(y.std() / (x.std() + 1e-12))), (1, float(y.std()))):
        lo, hi = sorted((optimum[k], start[k]))
        pad = max(0.35 * (hi - lo), 0.5 * natural, 1e-3)
        spans.append(np.linspace(lo - pad, hi + pad, GRID))
    W, B = (torch.from_numpy(v) for v in spans)
    rho = tutorial_loss(s)
    Z = torch.empty(GRID, GRID, dtype=torch.float64)
    for k in range(GRID):  # row k: b = B[k]
        r = y[None, :] - W[:, None] * x[None, :] - B[k]
        Z[k] = rho.value(r).mean(1)
    return {"w": spans[0].tolist(), "b": spans[1].tolist(), "z": Z.tolist()}


def _shown(d: TutorialData) -> dict:
    n = len(d.x)
    idx = np.arange(n) if n <= SHOWN_POINTS else np.sort(
        np.random.default_rng(0).choice(n, SHOWN_POINTS, replace=False))
    return {"i": idx.tolist(), "x": d.x[idx, 0].tolist(), "y": d.y[idx].tolist(), "n": n}


class _Cache:
    """What does not change when only the learning rate, optimizer or epochs move: the data, the exact
    optimum, the surface and the stability limits, kept for the last few data/loss settings (shared
    by every tab; a lock keeps two tabs from computing the same thing twice)."""

    def __init__(self, size: int = 8):
        self.size, self.items, self.lock = size, {}, threading.Lock()

    def get(self, key, make):
        with self.lock:
            if key in self.items:
                self.items[key] = self.items.pop(key)  # most recent last
                return self.items[key]
        value = make()
        with self.lock:
            self.items[key] = value
            while len(self.items) > self.size:
                self.items.pop(next(iter(self.items)))
        return value


CACHE = _Cache()


def _data_key(s: RunSettings) -> tuple:
    return (s.upload, s.n, s.noise, s.seed, tuple(s.added), tuple(sorted(s.moved.items())))


def _data(s: RunSettings) -> TutorialData:
    if s.upload:
        return UPLOADS.data(s)
    return tutorial_data(s.n, s.noise, s.seed, added=s.added, moved=s.moved)


def _loss_key(s: RunSettings) -> tuple:
    return _data_key(s) + (s.loss, s.delta, s.tau)


def events(s: RunSettings, race: list[str], lang: str, cancel: threading.Event | None = None) -> Iterator[dict]:
    """The stream for one control change (see the module docstring)."""
    _ = translator(lang)
    cancel = cancel or threading.Event()
    t0 = time.perf_counter()
    d = CACHE.get(("data",) + _data_key(s), lambda: _data(s))
    start = s.start if s.start is not None else (d.w0, d.b0)
    opt = CACHE.get(("optimum",) + _loss_key(s), lambda: exact_optimum(d, s))
    ws, bs = float(opt.coef_[0]), float(opt.intercept_)
    limits = {name: CACHE.get(("limit", name, s.standardize) + _loss_key(s), lambda: lr_limit(d, replace(s, optimizer=name)))
              for name in [s.optimizer] + race}
    limit = limits[s.optimizer]
    lr_max = limit.lr_max_standardized if s.standardize else limit.lr_max
    grid = CACHE.get(("surface", start) + _loss_key(s), lambda: surface(d, s, (ws, bs), start))
    yield {"type": "setup", "points": _shown(d), "start": list(start),
           "optimum": {"w": ws, "b": bs, "loss": float(opt.final_loss_), "gap": float(opt.gap_),
                       "solver": opt.solver, "converged": bool(opt.converged_)},
           "surface": grid, "lr_max": None if lr_max is None or not math.isfinite(lr_max) else lr_max,
           "code": pytorch_program(s), "ms": 1000 * (time.perf_counter() - t0)}
    for run, name in enumerate([s.optimizer] + race):
        yield from _one_run(run, replace(s, optimizer=name), d, opt, limits[name], cancel, _, t0)


def _one_run(run: int, s: RunSettings, d: TutorialData, opt, limit, cancel, _, t0) -> Iterator[dict]:
    q: queue.Queue = queue.Queue()
    result: dict = {}

    def on_epoch(epoch, value, theta):
        if cancel.is_set():
            raise Cancelled()
        q.put((epoch, float(value), float(theta[0]), float(theta[1])))

    def work():
        try:
            result["trained"] = train(s, d, on_epoch=on_epoch)
        except Cancelled:
            result["cancelled"] = True
        except Exception as exc:  # noqa: BLE001 - reported to the page as one line
            result["error"] = str(exc)
        finally:
            q.put(None)

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    sent = 0.0
    while True:
        item = q.get()
        wait = sent + FRAME_EVERY_S - time.perf_counter()
        if sent and wait > 0:  # at most one event per FRAME_EVERY_S; the very first goes at once
            time.sleep(wait)
        batch, finished = [], False
        while True:  # everything queued so far goes in one event
            if item is None:
                finished = True
                break
            batch.append(item)
            try:
                item = q.get_nowait()
            except queue.Empty:
                break
        if batch:
            sent = time.perf_counter()
            yield {"type": "frames", "run": run, "frames": batch, "ms": 1000 * (sent - t0)}
        if finished:
            break
    worker.join()
    if "cancelled" in result:
        return
    if "error" in result:
        yield {"type": "error", "run": run, "message": result["error"]}
        return
    trained = result["trained"]
    facts = run_facts(s, d, trained, opt, limit)
    why = explain(facts, _)
    m = trained.model
    yield {"type": "done", "run": run, "optimizer": s.optimizer, "kind": why.kind, "why": why.text,
           "w": float(m.coef_[0]), "b": float(m.intercept_), "epochs_run": facts.epochs_run,
           "losses": facts.losses, "excess": pct(facts.excess), "ms": 1000 * (time.perf_counter() - t0)}
