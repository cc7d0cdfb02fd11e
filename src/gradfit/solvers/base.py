"""What every solver shares: settings, the result, errors, and the epoch loop.

A solver declares which losses and penalties it can minimize; :meth:`Solver.check` turns a
mismatch into one sentence. Iterative solvers run their epochs through :class:`EpochLoop`, which
records the history, prints progress, stops on convergence and refuses to go on diverging.
"""
from __future__ import annotations

import functools
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
import torch
from torch import Tensor

from gradfit.problem.losses import Loss
from gradfit.problem.objective import Objective, relative_gap
from gradfit.problem.penalties import Penalty
from gradfit.exceptions import ConvergenceWarning, DivergenceError, SolverMismatch  # noqa: F401
from gradfit.solvers.history import History
from gradfit.solvers.registry import distributed_solvers
from gradfit.solvers.settings import Options, Settings, ThreadedOptions  # noqa: F401  (re-exported)


@dataclass
class FitResult:
    theta: Tensor
    converged: bool
    n_iter: int
    history: History
    solver: str
    gap: float = float("nan")
    message: str = ""
    info: dict = field(default_factory=dict)


class Solver:
    """Base class: a solver declares what it minimizes, what it can do, and its options.

    ``losses`` lists the loss names it accepts (None: any); ``needs_smooth_loss`` and ``penalties``
    (penalty names accepted) complete what it minimizes. The capabilities below are read by
    :meth:`check_data` and by callers; ``Options`` is its frozen dataclass of options.
    """

    name: str = ""
    losses: tuple[str, ...] | None = None
    needs_smooth_loss: bool = False
    penalties: tuple[str, ...] = ("none", "l2")
    Options: type[Options] = Options
    #: every pass reads the data through the batch interface, so a streamed source is never held
    #: whole (False: the rows are read into memory once)
    streams: bool = True
    #: every sum goes through ``data.allreduce``, so a sharded source gives the one-process answer
    runs_distributed: bool = False
    #: steps on mini-batches when ``batch_size`` is set; across processes it needs full-batch steps
    minibatch: bool = False
    #: True when the solver's own pass notices NaN/inf and calls ``data.validate()`` for the message,
    #: so the fit can skip a separate scan of the data
    checks_finite: bool = False
    #: True when it fits Huber with a threshold relative to a fitted scale (``Huber.scale != "absolute"``)
    scaled_huber: bool = False

    def check(self, loss: Loss, penalty: Penalty) -> None:
        if self.losses is not None and loss.name not in self.losses:
            raise SolverMismatch(f"solver '{self.name}' minimizes only {', '.join(self.losses)} loss, "
                                 f"not {loss.name}; pick another solver or leave it on 'auto'")
        if self.needs_smooth_loss and not loss.smooth:
            raise SolverMismatch(f"solver '{self.name}' needs a smooth loss and {loss.name} is not; "
                                 "use sgd/adam, or 'auto' for the exact method")
        if getattr(loss, "scale", "absolute") != "absolute" and not self.scaled_huber:
            raise SolverMismatch(f"solver '{self.name}' fits Huber only with the threshold in units of y "
                                 f"(huber_scale='absolute'), not with the {loss.scale} scale; use solver "
                                 "'newton' (or 'auto') for it")
        if penalty.name not in self.penalties:
            raise SolverMismatch(f"solver '{self.name}' does not handle the {penalty.name} penalty; "
                                 "use 'prox' or leave the solver on 'auto'")

    def check_data(self, data, batch_size: int | None) -> None:
        """Refuse, identically on every process, a distributed run that would not give the
        single-process answer."""
        if not data.distributed:
            return
        if not self.runs_distributed:
            raise SolverMismatch(f"solver '{self.name}' cannot run across processes yet; use one of "
                                 f"{', '.join(distributed_solvers())} (full batch), or run one process")
        if batch_size is not None and batch_size < data.total_rows():
            raise SolverMismatch("mini-batch steps (--batch-size) cannot run across processes: each process "
                                 "would step on its own rows; leave --batch-size unset, or run one process")

    def solve(self, objective: Objective, settings: Settings, theta0: Tensor) -> FitResult:
        raise NotImplementedError




@contextmanager
def torch_threads(n: int):
    """Run torch ops with at most ``n`` intra-op threads, restoring the setting afterwards."""
    old = torch.get_num_threads()
    if n >= old:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def single_threaded(solve):
    """Decorate a ``solve`` whose passes are long chains of small ops: it runs on one torch thread
    (the ``threads`` option of :class:`ThreadedOptions` overrides), since intra-op thread hand-offs cost more than a second
    thread saves on such kernels, and many times more on a busy machine."""
    @functools.wraps(solve)
    def wrapper(self, objective, settings, theta0):
        with torch_threads(settings.options.threads):
            return solve(self, objective, settings, theta0)
    return wrapper


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
            from gradfit.solvers.certificate import reference_solution
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
