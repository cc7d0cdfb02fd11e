"""State that :meth:`gradfit.LinearRegressor.partial_fit` keeps between calls.

Squared loss: :class:`gradfit.numerics.moments.Moments` accumulates the weighted sums of ``[X, 1, Y]``
chunk by chunk, shifted (Chan, Golub and LeVeque's pairwise update, so the order of the chunks
does not matter and no digits cancel). They determine the objective completely, so every call
refits *exactly*: :func:`reduced_problem` turns them into ``p + 1`` rows with the same objective,
which any registered solver (exact, cd, prox) then minimizes.

Other losses: :class:`StochasticState` keeps the parameters and the ``torch.optim`` state of the
sgd/momentum/nesterov/adam solver, and each call takes one pass of mini-batch steps over the chunk
(the L1 part of a penalty by its proximal step), like scikit-learn's ``SGDRegressor.partial_fit``.
"""
from __future__ import annotations

import numpy as np
import torch

from gradfit import api
from gradfit.data.arrays import as_batches
from gradfit.data.sparse import is_sparse
from gradfit.numerics.moments import Moments
from gradfit.problem.losses import Loss
from gradfit.model import LinearModel
from gradfit.problem.objective import Objective
from gradfit.problem.penalties import Penalty
from gradfit.solvers.history import History
from gradfit.solvers import Settings, get_solver
from gradfit.solvers.gd import DEFAULT_LR

STOCHASTIC = ("sgd", "momentum", "nesterov", "adam")


def chunk_moments(X, Y: np.ndarray, w: np.ndarray | None) -> Moments:
    """The :class:`~gradfit.numerics.moments.Moments` of one ``partial_fit`` chunk (X dense or scipy.sparse,
    Y (n, k)); chunks are combined with ``Moments.merge`` (Chan, Golub and LeVeque's pairwise update)."""
    sums = Moments(X.shape[1], Y.shape[1])
    return sums.add_sparse(X, Y, w) if is_sparse(X) else sums.add(X, Y, w)


def second_moments(m: Moments, centered: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Sxx, Sxy, Syy) around the means (with an intercept) or around zero (without)."""
    M, p = (m.centered() if centered else m.about_zero()).M.numpy(), m.p
    return M[:p, :p], M[:p, p + 1:], np.diag(M)[p + 1:]


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
    Sxx, Sxy, Syy = second_moments(m, centered=fit_intercept)
    mean_x, mean_y = (t.numpy() for t in m.means())
    models = []
    for j in range(Sxy.shape[1]):
        A, z = reduced_problem(Sxx, Sxy[:, j], Syy[j], m.weight)
        model = api.fit(A, z, fit_intercept=False, **fit_kwargs)
        model.intercept_ = float(mean_y[j] - mean_x @ model.coef_) if fit_intercept else 0.0
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
