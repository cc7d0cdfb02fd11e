"""What the playground computes for one control change, as a stream of events (plain dicts).

``setup``: the data shown (at most :data:`SHOWN_POINTS`), the start, the stability limit and the
PyTorch program -- all cheap, so it leaves at once; then ``frames``: (epoch, loss, w, b) of each run
as gradfit's solver produces them (the learner's optimizer, then up to two racers, one after the
other on one thread), at most one event per :data:`FRAME_EVERY_S` except the first, which leaves as
soon as epoch 0 is computed; ``optimum``: the exact optimum with its certificate and the loss surface
over (w, b), computed on a second thread while the runs train; ``done`` per run with the words of
:func:`gradfit.tutorial.explain.explain` (after ``optimum``: the words compare with it). A new control
change cancels the run in flight (``cancel``). Every input is bounded
(:func:`gradfit.tutorial.playground.inputs.parse_settings`).
"""
from __future__ import annotations

import json
import math
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Callable, Iterator

import numpy as np
import torch

from gradfit.tutorial.code import RunSettings, pytorch_program
from gradfit.tutorial.explain import explain, pct
from gradfit.tutorial.i18n import translator
from gradfit.tutorial.playground.inputs import InputError, parse_settings  # noqa: F401  (re-exported)
from gradfit.tutorial.playground.uploads import LIMITS, UPLOADS  # noqa: F401  (LIMITS re-exported)
from gradfit.tutorial.run import TutorialData, exact_optimum, lr_limit, run_facts, train, tutorial_data, tutorial_loss

SHOWN_POINTS = 2_000
GRID = 48
SURFACE_ROWS = 5_000
FRAME_EVERY_S = 1 / 60  # one event per display frame at most: the page draws at most that often


class Cancelled(Exception):
    pass


class Encoded(str):
    """A part of an event already written as JSON: the points and the surface are encoded once per data
    (and loss) and cached, not again for every control change (tens of ms of float formatting)."""


def encode(value) -> Encoded:
    return Encoded(json.dumps(finite(value), allow_nan=False, separators=(",", ":")))


def to_json(event: dict) -> str:
    """The event as one line of JSON, its :class:`Encoded` parts spliced in as they are."""
    raw = {k: v for k, v in event.items() if isinstance(v, Encoded)}
    text = json.dumps(finite({k: v for k, v in event.items() if k not in raw}), allow_nan=False)
    return text[:-1] + "".join(f', "{k}": {v}' for k, v in raw.items()) + "}" if raw else text


def finite(value):
    """JSON has no NaN or infinity: they become null (a diverged loss, an unknown gap)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def same_threads() -> None:
    """Give the calling thread the process's torch thread count. A new thread's OpenMP pool starts at
    the core count whatever ``torch.set_num_threads`` said on the main thread; on a busy 2-core machine
    that made the playground's small kernels 10-40x slower in its worker threads (measured: 500 epochs
    on 1,000 points, 10 s in a fresh thread, 0.17 s after this call)."""
    torch.set_num_threads(torch.get_num_threads())


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
    by every tab; a lock guards the table, not the computing: two tabs asking for the same new key at once
    may both compute it, and the later value is kept)."""

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


POOL = ThreadPoolExecutor(max_workers=16, thread_name_prefix="playground")  # 2 per stream: 8 tabs at once


def _background(q: queue.Queue, tag: str, work: Callable[[], object]) -> None:
    """Run ``work`` on the pool (a started thread: starting one costs ~10 ms on a busy machine); its
    result (or its error, as one line) goes on ``q``."""
    def target():
        same_threads()
        try:
            q.put((tag, None, work()))
        except Cancelled:
            q.put((tag + "-cancelled", None, None))
        except Exception as exc:  # noqa: BLE001 - reported to the page as one line
            q.put((tag + "-error", None, str(exc) or type(exc).__name__))
    POOL.submit(target)


