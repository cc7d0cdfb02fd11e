"""State that :meth:`gradfit.LinearRegressor.partial_fit` keeps between calls.

Squared loss: :class:`Moments` accumulates the weighted means and centered cross-products of
``[X, Y]`` chunk by chunk (Chan, Golub and LeVeque's pairwise update, so the order of the chunks
does not matter and no digits cancel). They determine the objective completely, so every call
refits *exactly*: :func:`reduced_problem` turns them into ``p + 1`` rows with the same objective,
which any registered solver (exact, cd, prox) then minimizes.

Other losses: :class:`StochasticState` keeps the parameters and the ``torch.optim`` state of the
sgd/momentum/nesterov/adam solver, and each call takes one pass of mini-batch steps over the chunk
(the L1 part of a penalty by its proximal step), like scikit-learn's ``SGDRegressor.partial_fit``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gradfit import api
from gradfit.data.arrays import as_batches
from gradfit.data.sparse import is_sparse
from gradfit.numerics.sparse_gram import add_gram
from gradfit.problem.losses import Loss
from gradfit.model import LinearModel
from gradfit.problem.objective import Objective
from gradfit.problem.penalties import Penalty
from gradfit.solvers.history import History
from gradfit.solvers import Settings, get_solver
from gradfit.solvers.gd import DEFAULT_LR

STOCHASTIC = ("sgd", "momentum", "nesterov", "adam")


@dataclass
class Moments:
    """Weighted sufficient statistics of ``[X, Y]``: total weight, means, centered cross-products."""

    weight: float
    mean_x: np.ndarray  # (p,)
    mean_y: np.ndarray  # (k,)
    cxx: np.ndarray  # (p, p)
    cxy: np.ndarray  # (p, k)
    cyy: np.ndarray  # (k,)

    @classmethod
    def of(cls, X: np.ndarray, Y: np.ndarray, w: np.ndarray | None) -> "Moments":
        w = np.ones(X.shape[0]) if w is None else w
        total = float(w.sum())
        if total <= 0:
            p, k = X.shape[1], Y.shape[1]
            return cls(0.0, np.zeros(p), np.zeros(k), np.zeros((p, p)), np.zeros((p, k)), np.zeros(k))
        if is_sparse(X):
            return cls._of_sparse(X, Y, w, total)
        mx, my = w @ X / total, w @ Y / total
        Xc, Yc = X - mx, Y - my
        Xw = Xc * w[:, None]
        return cls(total, mx, my, Xw.T @ Xc, Xw.T @ Yc, w @ (Yc * Yc))

    @classmethod
    def _of_sparse(cls, X, Y: np.ndarray, w: np.ndarray, total: float) -> "Moments":
        """:meth:`of` for a scipy.sparse X: raw sparse products, centred by algebra (no X - mean)."""
        import scipy.sparse as sp
        csr = sp.csr_matrix(X, dtype=np.float64)
        p = csr.shape[1]
        G = np.zeros((p, p))
        add_gram(G, csr, w)
        mx, my = (csr.T @ w) / total, w @ Y / total
        Yc = Y - my
        cxy = np.asarray(csr.T @ (w[:, None] * Yc))  # sum w x (y - my): already centred in y
        return cls(total, mx, my, G - total * np.outer(mx, mx), cxy, w @ (Yc * Yc))

    def merge(self, other: "Moments") -> "Moments":
        if other.weight == 0:
            return self
        if self.weight == 0:
            return other
        total = self.weight + other.weight
        f = self.weight * other.weight / total
        dx, dy = other.mean_x - self.mean_x, other.mean_y - self.mean_y
        return Moments(total, self.mean_x + dx * (other.weight / total), self.mean_y + dy * (other.weight / total),
                       self.cxx + other.cxx + f * np.outer(dx, dx), self.cxy + other.cxy + f * np.outer(dx, dy),
                       self.cyy + other.cyy + f * dy * dy)

    def second_moments(self, centered: bool):
        """(Sxx, Sxy, Syy) around the mean (with an intercept) or around zero (without)."""
        if centered:
            return self.cxx, self.cxy, self.cyy
        sw, mx, my = self.weight, self.mean_x, self.mean_y
        return (self.cxx + sw * np.outer(mx, mx), self.cxy + sw * np.outer(mx, my), self.cyy + sw * my * my)


def reduced_problem(Sxx: np.ndarray, sxy: np.ndarray, syy: float, weight: float):
    """``p + 1`` rows ``(A, z)`` with ``mean((z - A w)**2) == (syy - 2 w.sxy + w.Sxx w) / weight``.

    With ``Sxx = L L'`` (from its eigendecomposition, so a singular Sxx works), the rows are
    ``A = L'``, ``z = L^+ sxy`` plus one row ``(0, sqrt(syy - |z|**2))`` that carries the constant,
    all scaled by ``sqrt((p + 1) / weight)``: the same objective value for every ``w``.
    """
    p = Sxx.shape[0]
    evals, V = np.linalg.eigh((Sxx + Sxx.T) / 2)
    keep = evals > max(evals.max(initial=0.0), 0.0) * p * np.finfo(np.float64).eps
    root = np.sqrt(np.where(keep, evals, 0.0))
    A = root[:, None] * V.T
    z = np.where(keep, (V.T @ sxy) / np.where(keep, root, 1.0), 0.0)
    rest = np.sqrt(max(float(syy) - float(z @ z), 0.0))
    scale = np.sqrt((p + 1) / weight)
    return np.vstack([A, np.zeros((1, p))]) * scale, np.append(z, rest) * scale


class StochasticState:
    """Parameters and optimizer state of a streamed fit with a non-squared loss, one per output."""

    def __init__(self, n_features: int, n_outputs: int, solver: str, loss: Loss, penalty: Penalty,
                 lr: float | None, seed: int, dtype: torch.dtype):
        name = "adam" if solver == "auto" else solver
        if name not in STOCHASTIC:
            raise ValueError(f"partial_fit with the {loss.name} loss takes a stochastic solver "
                             f"({', '.join(STOCHASTIC)}), not {solver!r}; use fit() for the exact method")
        solver = get_solver(name, loss, penalty)  # the same loss/penalty check as fit()
        self.solver, self.lr = name, DEFAULT_LR if lr is None else float(lr)
        self.thetas = [torch.zeros(n_features + 1, dtype=dtype) for _ in range(n_outputs)]
        self.steppers = [solver.stepper(theta, Settings(lr=self.lr)) for theta in self.thetas]  # fit()'s updates
        self.generator = torch.Generator().manual_seed(seed)
        self.histories = [History() for _ in range(n_outputs)]
        self.steps = 0

    def step(self, X: np.ndarray, Y: np.ndarray, w: np.ndarray | None, loss: Loss, penalty: Penalty,
             fit_intercept: bool, batch_size: int | None) -> None:
        """One pass of mini-batch steps over this chunk, for every output."""
        dtype = self.thetas[0].dtype
        rows = batch_size or X.shape[0]
        for j, (theta, step) in enumerate(zip(self.thetas, self.steppers)):
            data = as_batches(X, Y[:, j], w, dtype=dtype)
            objective = Objective(loss, penalty, data, fit_intercept)
            total, seen = 0.0, 0
            for batch in data.shuffled(rows, self.generator):
                value, grad = objective.minibatch_value_and_grad(batch, theta)
                step(grad)
                if penalty.l1:
                    with torch.no_grad():
                        theta[:-1] = penalty.prox(theta[:-1], self.lr)
                total += float(value) * len(batch)
                seen += len(batch)
                self.steps += j == 0
            self.histories[j].append(total / max(seen, 1), theta.detach().tolist())

    def coefficients(self) -> tuple[np.ndarray, np.ndarray]:
        """(coef (k, p), intercept (k,)) as float64 numpy arrays."""
        thetas = np.stack([t.detach().to(torch.float64).numpy() for t in self.thetas])
        return thetas[:, :-1], thetas[:, -1]


def solve_moments(m: Moments, fit_intercept: bool, fit_kwargs: dict) -> list[LinearModel]:
    """The exact fit of every output from the accumulated moments (``fit_kwargs`` go to gradfit.fit)."""
    Sxx, Sxy, Syy = m.second_moments(centered=fit_intercept)
    models = []
    for j in range(Sxy.shape[1]):
        A, z = reduced_problem(Sxx, Sxy[:, j], Syy[j], m.weight)
        model = api.fit(A, z, fit_intercept=False, **fit_kwargs)
        model.intercept_ = float(m.mean_y[j] - m.mean_x @ model.coef_) if fit_intercept else 0.0
        model.fit_intercept = fit_intercept
        model.info["n_rows"] = m.weight
        models.append(model)
    return models


def stochastic_models(state: StochasticState, loss: Loss, penalty: Penalty, p: int,
                      fit_intercept: bool) -> list[LinearModel]:
    """The current parameters of a streamed stochastic fit as models (not converged: no certificate)."""
    coef, intercept = state.coefficients()
    return [LinearModel(coef[j], float(intercept[j]), [f"x{i}" for i in range(p)], loss=loss.spec(),
                        penalty=penalty.spec(), solver=state.solver, converged_=False, gap_=float("nan"),
                        n_iter_=state.steps, final_loss_=state.histories[j].loss[-1],
                        history_=state.histories[j], fit_intercept=fit_intercept) for j in range(len(coef))]
