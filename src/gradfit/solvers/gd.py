"""Gradient methods on any loss: SGD, momentum, Nesterov and Adam (torch.optim's updates), and
full-batch gradient descent ``gd`` with its own step rule.

One epoch is one pass over the data: a single step on the full batch (the seed's program), or one
step per mini-batch when ``batch_size`` is set. Gradients are the analytic ones from the loss's
derivative (the number autograd gives, without a graph). The updates are torch.optim's functional
``sgd``/``adam`` (what ``SGD.step``/``Adam.step`` run, minus ~30 us of per-step bookkeeping) on the raw
features (``options={"standardize": True}`` to change that): a hand-written PyTorch loop's trajectory.

``gd`` works in standardized coordinates ``z`` (``w = z_w / sd``, ``b = z_b - mean . w``; the data is
never copied) and reports the result in original units. Its step:

- smooth loss (squared, Huber): ``1/L`` with ``L = sup rho'' * lambda_max(Z'SZ / sum s)`` (+ the ridge
  term) from power iteration through the batch interface, with Nesterov acceleration and gradient
  restarts (O'Donoghue & Candes 2015);
- absolute / quantile loss: the same accelerated steps on a Huber-smoothed derivative whose width
  shrinks tenfold per stage (continuation), the true objective monitored and the best point kept;
- ``options={"step": "armijo"}``: backtracking line search; ``"subgradient"``: diminishing steps
  ``t0 / sqrt(k + 1)`` along the normalized subgradient; a fixed ``lr`` gives plain steps of that size.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import Tensor
from torch.optim.sgd import sgd as sgd_update

from gradfit.problem.objective import Objective
from gradfit.solvers.base import FitResult, Options, Settings, Solver
from gradfit.solvers.loop import EpochLoop
from gradfit.solvers.registry import register
from gradfit.solvers.coordinates import Coordinates, top_eigenvalue

DEFAULT_LR = 0.01  # the step of sgd, momentum, nesterov and adam when lr is not given (fit and partial_fit)


class TorchStep:
    """One optimizer's update of ``theta`` in place, ``step(grad)``: torch.optim's functional ``sgd``
    (``sgd``; ``momentum`` and ``nesterov`` with ``momentum``) or ``adam`` (torch.optim.Adam's defaults),
    holding the state ``torch.optim`` would keep. What ``SGD.step``/``Adam.step`` run, minus ~30 us of
    per-step bookkeeping; picklable, so a partial_fit estimator that holds one pickles."""

    def __init__(self, theta: Tensor, method: str, lr: float, momentum: float = 0.9):
        self.theta, self.method, self.lr = theta, method, float(lr)
        self.momentum = float(momentum) if method in ("momentum", "nesterov") else 0.0
        if method == "adam":
            self.state = ([torch.zeros_like(theta)], [torch.zeros_like(theta)], [], [torch.tensor(0.0)])
        else:
            self.buffers: list[Tensor | None] = [None]

    def __call__(self, grad: Tensor) -> None:
        if self.method == "adam":
            from torch.optim.adam import adam  # its first import loads torch._dynamo (seconds)
            adam([self.theta], [grad], *self.state, foreach=False, amsgrad=False, beta1=0.9, beta2=0.999,
                 lr=self.lr, weight_decay=0.0, eps=1e-8, maximize=False)
        else:
            sgd_update([self.theta], [grad], self.buffers, weight_decay=0.0, momentum=self.momentum, lr=self.lr,
                       dampening=0.0, nesterov=self.method == "nesterov", maximize=False, foreach=False)


class TorchOptimizer(Solver):
    losses = None
    penalties = ("none", "l2", "l1", "elasticnet")  # the L1 part enters as a subgradient
    runs_distributed = True  # in full batch (check_data refuses mini-batches across processes)
    minibatch = True

    @dataclass(frozen=True)
    class Options(Options):
        """``standardize``: step in standardized coordinates (default False: the PyTorch loop's)."""

        standardize: bool = False

    def stepper(self, theta: Tensor, s: Settings) -> "TorchStep":
        """``step(grad)``: torch.optim's update of ``theta`` in place."""
        return TorchStep(theta, self.name, s.lr, s.momentum)

    def solve(self, objective: Objective, settings: Settings, theta0: Tensor) -> FitResult:
        s = settings if settings.lr is not None else replace(settings, lr=DEFAULT_LR)
        coords = Coordinates.standardized(objective) if s.options.standardize else Coordinates.raw(objective)
        z = coords.to_working(theta0.detach())
        step = self.stepper(z, s)
        loop = EpochLoop(s, self.name, objective)
        minibatch = s.batch_size is not None and s.batch_size < objective.data.n_rows
        gen = torch.Generator().manual_seed(s.seed)
        epoch = 0
        for epoch in range(s.epochs):
            if not minibatch:
                theta = coords.to_original(z)
                value, grad = objective.value_and_grad(theta)
                if loop.record(epoch, float(value), theta):
                    break
                step(coords.pull_back(grad))
            else:
                value = self._minibatch_epoch(objective, coords, z, step, s, gen)
                theta = coords.to_original(z)
                gap = float("nan")
                if loop.certified_gap(value) <= 10 * s.tol:  # the batch mean says close: one pass to check
                    gap = loop.certified_gap(float(objective.value(theta)))
                if loop.record(epoch, value, theta, gap, estimate=True):
                    break
        else:
            epoch = s.epochs
            theta = coords.to_original(z)
            loop.record(epoch, float(objective.value(theta)), theta)
        return FitResult(coords.to_original(z).detach(), loop.converged, epoch, loop.history, self.name,
                         message=loop.epoch_limit(s.epochs))

    @staticmethod
    def _minibatch_epoch(objective: Objective, coords: Coordinates, z: Tensor, step, s: Settings,
                         gen: torch.Generator) -> float:
        """One shuffled pass, one step per mini-batch; returns the mean of the batch objectives.
        Small batches gain nothing from threads and lose to their wake-ups (measured 1.4x slower
        with 2 threads on a busy 2-core machine), so they run on one thread, restored after."""
        threads = torch.get_num_threads()
        one = z.device.type == "cpu" and threads > 1 and s.batch_size * z.numel() <= 1 << 16
        if one:
            torch.set_num_threads(1)
        try:
            total, rows = torch.zeros((), dtype=torch.float64, device=z.device), 0
            for batch in objective.data.shuffled(s.batch_size, gen):
                value, grad = objective.minibatch_value_and_grad(batch, coords.to_original(z))
                total.add_(value, alpha=len(batch))
                rows += len(batch)
                step(coords.pull_back(grad))
        finally:
            if one:
                torch.set_num_threads(threads)
        return float(total) / max(rows, 1)


@register
class SGD(TorchOptimizer):
    name = "sgd"


@register
class Momentum(TorchOptimizer):
    name = "momentum"


@register
class Nesterov(TorchOptimizer):
    name = "nesterov"


@register
class Adam(TorchOptimizer):
    name = "adam"


class _SmoothedDerivative:
    """A piecewise-linear loss (absolute, quantile) whose derivative is replaced by the Huber-smoothed
    one, ``clamp(r / width, lo, hi)``; the value stays the true loss so the true objective is monitored."""

    def __init__(self, loss, width: float):
        self.base, self.width = loss, width
        self.lo, self.hi = (-1.0, 1.0) if loss.name == "absolute" else (loss.tau - 1.0, loss.tau)
        self.name, self.smooth = loss.name, True

    def value(self, r: Tensor) -> Tensor:
        return self.base.value(r)

    def derivative(self, r: Tensor) -> Tensor:
        return (r / self.width).clamp_(self.lo, self.hi)

    @property
    def curvature_bound(self) -> float:
        return 1.0 / self.width


@register
class GradientDescent(Solver):
    """Full-batch gradient descent with a step from the Lipschitz bound (accelerated), a line search,
    smoothing continuation (absolute/quantile loss) or diminishing subgradient steps."""

    name = "gd"
    losses = None
    penalties = ("none", "l2")
    runs_distributed = True

    @dataclass(frozen=True)
    class Options(Options):
        """``standardize`` (default True), ``step`` (lipschitz, armijo, smoothing, subgradient; default
        by the loss and ``lr``), ``accelerate`` (Nesterov momentum; default with the lipschitz step),
        ``lr0`` (first subgradient step), ``final_width`` (last smoothing width relative to the first)."""

        standardize: bool = True
        step: str | None = None
        accelerate: bool | None = None
        lr0: float | None = None
        final_width: float = 1e-9

    def solve(self, objective: Objective, settings: Settings, theta0: Tensor) -> FitResult:
        s, opts = settings, settings.options
        coords = Coordinates.standardized(objective) if opts.standardize else Coordinates.raw(objective)
        smooth = objective.loss.smooth and objective.loss.curvature_bound is not None
        rule = opts.step or ("fixed" if s.lr is not None else "lipschitz" if smooth
                                    else "armijo" if objective.loss.smooth else "smoothing")
        loop = EpochLoop(s, self.name, objective)
        run = _Run(objective, coords, loop, s)
        z = coords.to_working(theta0.detach())
        if rule in ("lipschitz", "fixed"):
            lam = top_eigenvalue(objective, coords) if s.lr is None else 0.0
            L = (objective.loss.curvature_bound or 0.0) * lam * 1.02 + self._ridge_curvature(objective, coords)
            step = s.lr if s.lr is not None else 1.0 / max(L, 1e-300)
            def done(value: float, g: Tensor) -> bool:  # one more step could gain at most this
                # a heuristic, so only without a certificate; with one, the loop stops at gap <= tol
                return not loop.certifies and float(g @ g) * step / 2 <= s.tol * max(abs(value), 1e-300)
            run.accelerated(z, step, rule == "lipschitz" if opts.accelerate is None else opts.accelerate, s.epochs, done, final=True)
            run.info.update(step=step, lipschitz=1.0 / step)
        elif rule == "smoothing":
            if objective.loss.name not in ("absolute", "quantile"):
                raise ValueError(f"step 'smoothing' is for absolute or quantile loss, not {objective.loss.name}")
            self._continuation(objective, coords, run, z, s)
        elif rule == "armijo":
            run.armijo(z, s.epochs)
        elif rule == "subgradient":
            run.subgradient(z, s.epochs, opts.lr0)
        else:
            raise ValueError(f"unknown gd step rule {rule!r}; choose lipschitz, armijo, smoothing, "
                             "subgradient, or give lr for a fixed step")
        theta, value = run.finish()
        return FitResult(theta, loop.converged, run.epoch, loop.history, self.name,
                         message=loop.epoch_limit(s.epochs),
                         info={"step_rule": rule, **run.info, "final_value": value})

    @staticmethod
    def _ridge_curvature(objective: Objective, coords: Coordinates) -> float:
        return float(objective.penalty.l2 / coords.sd.min() ** 2) if objective.penalty.l2 else 0.0

    def _continuation(self, objective, coords, run, z, s) -> None:
        """Accelerated steps on ever sharper Huber smoothings of the loss, warm-started."""
        lam = top_eigenvalue(objective, coords)
        value0 = float(objective.value(coords.to_original(z)))
        width = max(value0, 1e-12)
        final_width = width * s.options.final_width
        true_loss = objective.loss
        full = objective.data.full_batch()
        if full is not None and full.weight is not None:  # rows of the smallest weight that count
            rows = float(objective.weight_sum / full.weight[full.weight > 0].min())
        else:
            rows = float(objective.data.total_rows())
        run.loop.window = math.inf  # values stall between stages; each stage has its own stop rule
        try:
            while run.epoch < s.epochs and not run.loop.converged:
                objective.loss = _SmoothedDerivative(true_loss, width)
                last = width <= final_width
                L = lam / width * 1.02 + self._ridge_curvature(objective, coords)
                # one row moves a (sub)gradient by about 1/n; a stage solved to 1e-3 of that is
                # close enough to its smoothed optimum to shrink the width (tuned on L1/quantile fits)
                gtol = 1e-3 / rows
                z = run.accelerated(z, 1.0 / L, True, s.epochs - run.epoch,
                                    lambda value, g: float(g.norm()) <= gtol, final=last)
                if last:
                    break
                width = max(width / 10.0, final_width)
        finally:
            objective.loss = true_loss
        run.info["final_width"] = width


class _Run:
    """State of one gd run: the epoch counter, the best point, and the step loops."""

    def __init__(self, objective: Objective, coords: Coordinates, loop: EpochLoop, settings: Settings):
        self.obj, self.coords, self.loop, self.s = objective, coords, loop, settings
        self.epoch = 0
        self.best_value, self.best_z = math.inf, None
        self.info: dict = {}

    def evaluate(self, z: Tensor) -> tuple[float, Tensor, bool]:
        """Value and working-coordinate gradient at ``z``; records the epoch; True means stop."""
        theta = self.coords.to_original(z)
        value, grad = self.obj.value_and_grad(theta)
        v = float(value)
        stop = self.loop.record(self.epoch, v, theta)
        self.epoch += 1
        if v < self.best_value:
            self.best_value, self.best_z = v, z.clone()
        return v, self.coords.pull_back(grad), stop

    def accelerated(self, z: Tensor, step: float, accelerate: bool, budget: int, done, final: bool) -> Tensor:
        """Gradient steps of size ``step`` from ``z``; Nesterov momentum restarted whenever the
        gradient points against the last move. Stops on the loop's rule, when ``done(value, g)``
        (convergence when ``final``), or after ``budget`` epochs. Returns the last point evaluated."""
        x, y, t = z.clone(), z.clone(), 1.0
        for _ in range(budget):
            value, g, stop = self.evaluate(y)
            if stop:
                return y
            if done(value, g):
                if final:
                    self.loop.stop_reason = self.loop.stop_reason or "the gradient step would gain less than tol"
                return y
            x_new = y - step * g
            if accelerate and float(g @ (x_new - x)) > 0:  # restart the momentum
                t = 1.0
            t_new = (1 + math.sqrt(1 + 4 * t * t)) / 2 if accelerate else 1.0
            y = x_new + ((t - 1) / t_new) * (x_new - x) if accelerate else x_new
            x, t = x_new, t_new
        return y

    def armijo(self, z: Tensor, budget: int) -> None:
        """Backtracking: the largest step in t, t/2, ... with F(z - t g) <= F(z) - t ||g||^2 / 2."""
        t = 1.0
        for _ in range(budget):
            value, g, stop = self.evaluate(z)
            if stop:
                return
            gg = float(g @ g)
            if gg == 0.0:
                self.loop.stop_reason = "the gradient is exactly zero"
                return
            t *= 2.0
            for _ in range(60):
                if float(self.obj.value(self.coords.to_original(z - t * g))) <= value - 0.5 * t * gg:
                    break
                t /= 2.0
            else:  # no decrease along -g (a kink of a non-smooth loss): diminishing steps from here
                self.info["armijo_fallback"] = "subgradient"
                return self.subgradient(z, budget - self.epoch, None)
            z = z - t * g

    def subgradient(self, z: Tensor, budget: int, lr0: float | None) -> None:
        """z <- z - t0 / sqrt(k + 1) * g / ||g||, keeping the best point seen."""
        t0 = float(lr0) if lr0 else None
        for k in range(budget):
            value, g, stop = self.evaluate(z)
            if stop:
                return
            norm = float(g.norm())
            if norm == 0.0:
                self.loop.stop_reason = "the subgradient is exactly zero"
                return
            if t0 is None:
                t0 = max(abs(value), float(z.abs().max()), 1e-12) * 0.1
            z = z - (t0 / math.sqrt(k + 1) / norm) * g

    def finish(self) -> tuple[Tensor, float]:
        """Record the last epoch when the budget ran out; return the best point (original units)."""
        if self.best_z is None:
            raise ValueError("gd ran no epoch; give epochs >= 1")
        theta = self.coords.to_original(self.best_z)
        if not self.loop.converged and self.epoch >= self.s.epochs:
            self.loop.record(self.epoch, self.best_value, theta)
        return theta.detach(), self.best_value
