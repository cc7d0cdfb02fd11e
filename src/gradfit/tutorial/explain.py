"""Why a gradient run ended where it did, told from what happened in it.

One module decides the words for the demo, its report and the playground: the run is

- ``diverged``: the loss blew up or ended above where it started; the words give the stability
  limit ``lr < 2/L`` computed from the data (squared, Huber) or the size of one step (absolute,
  quantile, whose gradient does not shrink near the optimum);
- ``reached``: it ended within :data:`REACHED` (relative) of the exact optimum's loss;
- ``stopped``: it stopped before its last epoch because the loss stopped changing, short of the optimum;
- ``crawling``: it used every epoch and is still short: for the absolute/quantile loss the gradient
  bound (each step moves ``b`` by at most ``lr``), otherwise how far ``lr`` is below the limit.

The text goes through the gettext catalog (:mod:`gradfit.tutorial.i18n`), so it reads in Korean too.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

from gradfit.tutorial.i18n import N_

LOSS_WORDS = {"absolute": N_("absolute"), "squared": N_("squared"), "huber": N_("Huber"), "quantile": N_("quantile")}
REACHED = 1e-3  # relative excess loss that counts as "at the optimum" on a plot or in words
KINDS = ("diverged", "reached", "stopped", "crawling")


@dataclass
class RunFacts:
    """What one run did. ``losses[k]`` is the loss at ``path[k]`` (k = 0: the start)."""

    loss: str                      # absolute, squared, huber, quantile
    optimizer: str                 # sgd, momentum, nesterov, adam, gd
    lr: float
    epochs: int                    # asked for
    losses: Sequence[float]
    path: Sequence[Sequence[float]]  # theta = (w..., b) per record
    optimum: Sequence[float]
    optimum_loss: float
    diverged: bool = False         # stopped by a DivergenceError
    lr_max: float | None = None    # the stability limit from the data (None: no such limit)
    lipschitz: float | None = None
    momentum: float = 0.9
    x_scale: float = 1.0           # mean |x| of the feature: a bounded gradient's step in w is lr times it
    steps_per_epoch: int = 1       # optimizer steps in one epoch: 1 on the full batch, ceil(n / batch) on mini-batches
    loss_floor: float = 0.0        # the excess is relative to at least this (GAP_FLOOR x the zero model's loss)

    @property
    def steps(self) -> int:
        """Optimizer steps the run was given (what bounds how far a bounded gradient can carry it)."""
        return self.epochs * self.steps_per_epoch

    @property
    def epochs_run(self) -> int:
        return max(len(self.losses) - 1, 0)

    @property
    def excess(self) -> float:
        """(final loss - optimum) / |optimum|, never negative (a rounding below the optimum is 0); the
        denominator is floored at ``loss_floor`` as gradfit's gaps are (data on an exact line: optimum 0)."""
        if not self.losses or not math.isfinite(self.losses[-1]):
            return math.inf
        return max(self.losses[-1] - self.optimum_loss, 0.0) / max(abs(self.optimum_loss), self.loss_floor, 1e-300)


@dataclass
class Explanation:
    kind: str
    text: str
    numbers: dict = field(default_factory=dict)


def _identity(s: str) -> str:
    return s


def explain(f: RunFacts, gettext: Callable[[str], str] = _identity) -> Explanation:
    """The kind of the run and one or two sentences saying why, in the catalog's language."""
    _ = gettext
    start, end = (list(f.path[0]), list(f.path[-1])) if len(f.path) else ([], [])
    nums = {"lr": f.lr, "epochs": f.epochs, "run": f.epochs_run, "excess": f.excess}
    rose = len(f.losses) > 1 and (not math.isfinite(f.losses[-1]) or f.losses[-1] > f.losses[0] * (1 + 1e-9))
    if f.diverged or rose:
        return Explanation("diverged", _diverged(f, _, start), nums)
    gap = f.excess
    if gap <= REACHED:
        if f.epochs_run < f.epochs:
            text = _("reached the optimum: {excess} above it at epoch {run}, where the loss stopped changing "
                     "(the run stopped there, {rest} of the {epochs} epochs unused)").format(
                excess=pct(gap), run=f.epochs_run, rest=f.epochs - f.epochs_run, epochs=f.epochs)
        else:
            text = _("reached the optimum: {excess} above it after {run} epochs").format(
                excess=pct(gap), run=f.epochs_run)
        return Explanation("reached", text, nums)
    if f.epochs_run < f.epochs:
        text = _("stopped early at epoch {run} of {epochs}: the loss stopped changing, yet it is {excess} above "
                 "the optimum").format(run=f.epochs_run, epochs=f.epochs, excess=pct(gap))
        if f.loss in ("absolute", "quantile"):
            text += _("; the {loss} loss's gradient keeps its size near the optimum, so a fixed lr {lr} "
                      "bounces around it instead of settling").format(loss=_word(f, _), lr=_g(f.lr))
        return Explanation("stopped", text, nums)
    return Explanation("crawling", _crawling(f, _, start, end, gap), nums)