def events(s: RunSettings, race: list[str], lang: str, cancel: threading.Event | None = None) -> Iterator[dict]:
    """The stream for one control change (see the module docstring)."""
    _ = translator(lang)
    cancel = cancel or threading.Event()
    t0 = time.perf_counter()
    ms = lambda: 1000 * (time.perf_counter() - t0)  # noqa: E731
    same_threads()
    d = CACHE.get(("data",) + _data_key(s), lambda: _data(s))
    start = s.start if s.start is not None else (d.w0, d.b0)
    names = [s.optimizer] + race
    q: queue.Queue = queue.Queue()

    def runs():  # the learner's optimizer, then the racers: frames go on the queue as they are computed
        for run, name in enumerate(names):
            def on_epoch(epoch, value, theta, run=run):
                if cancel.is_set():
                    raise Cancelled()
                w, b = theta.tolist()  # (w, b): one copy out of the tensor
                q.put(("frame", run, (epoch, float(value), w, b)))
            try:
                q.put(("trained", run, train(replace(s, optimizer=name), d, on_epoch=on_epoch)))
            except Cancelled:
                raise
            except Exception as exc:  # noqa: BLE001 - this run's one line on the page; the racers go on
                q.put(("error", run, str(exc) or type(exc).__name__))

    def optimum():
        opt = CACHE.get(("optimum",) + _loss_key(s), lambda: exact_optimum(d, s))
        w, b = float(opt.coef_[0]), float(opt.intercept_)
        grid = CACHE.get(("surface", start) + _loss_key(s), lambda: encode(surface(d, s, (w, b), start)))
        return opt, grid

    _background(q, "runs", runs)
    _background(q, "optimum", optimum)
    limits = {name: CACHE.get(("limit", name, s.standardize) + _loss_key(s),
                              lambda name=name: lr_limit(d, replace(s, optimizer=name))) for name in names}
    lr_max = limits[s.optimizer].lr_max_standardized if s.standardize else limits[s.optimizer].lr_max
    note = ""
    if s.optimizer == "gd" and s.batch_size and s.batch_size < len(d.x):  # said, not silently ignored
        note = _("GD steps on the full batch: the batch size {batch} applies to SGD, momentum, Nesterov and "
                 "Adam").format(batch=s.batch_size)
    points = CACHE.get(("shown",) + _data_key(s), lambda: encode(_shown(d)))
    yield {"type": "setup", "points": points, "start": list(start), "code": pytorch_program(s),
           "lr_max": None if lr_max is None or not math.isfinite(lr_max) else lr_max, "note": note, "ms": ms()}

    frames: dict[int, list] = {}
    sent_at, opt, waiting = -math.inf, None, []  # waiting: runs trained before the optimum was known
    running = 2  # the two background threads
    try:
        while running or frames:
            wait = max(0.0, sent_at + FRAME_EVERY_S - time.perf_counter()) if frames else None
            try:
                items = [q.get(timeout=wait)] if running else []
            except queue.Empty:
                items = []
            while True:  # everything queued so far is handled together
                try:
                    items.append(q.get_nowait())
                except queue.Empty:
                    break
            for kind, run, payload in items:
                if kind == "frame":
                    frames.setdefault(run, []).append(payload)
                    continue
                if frames:  # a run's frames go before what follows them
                    yield from _flush(frames, ms)
                    sent_at = time.perf_counter()
                if kind == "trained":
                    waiting.append((run, payload))
                elif kind == "optimum":
                    opt, grid = payload
                    yield {"type": "optimum", "optimum": _optimum_event(opt), "surface": grid, "ms": ms()}
                elif kind == "error" or kind.endswith("-error"):
                    yield {"type": "error", "run": run or 0, "message": payload}
                if kind in ("runs", "optimum") or kind.startswith(("runs-", "optimum-")):
                    running -= 1
                if opt is not None:
                    for r, trained in waiting:
                        yield _done(r, replace(s, optimizer=names[r]), d, trained, opt, limits[names[r]], _, ms)
                    waiting = []
            if frames and (sent_at == -math.inf or time.perf_counter() >= sent_at + FRAME_EVERY_S or not running):
                yield from _flush(frames, ms)  # the very first frame goes at once
                sent_at = time.perf_counter()
    finally:  # the tab went away or sent a newer change: stop the runs behind this stream
        cancel.set()


def _flush(frames: dict[int, list], ms) -> Iterator[dict]:
    for run in sorted(frames):
        yield {"type": "frames", "run": run, "frames": frames[run], "ms": ms()}
    frames.clear()


def _optimum_event(opt) -> dict:
    return {"w": float(opt.coef_[0]), "b": float(opt.intercept_), "loss": float(opt.final_loss_),
            "gap": float(opt.gap_), "solver": opt.solver, "converged": bool(opt.converged_)}


def _done(run: int, s: RunSettings, d: TutorialData, trained, opt, limit, _, ms) -> dict:
    facts = run_facts(s, d, trained, opt, limit)
    why = explain(facts, _)
    m = trained.model
    return {"type": "done", "run": run, "optimizer": s.optimizer, "kind": why.kind, "why": why.text,
            "w": float(m.coef_[0]), "b": float(m.intercept_), "epochs_run": facts.epochs_run,
            "final_loss": facts.losses[-1] if facts.losses else None, "excess": pct(facts.excess), "ms": ms()}
