"""Typed settings: the general knobs every solver reads, and each solver's own options.

:class:`Settings` holds what :func:`gradfit.fit` passes to every solver (step size, epochs, batch
size, tolerance, seed, ...) and checks each value when it is built: a bad one raises ``ValueError``
whose message starts with the Python name of the setting (``"lr must be ..., got ..."``).

:class:`Options` is the base of the frozen dataclasses a solver declares as its ``Options``
attribute. ``SolverClass.Options.parse({"polish": False}, "ipm")`` builds one from a user's dict and
refuses a name the solver does not know, listing the ones it does, so a misspelled option never
goes silently unused.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from torch import Tensor

INT64_MAX = 2 ** 63 - 1


def _integer(name: str, value: Any, low: int, high: int = INT64_MAX) -> int:
    """``value`` as an int in ``[low, high]`` (an integral float is accepted), else ValueError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if not isinstance(value, numbers.Integral):
        if not math.isfinite(value) or value != int(value):
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if int(value) < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if int(value) > high:
        raise ValueError(f"{name} must be an integer <= {high}, got {value!r}")
    return int(value)


def _real(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {value!r}")
    return float(value)


@dataclass
class Settings:
    """Knobs shared by solvers; each solver reads the ones it uses.

    Parameters
    ----------
    lr : float or None
        Step size (> 0, finite); None lets the solver choose.
    epochs : int
        Passes over the data / iterations (>= 0).
    batch_size : int or None
        Rows per step of a stochastic method (>= 1); None: all rows.
    tol : float
        Stopping tolerance (finite, >= 0).
    seed : int
        Random seed, in [0, 2**63 - 1].
    momentum : float
        Momentum of the momentum/Nesterov methods, in [0, 1).
    log_every : int
        Call ``on_log`` every this many epochs (0: never).
    on_log, on_epoch : callables or None
        ``on_log(epoch, loss)`` and ``on_epoch(epoch, loss, theta)``.
    record_path : bool
        Keep theta per epoch in the history.
    divergence_patience : int
        Epochs of growth in a row that count as divergence (>= 1).
    options : Options
        The chosen solver's own options (see :meth:`Options.parse`).
    """

    lr: float | None = None
    epochs: int = 1000
    batch_size: int | None = None
    tol: float = 1e-8
    seed: int = 0
    momentum: float = 0.9
    log_every: int = 0
    on_log: Callable[[int, float], None] | None = None
    on_epoch: Callable[[int, float, Tensor], None] | None = None
    record_path: bool = True
    divergence_patience: int = 20
    options: "Options" = dataclasses.field(default_factory=lambda: Options())

    def __post_init__(self) -> None:
        if self.lr is not None:
            lr = _real("lr", self.lr)
            if not (math.isfinite(lr) and lr > 0):
                raise ValueError(f"lr must be a positive finite number, got {self.lr!r}")
            self.lr = lr
        self.epochs = _integer("epochs", self.epochs, 0)
        if self.batch_size is not None:
            self.batch_size = _integer("batch_size", self.batch_size, 1)
        tol = _real("tol", self.tol)
        if not (math.isfinite(tol) and tol >= 0):
            raise ValueError(f"tol must be a finite number >= 0, got {self.tol!r}")
        self.tol = tol
        self.seed = _integer("seed", self.seed, 0)
        momentum = _real("momentum", self.momentum)
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum!r}")
        self.momentum = momentum
        self.log_every = _integer("log_every", self.log_every, 0)
        self.divergence_patience = _integer("divergence_patience", self.divergence_patience, 1)
        for name in ("on_log", "on_epoch"):
            if getattr(self, name) is not None and not callable(getattr(self, name)):
                raise ValueError(f"{name} must be callable or None, got {getattr(self, name)!r}")
        if not isinstance(self.options, Options):
            raise ValueError(f"options must be a solver's Options (see Options.parse), got {self.options!r}")


@dataclass(frozen=True)
class Options:
    """Options every solver accepts; a solver's ``Options`` subclasses this with its own fields.

    Attributes
    ----------
    certify : bool
        After an iterative solver stops without a gap of its own, compare with an exact solver to
        bound the gap (``gap_``); False skips that extra solve.
    """

    certify: bool = True

    @classmethod
    def known(cls) -> list[str]:
        return sorted(f.name for f in dataclasses.fields(cls))

    @classmethod
    def parse(cls, given: "Mapping[str, Any] | Options | None", solver: str) -> "Options":
        """The options of ``solver`` from a dict of name -> value (None: the defaults).

        Raises
        ------
        ValueError
            An unknown name (the message lists the known ones), or a value of the wrong type.
        """
        if given is None:
            return cls()
        if isinstance(given, Options):
            if isinstance(given, cls):
                return given
            given = dataclasses.asdict(given)
        if not isinstance(given, Mapping):
            raise ValueError(f"options must be a dict of option name -> value, got {given!r}")
        unknown = [str(k) for k in given if k not in cls.known()]
        if unknown:
            raise ValueError(f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
                             f"for solver '{solver}'; its options are {', '.join(cls.known())}")
        types = {f.name: f.type for f in dataclasses.fields(cls)}
        return cls(**{k: _option_value(f"options[{k!r}]", v, str(types[k])) for k, v in given.items()})


def _option_value(name: str, value: Any, kind: str) -> Any:
    """Check one option against its declared type (``bool``, ``int``, ``float``, ``str``, ``| None``)."""
    if value is None and kind.endswith("| None"):
        return None
    base = kind.replace("| None", "").strip()
    if base == "bool":
        if not isinstance(value, (bool, numbers.Integral)) or value not in (0, 1):
            raise ValueError(f"{name} must be True or False, got {value!r}")
        return bool(value)
    if base == "int":
        return _integer(name, value, 0)
    if base == "float":
        v = _real(name, value)
        if not math.isfinite(v):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
        return v
    if base == "str":
        if not isinstance(value, str):
            raise ValueError(f"{name} must be a string, got {value!r}")
        return value
    return value


@dataclass(frozen=True)
class ThreadedOptions(Options):
    """Options of a solver whose passes are long chains of small ops (see ``base.single_threaded``).

    Attributes
    ----------
    threads : int
        torch intra-op threads while solving (default 1: thread hand-offs cost more than they save).
    """

    threads: int = 1
