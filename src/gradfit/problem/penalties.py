"""Penalties on the coefficients ``w`` (never on the intercept); :data:`PENALTY_RULE` says how
``penalty``, ``alpha`` and ``l1_ratio`` map to one (:func:`get_penalty` applies it everywhere).

``P(w) = alpha * (l1_ratio * ||w||_1 + (1 - l1_ratio) / 2 * ||w||_2**2)`` covers all of them:
none (alpha = 0), ridge/L2 (l1_ratio = 0), lasso/L1 (l1_ratio = 1) and the elastic net between.
Each gives its value, the gradient of its smooth part, the proximal operator of its non-smooth
part, and the distance from ``-g`` to the subdifferential (zero exactly at an optimum).
``positive=True`` adds the constraint ``w >= 0`` (scikit-learn's ``positive``): the indicator of the
non-negative orthant joins the non-smooth part, so only solvers that project (coordinate descent)
take it (:meth:`gradfit.solvers.base.Solver.check`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from gradfit.problem.derivatives import soft_threshold


@dataclass(frozen=True)
class Penalty:
    alpha: float = 0.0
    l1_ratio: float = 0.0
    positive: bool = False

    def __post_init__(self):
        if not (self.alpha >= 0 and self.alpha < float("inf")):  # NaN fails both
            raise ValueError(f"alpha must be a finite number >= 0 (the penalty strength), got {self.alpha}")
        if not 0.0 <= self.l1_ratio <= 1.0:
            raise ValueError(f"l1_ratio must be in [0, 1], got {self.l1_ratio}")

    @property
    def l1(self) -> float:
        return self.alpha * self.l1_ratio

    @property
    def l2(self) -> float:
        return self.alpha * (1.0 - self.l1_ratio)

    @property
    def name(self) -> str:
        if self.alpha == 0:
            return "none"
        if self.l1_ratio == 0:
            return "l2"
        if self.l1_ratio == 1:
            return "l1"
        return "elasticnet"

    @property
    def smooth(self) -> bool:
        return self.l1 == 0 and not self.positive

    def value(self, w: Tensor) -> Tensor:
        return self.l1 * w.abs().sum() + 0.5 * self.l2 * (w * w).sum()

    def gradient(self, w: Tensor) -> Tensor:
        """Gradient of the smooth (L2) part."""
        return self.l2 * w

    def prox(self, w: Tensor, step: float) -> Tensor:
        """Proximal operator of ``step * l1 * ||.||_1`` (and of ``w >= 0`` when ``positive``); the L2
        part goes through the gradient."""
        out = soft_threshold(w, step * self.l1) if self.l1 > 0 else w
        return out.clamp_min(0.0) if self.positive else out

    def subdiff_distance(self, w: Tensor, g: Tensor) -> Tensor:
        """Per-coordinate distance of ``-g`` (the smooth gradient incl. L2) to l1*d||w||_1."""
        if self.positive:  # at w_j = 0 the subdifferential is (-inf, l1]: only g_j < -l1 is a violation
            return torch.where(w > 0, (g + self.l1).abs(), (-g - self.l1).clamp_min(0.0))
        if self.l1 == 0:
            return g.abs()
        on = w != 0
        away = (g + self.l1 * torch.sign(w)).abs()
        at_zero = (g.abs() - self.l1).clamp_min(0.0)
        return torch.where(on, away, at_zero)

    def spec(self) -> dict:
        spec = {"name": self.name, "alpha": self.alpha, "l1_ratio": self.l1_ratio}
        if self.positive:
            spec["positive"] = True
        return spec


PENALTY_RULE = """\
One rule for penalties, the same in ``gradfit.fit``, the estimators and ``gradfit fit``
(scikit-learn's elastic-net parametrization):

    P(w) = alpha * (l1_ratio * ||w||_1 + (1 - l1_ratio) / 2 * ||w||_2**2)

``alpha`` (default 0: no penalty) is the strength and ``l1_ratio`` the mix. ``penalty`` only
names a mix: ``"l2"``/``"ridge"`` is l1_ratio 0, ``"l1"``/``"lasso"`` is 1, ``"elasticnet"`` is
``l1_ratio`` (default 0.5), ``"none"`` is alpha 0. Without ``penalty``, ``alpha`` and ``l1_ratio``
are used as given, and ``l1_ratio`` defaults to 0 (``alpha`` alone is ridge). A name that
contradicts the numbers (``penalty="none"`` with ``alpha > 0``, ``"l2"`` with ``l1_ratio=1``...)
is an error, never silently overridden."""

_MIX = {"l2": 0.0, "ridge": 0.0, "l1": 1.0, "lasso": 1.0}


def get_penalty(name: str | Penalty | None = None, alpha: float = 0.0,
                l1_ratio: float | None = None) -> Penalty:
    """The penalty that ``penalty=name, alpha, l1_ratio`` mean under :data:`PENALTY_RULE`."""
    if isinstance(name, Penalty):
        return name
    alpha = float(alpha)
    ratio = None if l1_ratio is None else float(l1_ratio)
    key = None if name is None else str(name).lower()
    if key is None:
        return Penalty(alpha, 0.0 if ratio is None else ratio)
    if key == "none":
        if alpha:
            raise ValueError(f"penalty 'none' with alpha={alpha:g} contradicts itself: drop the penalty name "
                             "(alpha alone is ridge) or name the penalty (l2, l1, elasticnet)")
        return Penalty(0.0, 0.0 if ratio is None else ratio)
    if key in _MIX:
        mix = _MIX[key]
        if ratio is not None and ratio != mix:
            raise ValueError(f"penalty {name!r} means l1_ratio={mix:g}, but l1_ratio={ratio:g} was given: "
                             "drop one of them (or use penalty='elasticnet')")
        return Penalty(alpha, mix)
    if key in ("elasticnet", "enet", "elastic-net"):
        return Penalty(alpha, 0.5 if ratio is None else ratio)
    raise ValueError(f"unknown penalty {name!r}; choose none, l2, l1 or elasticnet")


def penalty_from_spec(spec: dict) -> Penalty:
    return Penalty(float(spec.get("alpha", 0.0)), float(spec.get("l1_ratio", 0.0)), bool(spec.get("positive", False)))
