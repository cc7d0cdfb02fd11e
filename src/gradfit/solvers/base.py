"""What every solver shares: settings, the result, errors, the capability declarations.

A solver declares which losses and penalties it can minimize; :meth:`Solver.check` turns a
mismatch into one sentence. Iterative solvers run their epochs through :class:`~.loop.EpochLoop`.
"""
from __future__ import annotations

import functools
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import Tensor

from gradfit.exceptions import ConvergenceWarning, DivergenceError, SolverMismatch  # noqa: F401
from gradfit.problem.losses import Loss
from gradfit.problem.objective import Objective
from gradfit.problem.penalties import Penalty
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
    #: True when it keeps ``w >= 0`` (a penalty with ``positive=True``) by projecting its steps
    bounds: bool = False

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
        if penalty.positive and not self.bounds:
            raise SolverMismatch(f"solver '{self.name}' does not keep coefficients >= 0 (positive=True); "
                                 "use 'cd' or leave the solver on 'auto'")
        if penalty.name not in self.penalties and not (self.bounds and penalty.positive):
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




def materialize(objective: Objective, solver: str = "ipm") -> tuple[Tensor, Tensor, Tensor]:
    """(X, y, s) as float64 tensors; a streamed source is read into memory once."""
    data = objective.data
    if data.total_rows() != data.n_rows:
        raise SolverMismatch(f"solver '{solver}' cannot run across processes (it needs every row in one); "
                             "use sgd, or prox for a smooth loss")
    full = data.full_batch()
    f64 = torch.float64
    if full is not None:  # no copy when already float64
        s = torch.ones_like(full.y, dtype=f64) if full.weight is None else full.weight.to(f64)
        return full.X.to(f64), full.y.to(f64), s
    batches = list(data)
    X = torch.cat([b.X for b in batches]).to(f64)
    y = torch.cat([b.y for b in batches]).to(f64)
    if any(b.weight is not None for b in batches):
        s = torch.cat([b.weight if b.weight is not None else torch.ones(len(b), dtype=b.X.dtype, device=b.X.device)
                       for b in batches]).to(f64)
    else:
        s = torch.ones_like(y)
    return X, y, s


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
