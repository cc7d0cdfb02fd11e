"""One tutorial run, shared by the demo and the playground: the data, the training by gradfit's own
solver (float32, like the PyTorch program it mirrors), the exact optimum with its certificate, and
the facts :mod:`gradfit.tutorial.explain` reads."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from gradfit.api import fit
from gradfit.data.arrays import as_batches
from gradfit.exceptions import DivergenceError
from gradfit.model import LinearModel
from gradfit.problem.losses import Loss, get_loss
from gradfit.problem.objective import GAP_FLOOR, Objective
from gradfit.problem.penalties import get_penalty
from gradfit.solvers.history import History
from gradfit.solvers.stability import LearningRateLimit, learning_rate_limit
from gradfit.tutorial.code import RunSettings
from gradfit.tutorial.explain import RunFacts

LOSS_NAMES = {"l1": "absolute", "l2": "squared", "huber": "huber", "quantile": "quantile"}


@dataclass
class TutorialData:
    x: torch.Tensor   # (n, 1) float32
    y: torch.Tensor   # (n,) float32
    w0: float         # nn.Linear(1, 1)'s initial weight and bias for this seed
    b0: float


def tutorial_data(n: int = 1000, noise_std: float = 1.0, seed: int = 0, *, added=(), moved=None) -> TutorialData:
    """The tutorial's data and nn.Linear(1, 1) initialisation, drawn exactly as its program does,
    then the points a learner ``moved`` (index -> (x, y)) and ``added``."""
    torch.manual_seed(seed)
    x = nn.init.uniform_(torch.empty(n, 1), -10, 10)
    noise = nn.init.normal_(torch.empty(n, 1), std=noise_std)
    y_noise = 2 * (x + noise) + 3
    layer = nn.Linear(1, 1)
    for i, (px, py) in (moved or {}).items():
        x[i, 0], y_noise[i, 0] = px, py
    if added:
        x = torch.cat([x, torch.tensor([[float(px)] for px, _ in added])])
        y_noise = torch.cat([y_noise, torch.tensor([[float(py)] for _, py in added])])
    return TutorialData(x, y_noise[:, 0], float(layer.weight.item()), float(layer.bias.item()))


@dataclass
class Trained:
    model: LinearModel
    diverged: bool
    error: str = ""


def tutorial_loss(s: RunSettings) -> Loss:
    """The loss as the PyTorch program has it: Huber's delta in units of y (nn.HuberLoss), not scaled."""
    return get_loss(s.loss, delta=s.delta, tau=s.tau, scale="absolute")


def train(s: RunSettings, d: TutorialData, *, on_epoch: Callable | None = None, on_log=None, log_every: int = 0,
          tol: float = 0.0) -> Trained:
    """Run ``s.optimizer`` as the PyTorch program would (float32, raw features unless ``s.standardize``).
    A run that diverges still returns what it did: the history until the blow-up."""
    start = list(s.start) if s.start is not None else [d.w0, d.b0]
    kwargs = dict(loss=tutorial_loss(s), optimizer=s.optimizer, lr=s.lr, epochs=s.epochs,
                  batch_size=None if s.optimizer == "gd" else s.batch_size, init=start, dtype="float32",
                  standardize=s.standardize, warn=False, tol=tol, seed=s.seed, on_epoch=on_epoch,
                  on_log=on_log, log_every=log_every, options={"certify": tol > 0})
    if s.optimizer == "gd":
        kwargs["options"]["accelerate"] = False  # plain steps of size lr: optim.SGD on the full batch
    try:
        return Trained(fit(d.x, d.y, **kwargs), False)
    except DivergenceError as exc:
        return Trained(_partial_model(exc.history or History(), s), True, str(exc))


def _partial_model(h: History, s: RunSettings) -> LinearModel:
    path = h.path_array if len(h.path) else np.array([[math.nan, math.nan]])
    w, b = path[-1]
    loss = tutorial_loss(s)
    return LinearModel(np.array([w]), float(b), ["x"], loss=loss.spec(), penalty=get_penalty(None, 0.0).spec(),
                       solver=s.optimizer, converged_=False, gap_=math.nan, n_iter_=max(len(h.loss) - 1, 0),
                       final_loss_=h.loss[-1] if h.loss else math.nan, history_=h, info={"lr": s.lr, "diverged": 1})


def exact_optimum(d: TutorialData, s: RunSettings) -> LinearModel:
    """The exact optimum of the same loss on the same data (float64), with its certificate."""
    return fit(d.x.double(), d.y.double(), loss=tutorial_loss(s), warn=False)


def lr_limit(d: TutorialData, s: RunSettings) -> LearningRateLimit:
    data = as_batches(d.x.double(), d.y.double(), feature_names=["x"])
    objective = Objective(tutorial_loss(s), get_penalty(None, 0.0), data, True)
    return learning_rate_limit(objective, s.optimizer, standardized=s.standardize)


def run_facts(s: RunSettings, d: TutorialData, trained: Trained, optimum: LinearModel,
              limit: LearningRateLimit | None = None) -> RunFacts:
    """What :func:`gradfit.tutorial.explain.explain` needs; the losses re-evaluated in float64."""
    h = trained.model.history_
    path = h.path_array if h is not None and len(h.path) else np.zeros((0, 2))
    losses = mean_losses(d, s, path)
    limit = limit or lr_limit(d, s)
    lr_max = limit.lr_max_standardized if s.standardize else limit.lr_max
    x_scale = float(d.x.abs().mean()) if not s.standardize else 1.0
    return RunFacts(LOSS_NAMES[s.loss], s.optimizer, s.lr, s.epochs, losses, path.tolist(),
                    [float(optimum.coef_[0]), float(optimum.intercept_)], float(optimum.final_loss_),
                    diverged=trained.diverged, lr_max=lr_max, lipschitz=limit.lipschitz, x_scale=x_scale,
                    steps_per_epoch=steps_per_epoch(s, len(d.x)), loss_floor=GAP_FLOOR * zero_model_loss(d, s))


def zero_model_loss(d: TutorialData, s: RunSettings) -> float:
    """The mean loss of predicting 0 everywhere (float64): the size relative excesses are floored at."""
    return float(tutorial_loss(s).value(d.y.double()).mean())


def steps_per_epoch(s: RunSettings, n: int) -> int:
    """Optimizer steps per epoch: one on the full batch (always for gd), ceil(n / batch) on mini-batches."""
    if s.optimizer == "gd" or not s.batch_size or s.batch_size >= n:
        return 1
    return -(-n // s.batch_size)


def mean_losses(d: TutorialData, s: RunSettings, path: np.ndarray) -> list[float]:
    """The mean loss (float64) at each (w, b) of ``path``."""
    if not len(path):
        return []
    rho = tutorial_loss(s)
    x, y = d.x[:, 0].double(), d.y.double()
    out = []
    P = torch.from_numpy(np.asarray(path, dtype=np.float64))
    for a in range(0, len(P), 256):  # bounded temporaries: 256 x n
        block = P[a:a + 256]
        r = y[None, :] - block[:, :1] * x[None, :] - block[:, 1:2]
        out.extend(rho.value(r).mean(1).tolist())
    return out
