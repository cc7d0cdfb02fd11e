"""The epoch loop of iterative solvers: it records the history, prints progress, stops on a certified
gap and refuses to go on diverging."""
from __future__ import annotations

import math
import time

from torch import Tensor

from gradfit.exceptions import DivergenceError
from gradfit.problem.objective import Objective, relative_gap
from gradfit.solvers.certificate import reference_solution
from gradfit.solvers.history import History
from gradfit.solvers.settings import Settings


class EpochLoop:
    """Records one value per epoch and decides when to stop.

    Converged: the certified relative objective gap is at most ``tol`` -- the gap the solver reports
    itself (duality gap, Newton decrement), or, for solvers without one (gd, sgd, adam, L-BFGS ...),
    ``(F(theta) - F*) / |F*| + gap*`` against the reference optimum ``F*`` that
    :func:`gradfit.solvers.certificate.reference_solution` computes once, before the first epoch
    (pass ``objective``). There is no stall test: a slow run goes on until ``epochs``, except when
    the value has not changed at all for ``window`` epochs (a fixed point of the update), which
    stops it with ``stop_reason`` saying so. Diverged: the value is not finite, or it grew in each of
    the last ``divergence_patience`` epochs.
    """

    window = 10

    def __init__(self, settings: Settings, solver: str, objective: Objective | None = None):
        self.s, self.solver = settings, solver
        self.history = History()
        self.t0 = time.perf_counter()
        self.grew = 0
        self.converged = False
        self.stop_reason = ""
        self.reference = None
        if objective is not None and getattr(settings.options, "certify", True):  # certify=False: no reference
            self.reference = reference_solution(objective, exclude=solver)
            if self.reference is not None:
                self.objective_scale = objective.gap_scale(self.reference[0])

    @property
    def certifies(self) -> bool:
        """True when every recorded value is turned into a certified gap (a reference optimum exists)."""
        return self.reference is not None

    def certified_gap(self, value: float) -> float:
        """Relative gap of an objective value against the reference optimum (NaN without one)."""
        if self.reference is None:
            return float("nan")
        f_star, ref_gap = self.reference[0], self.reference[1]
        return relative_gap(value, f_star, self.objective_scale) + ref_gap

    def record(self, epoch: int, value: float, theta: Tensor | None, gap: float = float("nan"),
               estimate: bool = False) -> bool:
        """Store epoch ``epoch``'s value; return True when the loop should stop (converged or stuck).
        ``estimate``: the value is not F(theta) (a mean over mini-batches): no gap is derived from it."""
        h, s = self.history, self.s
        if not math.isfinite(value):
            raise self._diverged(epoch, value)
        if h.loss and value > h.loss[-1] * (1 + 1e-12) + 1e-300:
            self.grew += 1
            if self.grew >= s.divergence_patience and value > h.loss[0]:
                h.append(value, theta.detach().cpu().tolist() if (s.record_path and theta is not None) else None,
                         gap, time.perf_counter() - self.t0)
                raise self._diverged(epoch, value)
        else:
            self.grew = 0
        if math.isnan(gap) and not estimate:
            gap = self.certified_gap(value)
        h.append(value, theta.detach().cpu().tolist() if (s.record_path and theta is not None) else None,
                 gap, time.perf_counter() - self.t0)
        if s.log_every and s.on_log is not None and epoch % s.log_every == 0:
            s.on_log(epoch, value)
        if s.on_epoch is not None and theta is not None:
            s.on_epoch(epoch, value, theta)
        if not math.isnan(gap) and gap <= s.tol:
            self.converged = True
            self.stop_reason = f"certified relative gap {gap:.2e} <= tol"
            return True
        if len(h.loss) > self.window and all(v == value for v in h.loss[-1 - self.window:]):
            self.stop_reason = f"the objective did not change for {self.window} epochs (a fixed point of the update)"
            return True
        return False

    def epoch_limit(self, limit: int, what: str = "epoch") -> str:
        """The stop reason when the budget ran out."""
        return self.stop_reason or f"stopped at the {what} limit ({limit})"

    def _diverged(self, epoch: int, value: float) -> DivergenceError:
        """The error, carrying the history so far (a caller can still show what happened); the
        learning-rate advice is added by :func:`gradfit.api.fit`, which knows the data."""
        what = "became " + str(value) if not math.isfinite(value) else \
            f"grew for {self.s.divergence_patience} epochs in a row (now {value:.4g})"
        return DivergenceError(f"{self.solver} diverged at epoch {epoch}: the loss {what}", epoch=epoch,
                               lr=self.s.lr, history=self.history)