def _diverged(f: RunFacts, _, start) -> str:
    if f.lr_max is not None and math.isfinite(f.lr_max):
        return _("diverged: lr {lr} is above the stability limit lr < 2/L = {limit} computed from the data "
                 "(L = {L}); each step overshoots the valley by more than it gains").format(
            lr=_g(f.lr), limit=_g(f.lr_max), L=_g(f.lipschitz or 2 / f.lr_max))
    if f.loss in ("absolute", "quantile"):
        step = _step_bound(f)
        return _("diverged: the loss rose instead of falling; with the {loss} loss each step moves w by up to "
                 "lr x mean|x| = {step}, which jumps far past the optimum").format(loss=_word(f, _), step=_g(step))
    return _("diverged: the loss rose instead of falling; lr {lr} is too large for this data").format(lr=_g(f.lr))


def _boost(f: RunFacts) -> float:
    """How much momentum stretches a step of a bounded gradient at most: 1 / (1 - beta)."""
    return 1.0 / (1.0 - f.momentum) if f.optimizer in ("momentum", "nesterov") else 1.0


def _step_bound(f: RunFacts) -> float:
    """How far one step can move w for a bounded gradient: lr * mean |x| (momentum: / (1 - beta))."""
    return f.lr * f.x_scale * _boost(f)


def _crawling(f: RunFacts, _, start, end, gap) -> str:
    head = _("crawling: after all {epochs} epochs it is still {excess} above the optimum").format(
        epochs=f.epochs, excess=pct(gap))
    if f.loss in ("absolute", "quantile") and f.optimizer != "adam" and start:
        boost = _boost(f)
        reach = f.lr * boost * f.steps
        need = abs(f.optimum[-1] - start[-1])
        if reach >= need:  # the steps could have carried b there: its gradient shrank on the way
            return head + "; " + _("the {loss} gradient of b is the mean of sign(residual): it shrinks as the line "
                                   "balances the points above and below it, so b slows down long before the optimum "
                                   "(lr {lr} could have moved b {reach} in {epochs} steps; it had to travel {need})").format(
                loss=_word(f, _), lr=_g(f.lr), reach=_g(reach), epochs=f.steps, need=f"{need:.2f}")
        return head + "; " + _("the {loss} gradient of b is the mean of sign(residual), at most 1 in size, so lr "
                               "{lr} moves b at most {step} per step, {reach} in {epochs} steps; b had to travel "
                               "{need}").format(loss=_word(f, _), lr=_g(f.lr), step=_g(f.lr * boost), reach=_g(reach),
                                                epochs=f.steps, need=f"{need:.2f}")
    if f.optimizer == "adam" and start:
        dist = max(abs(a - b) for a, b in zip(start, f.optimum))
        return head + "; " + _("Adam moves each parameter by about lr = {lr} per step, {reach} in {epochs} steps, "
                               "and the optimum is {need} away").format(lr=_g(f.lr), reach=_g(f.lr * f.steps),
                                                                       epochs=f.steps, need=f"{dist:.2f}")
    if f.lr_max is not None and math.isfinite(f.lr_max) and f.lr < f.lr_max:
        return head + "; " + _("lr {lr} is {ratio}x below the stability limit {limit}: larger steps (or "
                               "standardized features) would get there sooner").format(
            lr=_g(f.lr), ratio=_g(f.lr_max / f.lr), limit=_g(f.lr_max))
    return head + "; " + _("more epochs or a larger lr would get closer")


def _word(f: RunFacts, _) -> str:
    """The loss's name in the reader's language."""
    return _(LOSS_WORDS.get(f.loss, f.loss))


def pct(v: float) -> str:
    """A relative excess as text: 68.4%, 9.6e-07, or 12,000x when it is more than ten times the optimum."""
    if not math.isfinite(v):
        return "inf"
    if v >= 10:
        return f"{v:,.0f}x"
    return f"{v:.1%}" if v >= 1e-3 else f"{v:.1e}"


def _g(v: float | None) -> str:
    return "?" if v is None else f"{v:.3g}"
