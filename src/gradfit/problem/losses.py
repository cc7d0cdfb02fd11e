"""Loss settings: squared (L2), absolute (L1), Huber and quantile.

A loss measures one residual ``r = y - (X @ w + b)``; the fitted objective is the weighted mean
``sum_i s_i * rho(r_i) / sum_i s_i`` (plus a penalty). Each class gives the value, first and
second derivative of ``rho`` with respect to the residual; the derivative with respect to the
prediction is the negative of ``derivative``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, ClassVar

from torch import Tensor

from gradfit.problem import derivatives as F


@dataclass(frozen=True)
class Loss:
    """Base class. ``smooth`` says whether rho has a Lipschitz derivative.

    A subclass names its ``rho``, ``rho'`` and ``rho''`` (pure functions of :mod:`gradfit.problem.derivatives`
    taking ``r`` and then the fields in ``params``); ``spec_fields`` are what its JSON description records.
    """

    functions: ClassVar[tuple[Callable, Callable, Callable]] = ()
    params: ClassVar[tuple[str, ...]] = ()
    spec_fields: ClassVar[tuple[str, ...]] = ()
    curvature_bound: ClassVar[float | None] = None  # sup rho'' (None: rho not smooth); scales GD's Lipschitz step
    name: str = field(init=False, default="")
    smooth: bool = field(init=False, default=True)

    def _args(self) -> tuple:
        return tuple(getattr(self, k) for k in self.params)

    def value(self, r: Tensor) -> Tensor:
        return self.functions[0](r, *self._args())

    def derivative(self, r: Tensor) -> Tensor:
        return self.functions[1](r, *self._args())

    def curvature(self, r: Tensor) -> Tensor:
        return self.functions[2](r, *self._args())


    def spec(self) -> dict:
        """JSON-able description, inverse of :func:`loss_from_spec`."""
        return {"name": self.name, **{k: getattr(self, k) for k in self.spec_fields}}


@dataclass(frozen=True)
class Squared(Loss):
    """rho(r) = r**2: mean squared error."""

    functions, curvature_bound = (F.squared, F.squared_d1, F.squared_d2), 2.0
    name: str = field(init=False, default="squared")


@dataclass(frozen=True)
class Absolute(Loss):
    """rho(r) = |r|: mean absolute error (L1), the seed tutorial's loss."""

    functions = (F.absolute, F.absolute_d1, F.absolute_d2)
    name: str = field(init=False, default="absolute")
    smooth: bool = field(init=False, default=False)


HUBER_SCALES = ("joint", "mad", "absolute")


@dataclass(frozen=True)
class Huber(Loss):
    """rho(r) = r**2/2 if |r| <= d else d*(|r| - d/2), with the threshold d set by ``scale``.

    ``scale="joint"`` (what the name ``"huber"`` means in :func:`get_loss`, ``gradfit.fit``, the
    estimators and the CLI): ``d = delta * sigma`` with ``sigma`` fitted jointly with the
    coefficients, scikit-learn's ``HuberRegressor`` (``delta`` is its ``epsilon``; 1.35 means what it
    means there). ``scale="mad"``: ``sigma = median|r| / 0.6745`` at the fit, statsmodels'
    ``RLM(M=HuberT(t=delta))`` (its default t is 1.345). ``scale="absolute"``: ``d = delta`` in the
    units of ``y`` (what ``value``/``derivative`` compute, the only mode the gradient solvers take,
    and the default of this class when built directly). Model files record the mode; files written before it existed load as ``absolute``.
    """

    functions, curvature_bound = (F.huber, F.huber_d1, F.huber_d2), 1.0
    params, spec_fields = ("delta",), ("delta", "scale")
    delta: float = 1.35
    scale: str = "absolute"
    name: str = field(init=False, default="huber")

    def __post_init__(self):
        if not (self.delta > 0 and self.delta < float("inf")):
            raise ValueError(f"delta must be a finite number > 0 (the huber threshold), got {self.delta}")
        if self.scale not in HUBER_SCALES:
            raise ValueError(f"unknown huber scale {self.scale!r}; choose joint (scikit-learn), mad "
                             "(statsmodels RLM) or absolute (delta in units of y)")
        if self.scale == "joint" and not self.delta >= 1:
            raise ValueError(f"huber delta must be >= 1 with the joint scale (scikit-learn's epsilon), got "
                             f"{self.delta}; use scale='absolute' for a threshold in units of y")


@dataclass(frozen=True)
class Quantile(Loss):
    """rho(r) = r*(tau - 1{r<0}): pinball loss; tau=0.5 gives half the absolute loss."""

    functions = (F.pinball, F.pinball_d1, F.pinball_d2)
    params = spec_fields = ("tau",)
    tau: float = 0.5
    name: str = field(init=False, default="quantile")
    smooth: bool = field(init=False, default=False)

    def __post_init__(self):
        if not 0 < self.tau < 1:
            raise ValueError(f"quantile must be in (0, 1), got {self.tau}")


ALIASES = {
    "l2": "squared", "squared": "squared", "mse": "squared", "ols": "squared",
    "l1": "absolute", "absolute": "absolute", "mae": "absolute", "lad": "absolute",
    "huber": "huber",
    "quantile": "quantile", "pinball": "quantile",
}


def get_loss(name: str | Loss = "squared", *, delta: float | None = None,
             tau: float | None = None, scale: str | None = None) -> Loss:
    """Build a loss from a name (``l2``, ``l1``, ``huber``, ``quantile`` or their aliases).

    ``scale`` is the Huber threshold's mode (:class:`Huber`; default ``"joint"``)."""
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
        return Huber(1.35 if delta is None else float(delta), "joint" if scale is None else str(scale).lower())
    return Quantile(0.5 if tau is None else float(tau))


def loss_from_spec(spec: dict) -> Loss:
    # a Huber file from before the scale modes meant the threshold in units of y
    return get_loss(spec["name"], delta=spec.get("delta"), tau=spec.get("tau"), scale=spec.get("scale", "absolute"))
