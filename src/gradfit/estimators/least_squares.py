"""scikit-learn's ``LinearRegression`` and ``Ridge`` on gradfit's exact solvers.

Same parameters, defaults, objectives, fitted attributes and errors as ``sklearn.linear_model``'s
(``n`` rows, or ``n = sum(sample_weight)``):

- ``LinearRegression``: ``||y - Xw - b||^2``; ``positive=True`` adds ``w >= 0`` (non-negative least
  squares, by projected coordinate descent with a certified duality gap).
- ``Ridge(alpha)``: ``||y - Xw - b||^2 + alpha ||w||^2`` (``alpha`` per target allowed); ``positive=True``
  (with ``solver="auto"`` or ``"lbfgs"``, as scikit-learn) adds ``w >= 0``, fitted like NNLS.

Without ``positive`` the answer is the exact optimum (closed form to 12+ digits) whichever ``solver``
names; a rank-deficient design gives the minimum-norm coefficients in the original units, as
scikit-learn's ``lstsq``/SVD do.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from gradfit.estimators.dropins import LeastSquaresBase, centred, numeric_rank, row_space_projection
from gradfit.problem.penalties import Penalty

RIDGE_SOLVERS = ("auto", "svd", "cholesky", "lsqr", "sparse_cg", "sag", "saga", "lbfgs")
DENSE_WIDE_MAX = 20_000_000  # entries of a wide sparse X densified to find its row space (160 MB)
POSITIVE_EPOCHS = 15000  # scikit-learn's lbfgs default; coordinate descent's epochs cost less


def _min_norm(est: LeastSquaresBase, X, w: np.ndarray | None, Xc=None, Vt=None, s=None) -> None:
    """Replace ``coef_`` by the minimum-norm coefficients with the same fit (rank-deficient X)."""
    if Xc is None:
        if sp.issparse(X) and X.shape[0] * X.shape[1] > DENSE_WIDE_MAX:
            return  # too big to densify: the exact solver's answer stays (its CG route's is the minimum-norm one)
        Xc = centred(X, w, est.fit_intercept)
    coef = np.reshape(np.asarray(est.coef_, dtype=np.float64), (-1, X.shape[1]))
    new, rank = row_space_projection(Xc, coef, s, Vt)
    if new is coef:
        return
    Xd = X.toarray() if sp.issparse(X) else X
    mean = np.average(Xd, axis=0, weights=w) if est.fit_intercept else np.zeros(X.shape[1])
    intercept = np.reshape(np.asarray(est.intercept_, dtype=np.float64), -1) + (coef - new) @ mean
    est._set_coef(new, np.broadcast_to(intercept, (len(new),)).copy())


class LinearRegression(LeastSquaresBase):
    """Ordinary least squares, scikit-learn's ``LinearRegression``: ``min ||y - Xw - b||^2``.

    Solved exactly (to 12+ digits) by gradfit's least squares, dense or sparse X; a rank-deficient
    design gives the minimum-norm solution, as scikit-learn's.

    Parameters
    ----------
    fit_intercept : bool, default=True
    copy_X : bool, default=True
        Accepted (X is never changed, whichever it is).
    tol : float, default=1e-6
        Accepted (the solve is direct; ``positive`` fits are certified to ``min(tol, 1e-10)``).
    n_jobs : int or None, default=None
        Accepted (torch's threads are used).
    positive : bool, default=False
        Constrain ``w >= 0`` (non-negative least squares; dense X only, as scikit-learn).

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,) or (n_targets, n_features)
    intercept_ : float or ndarray of shape (n_targets,)
    rank_ : int
        Rank of X (dense X only).
    singular_ : ndarray of shape (min(n_samples, n_features),)
        Singular values of X, centred when ``fit_intercept`` (dense X only).
    n_features_in_, feature_names_in_
    gap_, converged_, model_
        gradfit's certificate, its verdict and the :class:`gradfit.LinearModel` (a list for 2-D y).

    Examples
    --------
    >>> from gradfit.sklearn import LinearRegression
    >>> LinearRegression().fit([[0.0], [1.0], [2.0]], [1.0, 3.0, 5.0]).coef_
    array([2.])
    """

    ravel_single_target = False

    def __init__(self, *, fit_intercept: bool = True, copy_X: bool = True, tol: float = 1e-06, n_jobs: Any = None,
                 positive: bool = False):
        self.fit_intercept = fit_intercept
        self.copy_X = copy_X
        self.tol = tol
        self.n_jobs = n_jobs
        self.positive = positive

    def _penalty(self, weight_sum: float, j: int) -> Penalty:
        return Penalty(0.0, 0.0, positive=bool(self.positive))

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> "LinearRegression":
        """Fit the model.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : LinearRegression
        """
        if self.positive and sp.issparse(X):
            raise TypeError("Sparse data was passed for X, but dense data is required (positive=True, as "
                            "scikit-learn's LinearRegression). Use X.toarray() to convert to a dense numpy array.")
        if self.positive:
            X, Y, w, _ = self._fit_targets(X, y, sample_weight, tol=min(float(self.tol), 1e-10),
                                           epochs=POSITIVE_EPOCHS, solver="cd")
        else:
            X, Y, w, _ = self._fit_targets(X, y, sample_weight, tol=1e-8, epochs=1000, solver="exact")
        if not sp.issparse(X):
            Xc = centred(X, w, self.fit_intercept)
            # tall X: the singular values and right vectors of X are R's (X = QR), at a QR's cost
            _, self.singular_, Vt = np.linalg.svd(np.linalg.qr(Xc, mode="r") if Xc.shape[0] > 2 * Xc.shape[1] else Xc,
                                                  full_matrices=False)
            self.rank_ = numeric_rank(self.singular_, Xc.shape)
            if self.rank_ < X.shape[1] and not self.positive:
                _min_norm(self, X, w, Xc, Vt, self.singular_)
        return self


class Ridge(LeastSquaresBase):
    """Ridge regression, scikit-learn's ``Ridge``: ``min ||y - Xw - b||^2 + alpha ||w||^2``.

    Solved exactly in closed form by gradfit's least squares; with ``positive=True`` by projected
    coordinate descent to a certified duality gap.

    Parameters
    ----------
    alpha : float or ndarray of shape (n_targets,), default=1.0
    fit_intercept : bool, default=True
    copy_X : bool, default=True
        Accepted (X is never changed).
    max_iter : int or None, default=None
        Epochs of coordinate descent for ``positive=True`` (default 15000); the direct solves ignore it.
    tol : float, default=1e-4
        ``positive=True``: certified relative gap ``min(tol, 1e-10)``; the direct solves are exact.
    solver : {"auto", "svd", "cholesky", "lsqr", "sparse_cg", "sag", "saga", "lbfgs"}, default="auto"
        scikit-learn's names and rules: every name gets the exact solution, ``"lbfgs"`` only with
        ``positive=True``, ``positive=True`` only with ``"auto"``/``"lbfgs"``, and sparse X with an
        intercept not with ``"svd"``, ``"cholesky"`` or ``"saga"`` (scikit-learn's ValueErrors).
    positive : bool, default=False
        Constrain ``w >= 0``.
    random_state : int or None, default=None

    Attributes
    ----------
    coef_, intercept_, n_features_in_, feature_names_in_
    n_iter_ : None or ndarray
        None for the direct solves (as scikit-learn's); coordinate-descent epochs per target for ``positive``.
    solver_ : str
        The solver name scikit-learn would report (``solver``, or what ``"auto"`` resolves to); the
        answer is the exact one whichever it is, and ``model_.solver`` names gradfit's method.
    gap_, converged_, model_

    Examples
    --------
    >>> from gradfit.sklearn import Ridge
    >>> Ridge(alpha=1.0).fit([[0.0], [1.0], [2.0]], [0.0, 1.0, 2.0]).coef_
    array([0.66666667])
    """

    def __init__(self, alpha: Any = 1.0, *, fit_intercept: bool = True, copy_X: bool = True, max_iter: int | None = None,
                 tol: float = 1e-4, solver: str = "auto", positive: bool = False, random_state: Any = None):
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.copy_X = copy_X
        self.max_iter = max_iter
        self.tol = tol
        self.solver = solver
        self.positive = positive
        self.random_state = random_state

    def _penalty(self, weight_sum: float, j: int) -> Penalty:
        a = float(np.ravel(self.alpha)[j] if np.ndim(self.alpha) else self.alpha)
        return Penalty(2.0 * a / weight_sum, 0.0, positive=bool(self.positive))

    def _not_converged(self, tol: float) -> str:
        return (f"Ridge(positive=True): the lbfgs solver did not converge (gradfit runs projected coordinate "
                f"descent for it; relative gap {self.gap_:.2g}, tol {tol:g}); raise max_iter")

    def _check_solver(self, X) -> str:
        """scikit-learn's refusals, then the solver name it reports."""
        if self.solver not in RIDGE_SOLVERS:
            raise ValueError(f"The 'solver' parameter of Ridge must be a str among {set(RIDGE_SOLVERS)}. "
                             f"Got {self.solver!r} instead.")
        if self.solver == "lbfgs" and not self.positive:
            raise ValueError("'lbfgs' solver can be used only when positive=True. Please use another solver.")
        if self.positive:
            if self.solver not in ("auto", "lbfgs"):
                raise ValueError(f"solver='{self.solver}' does not support positive fitting. Please set the solver "
                                 "to 'auto' or 'lbfgs', or set `positive=False`")
            return "lbfgs"
        if sp.issparse(X) and self.fit_intercept and self.solver not in ("auto", "lbfgs", "lsqr", "sag", "sparse_cg"):
            raise ValueError(f"solver='{self.solver}' does not support fitting the intercept on sparse data. Please "
                             "set the solver to 'auto' or 'lsqr', 'sparse_cg', 'sag', 'lbfgs' or set "
                             "`fit_intercept=False`")
        if self.solver == "svd" and sp.issparse(X):
            raise TypeError("SVD solver does not support sparse inputs currently")
        if self.solver != "auto":
            return self.solver
        return "sparse_cg" if sp.issparse(X) else "cholesky"

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> "Ridge":
        """Fit the model.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
        sample_weight : float or array-like of shape (n_samples,), default=None

        Returns
        -------
        self : Ridge
        """
        solver_name = self._check_solver(X)
        alpha = np.asarray(self.alpha, dtype=np.float64)
        if np.any(alpha < 0):
            raise ValueError(f"The 'alpha' parameter of Ridge must be a float in the range [0.0, inf) or an "
                             f"array-like. Got {self.alpha!r} instead.")
        n_targets = 1 if np.ndim(y) == 1 else np.shape(y)[1]
        if alpha.ndim and alpha.size not in (1, n_targets):
            raise ValueError(f"Number of targets and number of penalties do not correspond: {alpha.size} != "
                             f"{n_targets}")
        if self.positive:
            self._fit_targets(X, y, sample_weight, tol=min(float(self.tol), 1e-10), solver="cd",
                              epochs=int(self.max_iter or POSITIVE_EPOCHS))
            self.n_iter_ = np.atleast_1d(self.n_iter_)
        else:
            X, Y, w, _ = self._fit_targets(X, y, sample_weight, tol=1e-8, epochs=1000, solver="exact")
            self.n_iter_ = None
            if X.shape[1] >= X.shape[0]:  # wide: the answer is unique only in the row space of X
                _min_norm(self, X, w)
        self.solver_ = solver_name
        return self


__all__ = ["LinearRegression", "Ridge"]
