"""scikit-learn's least-squares models on gradfit's exact solvers: LinearRegression, Ridge, Lasso, ElasticNet.

Same constructor parameters, defaults, objectives and fitted attributes as the classes of
``sklearn.linear_model`` (swap the import, get the same model), solved by gradfit's exact least
squares (LinearRegression, Ridge: a closed form to 12+ digits) and certified coordinate descent
(Lasso, ElasticNet), with gradfit's ``gap_``, ``converged_``, ``model_``, :meth:`summary` and
:meth:`save` on top. Scaling of the objectives, ``n`` rows (or ``n = sum(sample_weight)``):

- ``LinearRegression``: ``||y - Xw - b||^2``
- ``Ridge(alpha)``: ``||y - Xw - b||^2 + alpha ||w||^2`` (``alpha`` per target allowed)
- ``Lasso(alpha)``: ``1/(2n) ||y - Xw - b||^2 + alpha ||w||_1``
- ``ElasticNet(alpha, l1_ratio)``: ``1/(2n) ||y - Xw - b||^2 + alpha l1_ratio ||w||_1
  + alpha (1 - l1_ratio)/2 ||w||^2``

Knobs that only steer scikit-learn's own algorithms (``copy_X``, ``n_jobs``, ``precompute``,
``selection``, ``random_state``, Ridge's ``solver``) are accepted and do not change the answer,
which is the exact optimum whichever is set. ``positive=True`` (bound constraints) is refused:
gradfit's solvers do not take bounds.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import MultiOutputMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from gradfit import api
from gradfit.estimators.linear import SPARSE_FORMATS, EstimatorConvergenceWarning, sample_weights, writeable
from gradfit.estimators.robust import Fitted
from gradfit.problem.penalties import Penalty

RIDGE_SOLVERS = ("auto", "svd", "cholesky", "lsqr", "sparse_cg", "sag", "saga", "lbfgs")


class _LeastSquares(MultiOutputMixin, Fitted):
    """Fits every column of ``y`` with the squared loss and the penalty ``_penalty(weight_sum, j)``."""

    solver_name = "auto"

    def _refuse_positive(self) -> None:
        if getattr(self, "positive", False):
            raise ValueError(f"{type(self).__name__}(positive=True): gradfit's solvers take no bound "
                             "constraints; use scikit-learn's class for a non-negative fit")

    def _fit_targets(self, X, y, sample_weight, tol: float, epochs: int, warm: bool = False):
        self._refuse_positive()
        target = getattr(y, "name", None)
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True, dtype=np.float64,
                             accept_sparse=SPARSE_FORMATS)
        X, w = writeable(X), sample_weights(sample_weight, X)
        Y = writeable(np.asarray(y, dtype=np.float64)).reshape(len(y), -1)
        weight_sum = float(len(Y) if w is None else w.sum())
        k, p = Y.shape[1], X.shape[1]
        previous = np.reshape(getattr(self, "coef_", np.zeros(0)), (-1, p)) if warm and hasattr(self, "coef_") else None
        models = []
        for j in range(k):
            init = "zeros"
            if previous is not None and previous.shape == (k, p):
                init = np.append(previous[j], np.reshape(self.intercept_, -1)[j] if self.fit_intercept and
                                 np.size(self.intercept_) == k else 0.0)
            models.append(api.fit(X, Y[:, j], loss="l2", penalty=self._penalty(weight_sum, j), sample_weight=w,
                                  fit_intercept=self.fit_intercept, solver=self.solver_name, tol=tol, epochs=epochs,
                                  init=init, record_path=False, warn=False))
        names = getattr(self, "feature_names_in_", None)
        for m in models:
            if names is not None:
                m.feature_names_in_ = [str(n) for n in names]
            if isinstance(target, str):
                m.target_name = target
        one = y.ndim == 1
        coef = np.stack([np.asarray(m.coef_, dtype=np.float64) for m in models])
        intercept = np.array([float(m.intercept_) for m in models])
        self.coef_ = coef[0] if one else coef
        if self.fit_intercept:
            self.intercept_ = float(intercept[0]) if one else intercept
        else:
            self.intercept_ = 0.0 if one else np.zeros(k)
        self.model_ = models[0] if one else models
        self._fit_data = (X, y, w)
        gaps = [float(m.gap_) for m in models]
        self.gap_ = float("nan") if any(np.isnan(gaps)) else max(gaps)
        self.converged_ = all(bool(m.converged_) for m in models)
        self.n_iter_ = [int(m.n_iter_) for m in models] if not one else int(models[0].n_iter_)
        if not self.converged_:
            warnings.warn(f"{type(self).__name__} did not converge (relative gap {self.gap_:.2g}, tol {tol:g}); "
                          "raise max_iter", EstimatorConvergenceWarning, stacklevel=3)
        return X, Y, w, models

    def predict(self, X: Any) -> np.ndarray:
        """``X @ coef_.T + intercept_``.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_targets)
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64, accept_sparse=SPARSE_FORMATS)
        out = X @ np.asarray(self.coef_).T
        return np.asarray(out) + self.intercept_

    def summary(self, X: Any = None, y: Any = None, sample_weight: Any = None, **kwargs):
        """Statistical summary (:mod:`gradfit.inference.summary`); one per target for a 2-D ``y``."""
        check_is_fitted(self)
        if X is None:
            X, y, sample_weight = self._fit_data
        Y = np.asarray(y).reshape(len(y), -1)
        models = self.model_ if isinstance(self.model_, list) else [self.model_]
        out = [m.summary(X, Y[:, j], sample_weight=sample_weight, fit_intercept=self.fit_intercept, **kwargs)
               for j, m in enumerate(models)]
        return out if isinstance(self.model_, list) else out[0]

    def save(self, path) -> None:
        """Write the fitted model as gradfit's JSON model file (one target only)."""
        check_is_fitted(self)
        if isinstance(self.model_, list):
            raise ValueError("save() writes one model; this fit has several targets: save est.model_[j] each")
        self.model_.save(path)


