"""The page's settings for one control change, read from its JSON with every field bounded
(:data:`gradfit.tutorial.playground.uploads.LIMITS`); :class:`InputError` says which field and the bound."""
from __future__ import annotations

import math

from gradfit.tutorial.code import LOSSES, OPTIMIZERS, RunSettings
from gradfit.tutorial.playground.uploads import LIMITS


class InputError(ValueError):
    """A setting outside what the playground accepts: the message names it and the bound."""


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
    try:
        added = [(float(a), float(b)) for a, b in obj.get("added") or []]
        moved = {int(k): (float(a), float(b)) for k, (a, b) in (obj.get("moved") or {}).items()}
    except (TypeError, ValueError, AttributeError):
        raise InputError("added and moved points must be [x, y] pairs of numbers") from None
    if len(added) + len(moved) > LIMITS["points"]:
        raise InputError(f"at most {LIMITS['points']} added or moved points")
    if any(not 0 <= k < n for k in moved) or not all(math.isfinite(v) for p in added + list(moved.values()) for v in p):
        raise InputError("a moved point refers to no data point, or a point is not a finite number")
    start = obj.get("start")
    if start is not None:
        try:
            start = (float(start[0]), float(start[1]))
        except (TypeError, ValueError, IndexError, KeyError):
            raise InputError("the start point must be [w, b], two numbers") from None
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
