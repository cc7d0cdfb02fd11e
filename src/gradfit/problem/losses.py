"""Loss settings: squared (L2), absolute (L1), Huber and quantile.

A loss measures one residual ``r = y - (X @ w + b)``; the fitted objective is the weighted mean
``sum_i s_i * rho(r_i) / sum_i s_i`` (plus a penalty). Each class gives the value, first and
second derivative of ``rho`` with respect to the residual; the derivative with respect to the
prediction is the negative of ``derivative``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor

from gradfit.problem import derivatives as F


@dataclass(frozen=True)
class Loss:
    """Base class. ``smooth`` says whether rho has a Lipschitz derivative."""

    name: str = field(init=False, default="")
    smooth: bool = field(init=False, default=True)

    def value(self, r: Tensor) -> Tensor:
        raise NotImplementedError

    def derivative(self, r: Tensor) -> Tensor:
        raise NotImplementedError

    def curvature(self, r: Tensor) -> Tensor:
        raise NotImplementedError

    @property
    def curvature_bound(self) -> float | None:
        """sup rho'' (None when rho is not smooth): scales the Lipschitz step of GD."""
        return None

    def spec(self) -> dict:
        """JSON-able description, inverse of :func:`get_loss`."""
        return {"name": self.name}


@dataclass(frozen=True)
class Squared(Loss):
    """rho(r) = r**2: mean squared error."""

    name: str = field(init=False, default="squared")

    def value(self, r):
        return F.squared(r)

    def derivative(self, r):
        return F.squared_d1(r)

    def curvature(self, r):
        return F.squared_d2(r)

    @property
    def curvature_bound(self):
        return 2.0


@dataclass(frozen=True)
class Absolute(Loss):
    """rho(r) = |r|: mean absolute error (L1), the seed tutorial's loss."""

    name: str = field(init=False, default="absolute")
    smooth: bool = field(init=False, default=False)

    def value(self, r):
        return F.absolute(r)

    def derivative(self, r):
        return F.absolute_d1(r)

    def curvature(self, r):
        return F.absolute_d2(r)


@dataclass(frozen=True)
class Huber(Loss):
    """rho(r) = r**2/2 if |r| <= delta else delta*(|r| - delta/2)."""

    delta: float = 1.35
    name: str = field(init=False, default="huber")

    def __post_init__(self):
        if not self.delta > 0:
            raise ValueError(f"huber delta must be > 0, got {self.delta}")

    def value(self, r):
        return F.huber(r, self.delta)

    def derivative(self, r):
        return F.huber_d1(r, self.delta)

    def curvature(self, r):
        return F.huber_d2(r, self.delta)

    @property
    def curvature_bound(self):
        return 1.0

    def spec(self):
        return {"name": self.name, "delta": self.delta}


@dataclass(frozen=True)
class Quantile(Loss):
    """rho(r) = r*(tau - 1{r<0}): pinball loss; tau=0.5 gives half the absolute loss."""

    tau: float = 0.5
    name: str = field(init=False, default="quantile")
    smooth: bool = field(init=False, default=False)

    def __post_init__(self):
        if not 0 < self.tau < 1:
            raise ValueError(f"quantile must be in (0, 1), got {self.tau}")

    def value(self, r):
        return F.pinball(r, self.tau)

    def derivative(self, r):
        return F.pinball_d1(r, self.tau)

    def curvature(self, r):
        return F.pinball_d2(r, self.tau)

    def spec(self):
        return {"name": self.name, "tau": self.tau}


ALIASES = {
    "l2": "squared", "squared": "squared", "mse": "squared", "ols": "squared",
    "l1": "absolute", "absolute": "absolute", "mae": "absolute", "lad": "absolute",
    "huber": "huber",
    "quantile": "quantile", "pinball": "quantile",
}


def get_loss(name: str | Loss = "squared", *, delta: float | None = None,
             tau: float | None = None) -> Loss:
    """Build a loss from a name (``l2``, ``l1``, ``huber``, ``quantile`` or their aliases)."""
    if isinstance(name, Loss):
        return name
    key = ALIASES.get(str(name).lower())
    if key is None:
        raise ValueError(f"unknown loss {name!r}; choose one of l2, l1, huber, quantile")
    if key == "squared":
        return Squared()
    if key == "absolute":
        return Absolute()
    if key == "huber":
        return Huber(1.35 if delta is None else float(delta))
    return Quantile(0.5 if tau is None else float(tau))


def loss_from_spec(spec: dict) -> Loss:
    return get_loss(spec["name"], delta=spec.get("delta"), tau=spec.get("tau"))