class LinearRegression(_LeastSquares):
    """Ordinary least squares, scikit-learn's ``LinearRegression``: ``min ||y - Xw - b||^2``.

    Solved exactly (to 12+ digits) by gradfit's least squares, dense or sparse X; a rank-deficient
    design gives the minimum-norm solution, as scikit-learn's.

    Parameters
    ----------
    fit_intercept : bool, default=True
    copy_X : bool, default=True
        Accepted (X is never changed).
    tol : float, default=1e-6
        Accepted (the solve is direct).
    n_jobs : int or None, default=None
        Accepted (torch's threads are used).
    positive : bool, default=False
        True is refused (no bound constraints in gradfit).

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

    def __init__(self, *, fit_intercept: bool = True, copy_X: bool = True, tol: float = 1e-06, n_jobs: Any = None,
                 positive: bool = False):
        self.fit_intercept = fit_intercept
        self.copy_X = copy_X
        self.tol = tol
        self.n_jobs = n_jobs
        self.positive = positive

    solver_name = "exact"

    def _penalty(self, weight_sum: float, j: int) -> Penalty:
        return Penalty(0.0, 0.0)

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
        X, Y, w, _ = self._fit_targets(X, y, sample_weight, tol=1e-8, epochs=1000)
        if not sp.issparse(X):
            Xc = X - (np.average(X, axis=0, weights=w) if self.fit_intercept else 0.0)
            if w is not None:
                Xc = Xc * np.sqrt(w)[:, None]
            self.singular_ = np.linalg.svd(Xc, compute_uv=False)
            self.rank_ = int(np.sum(self.singular_ > self.singular_.max(initial=0.0) * max(Xc.shape)
                                    * np.finfo(np.float64).eps))
        return self


class Ridge(_LeastSquares):
    """Ridge regression, scikit-learn's ``Ridge``: ``min ||y - Xw - b||^2 + alpha ||w||^2``.

    Solved exactly in closed form by gradfit's least squares, whatever ``solver`` names.

    Parameters
    ----------
    alpha : float or ndarray of shape (n_targets,), default=1.0
    fit_intercept : bool, default=True
    copy_X : bool, default=True
    max_iter : int or None, default=None
    tol : float, default=1e-4
    solver : {"auto", "svd", "cholesky", "lsqr", "sparse_cg", "sag", "saga", "lbfgs"}, default="auto"
        Accepted; every name gets the exact solution.
    positive : bool, default=False
        True is refused.
    random_state : int or None, default=None

    Attributes
    ----------
    coef_, intercept_, n_features_in_, feature_names_in_
    n_iter_ : None
        The solve is direct (as scikit-learn's for its direct solvers).
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

    solver_name = "auto"

    def _penalty(self, weight_sum: float, j: int) -> Penalty:
        a = float(np.ravel(self.alpha)[j] if np.ndim(self.alpha) else self.alpha)
        return Penalty(2.0 * a / weight_sum, 0.0)

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
        if self.solver not in RIDGE_SOLVERS:
            raise ValueError(f"The 'solver' parameter of Ridge must be a str among {set(RIDGE_SOLVERS)}. "
                             f"Got {self.solver!r} instead.")
        alpha = np.asarray(self.alpha, dtype=np.float64)
        if np.any(alpha < 0):
            raise ValueError(f"The 'alpha' parameter of Ridge must be a float in the range [0.0, inf) or an "
                             f"array-like. Got {self.alpha!r} instead.")
        if np.isscalar(sample_weight):
            sample_weight = np.full(np.shape(X)[0], float(sample_weight))
        n_targets = 1 if np.ndim(y) == 1 else np.shape(y)[1]
        if alpha.ndim and alpha.size not in (1, n_targets):
            raise ValueError(f"Number of targets and number of penalties do not correspond: {alpha.size} != "
                             f"{n_targets}")
        self._fit_targets(X, y, sample_weight, tol=1e-8, epochs=1000)
        self.n_iter_ = None
        # the name scikit-learn reports; every name gets the same exact answer (model_.solver says how)
        self.solver_ = self.solver if self.solver != "auto" else ("sparse_cg" if sp.issparse(X) else "cholesky")
        return self


class ElasticNet(_LeastSquares):
    """Elastic net, scikit-learn's ``ElasticNet``:
    ``min 1/(2n) ||y - Xw - b||^2 + alpha l1_ratio ||w||_1 + alpha (1 - l1_ratio)/2 ||w||^2``.

    Solved by gradfit's coordinate descent until its duality gap certifies ``tol``.

    Parameters
    ----------
    alpha : float, default=1.0
    l1_ratio : float, default=0.5
    fit_intercept : bool, default=True
    precompute, copy_X, random_state, selection
        Accepted; they do not change the answer.
    max_iter : int, default=1000
    tol : float, default=1e-4
        Stop when the certified relative objective gap is at most ``min(tol, 1e-12)``: scikit-learn's
        ``tol`` scales its duality gap by ``||y||^2 / n``, gradfit's by the objective, so the stricter
        of the two is kept.
    warm_start : bool, default=False
    positive : bool, default=False
        True is refused.

    Attributes
    ----------
    coef_, intercept_, n_iter_, n_features_in_, feature_names_in_
    dual_gap_ : float or ndarray
        Duality gap at the end, in the units of scikit-learn's objective.
    sparse_coef_ : scipy.sparse matrix
    gap_, converged_, model_

    Examples
    --------
    >>> from gradfit.sklearn import ElasticNet
    >>> ElasticNet(alpha=0.1).fit([[0.0], [1.0], [2.0]], [0.0, 1.0, 2.0]).coef_.round(6)
    array([0.860465])
    """

    def __init__(self, alpha: float = 1.0, *, l1_ratio: float = 0.5, fit_intercept: bool = True,
                 precompute: Any = False, max_iter: int = 1000, copy_X: bool = True, tol: float = 1e-4,
                 warm_start: bool = False, positive: bool = False, random_state: Any = None,
                 selection: str = "cyclic"):
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.precompute = precompute
        self.max_iter = max_iter
        self.copy_X = copy_X
        self.tol = tol
        self.warm_start = warm_start
        self.positive = positive
        self.random_state = random_state
        self.selection = selection

    def _penalty(self, weight_sum: float, j: int) -> Penalty:
        return Penalty(2.0 * float(self.alpha), float(self.l1_ratio))

    def fit(self, X: Any, y: Any, sample_weight: Any = None, check_input: bool = True) -> "ElasticNet":
        """Fit the model.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
        sample_weight : float or array-like of shape (n_samples,), default=None
        check_input : bool, default=True
            Accepted (the input is always checked).

        Returns
        -------
        self
        """
        name = type(self).__name__
        if not (np.isscalar(self.alpha) and self.alpha >= 0):
            raise ValueError(f"The 'alpha' parameter of {name} must be a float in the range [0.0, inf). "
                             f"Got {self.alpha!r} instead.")
        if not 0 <= self.l1_ratio <= 1:
            raise ValueError(f"The 'l1_ratio' parameter of {name} must be a float in the range [0.0, 1.0]. "
                             f"Got {self.l1_ratio!r} instead.")
        if self.selection not in ("cyclic", "random"):
            raise ValueError(f"The 'selection' parameter of {name} must be a str among {{'cyclic', 'random'}}. "
                             f"Got {self.selection!r} instead.")
        if np.isscalar(sample_weight):
            sample_weight = np.full(np.shape(X)[0], float(sample_weight))
        X, Y, w, models = self._fit_targets(X, y, sample_weight, tol=min(float(self.tol), 1e-12),
                                            epochs=int(self.max_iter), warm=self.warm_start)
        gaps = np.array([float(m.gap_) * abs(float(m.final_loss_)) / 2 for m in models])
        self.dual_gap_ = float(gaps[0]) if np.ndim(y) == 1 else gaps
        return self

    @property
    def sparse_coef_(self):
        """``coef_`` as a scipy.sparse CSR matrix."""
        return sp.csr_matrix(np.atleast_2d(self.coef_))


class Lasso(ElasticNet):
    """The lasso, scikit-learn's ``Lasso``: ``min 1/(2n) ||y - Xw - b||^2 + alpha ||w||_1``.

    ``ElasticNet`` with ``l1_ratio=1``; the same parameters otherwise (see :class:`ElasticNet`).

    Parameters
    ----------
    alpha : float, default=1.0
    fit_intercept : bool, default=True
    precompute, copy_X, random_state, selection
        Accepted; they do not change the answer.
    max_iter : int, default=1000
    tol : float, default=1e-4
    warm_start : bool, default=False
    positive : bool, default=False
        True is refused.

    Attributes
    ----------
    coef_, intercept_, n_iter_, dual_gap_, sparse_coef_, n_features_in_, feature_names_in_
    gap_, converged_, model_

    Examples
    --------
    >>> from gradfit.sklearn import Lasso
    >>> Lasso(alpha=0.1).fit([[0.0], [1.0], [2.0]], [0.0, 1.0, 2.0]).coef_.round(6)
    array([0.85])
    """

    def __init__(self, alpha: float = 1.0, *, fit_intercept: bool = True, precompute: Any = False,
                 copy_X: bool = True, max_iter: int = 1000, tol: float = 1e-4, warm_start: bool = False,
                 positive: bool = False, random_state: Any = None, selection: str = "cyclic"):
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.precompute = precompute
        self.copy_X = copy_X
        self.max_iter = max_iter
        self.tol = tol
        self.warm_start = warm_start
        self.positive = positive
        self.random_state = random_state
        self.selection = selection

    l1_ratio = 1.0


__all__ = ["LinearRegression", "Ridge", "Lasso", "ElasticNet"]
