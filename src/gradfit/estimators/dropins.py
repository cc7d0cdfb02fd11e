"""What scikit-learn's least-squares drop-ins share: one squared-loss fit per target column.

The classes are in :mod:`.least_squares` (``LinearRegression``, ``Ridge``) and
:mod:`.coordinate_descent` (``Lasso``, ``ElasticNet``); each says its objective and its penalty,
this base fits every column of ``y`` with gradfit's ``fit`` and sets scikit-learn's attributes
(``coef_`` and ``intercept_`` in the float type of ``X``: float32 in, float32 out) plus gradfit's
``gap_``, ``converged_``, ``model_``, :meth:`summary` and :meth:`save`. The computation itself runs
in float64 whatever the input type.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import MultiOutputMixin
from sklearn.utils.validation import check_is_fitted

from gradfit import api
from gradfit.estimators.linear import EstimatorConvergenceWarning, fit_inputs, label_models
from gradfit.estimators.robust import Fitted
from gradfit.problem.penalties import Penalty

FLOATS = [np.float64, np.float32]  # scikit-learn's linear models keep float32 input in float32


class LeastSquaresBase(MultiOutputMixin, Fitted):
    """Fits every column of ``y`` with the squared loss and the penalty ``_penalty(weight_sum, j)``.

    Subclasses set ``ravel_single_target`` (a one-column 2-D ``y`` gives a 1-D ``coef_``, as
    scikit-learn's Ridge and ElasticNet do; LinearRegression keeps ``(1, p)``)."""

    predict_dtypes = FLOATS  # predict in X's float type (LinearPredictor.predict)

    ravel_single_target = True

    def _penalty(self, weight_sum: float, j: int) -> Penalty:
        raise NotImplementedError

    def _not_converged(self, tol: float) -> str:
        return (f"{type(self).__name__} did not converge (relative gap {self.gap_:.2g}, tol {tol:g}); "
                "raise max_iter")

    def _fit_targets(self, X, y, sample_weight, *, tol: float, epochs: int, solver: str = "auto", warm: bool = False):
        X, y, w, target = fit_inputs(self, X, y, sample_weight, dtype=FLOATS)
        self._dtype = X.dtype
        X = X.astype(np.float64, copy=False) if X.dtype != np.float64 else X
        Y = y.reshape(len(y), -1)
        weight_sum = float(len(Y) if w is None else w.sum())
        k, p = Y.shape[1], X.shape[1]
        previous = self._previous(k, p) if warm else None
        models = []
        for j in range(k):
            init = "zeros" if previous is None else previous[j]
            models.append(api.fit(X, Y[:, j], loss="l2", penalty=self._penalty(weight_sum, j), sample_weight=w,
                                  fit_intercept=self.fit_intercept, solver=solver, tol=tol, epochs=epochs,
                                  init=init, record_path=False, warn=False))
        label_models(self, models, target)
        self.model_ = models[0] if y.ndim == 1 else models
        self._fit_data = (X, y, w)
        gaps = [float(m.gap_) for m in models]
        self.gap_ = float("nan") if any(np.isnan(gaps)) else max(gaps)
        self.converged_ = all(bool(m.converged_) for m in models)
        self.n_iter_ = int(models[0].n_iter_) if y.ndim == 1 else [int(m.n_iter_) for m in models]
        self._y_ndim = y.ndim
        self._set_coef(np.stack([np.asarray(m.coef_, dtype=np.float64) for m in models]),
                       np.array([float(m.intercept_) for m in models]))
        if not self.converged_:
            warnings.warn(self._not_converged(tol), EstimatorConvergenceWarning, stacklevel=3)
        return X, Y, w, models

    def _previous(self, k: int, p: int) -> np.ndarray | None:
        """The last fit's ``[w, b]`` per target, for a warm start (None when there is none that fits)."""
        if not hasattr(self, "coef_"):
            return None
        coef = np.reshape(np.asarray(self.coef_, dtype=np.float64), (-1, p))
        b = np.reshape(np.asarray(self.intercept_, dtype=np.float64), -1)
        if coef.shape != (k, p):
            return None
        b = b if self.fit_intercept and b.size == k else np.zeros(k)
        return np.column_stack([coef, b])

    def _set_coef(self, coef: np.ndarray, intercept: np.ndarray) -> None:
        """``coef_`` (k, p) and ``intercept_`` (k,) in scikit-learn's shapes (for the ``y`` of the last
        fit) and X's float type."""
        dt, y_ndim = self._dtype, self._y_ndim
        if not self.fit_intercept:
            intercept = np.zeros_like(intercept)
        if y_ndim == 1:
            self.coef_ = coef[0].astype(dt)
            self.intercept_ = dt.type(intercept[0])  # np.float64 is a float, with a shape () as scikit-learn's
        else:
            self.coef_ = (coef[0] if len(coef) == 1 and self.ravel_single_target else coef).astype(dt)
            self.intercept_ = intercept.astype(dt)
        models = self.model_ if isinstance(self.model_, list) else [self.model_]
        for m, w, b in zip(models, coef, intercept):  # the models carry the reported coefficients
            m.coef_, m.intercept_ = np.asarray(w, dtype=np.float64), float(b)

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


def centred(X, w: np.ndarray | None, fit_intercept: bool) -> np.ndarray:
    """Dense ``sqrt(s) (X - mean_s)`` (no centring without an intercept): the rows whose span the
    coefficients of a least-squares or ridge fit live in."""
    Xd = X.toarray() if sp.issparse(X) else np.asarray(X)
    Xc = Xd - (np.average(Xd, axis=0, weights=w) if fit_intercept else 0.0)
    return Xc if w is None else Xc * np.sqrt(w)[:, None]


def numeric_rank(s: np.ndarray, shape: tuple[int, int]) -> int:
    """Rank from singular values ``s`` of a ``shape`` matrix, with numpy's ``matrix_rank`` tolerance."""
    return int(np.sum(s > s.max(initial=0.0) * max(shape) * np.finfo(np.float64).eps))


def row_space_projection(Xc: np.ndarray, coef: np.ndarray, s: np.ndarray | None = None, Vt: np.ndarray | None = None):
    """``coef`` (k, p) projected onto the row space of ``Xc``: ``X_c coef'`` (the fit) is unchanged and
    ``||coef||`` is the least among all coefficients with that fit, scikit-learn's minimum-norm answer
    when the design is rank-deficient (the fit stays the same, so the objective and its certificate
    do too: any penalty ``||w||^2`` only drops). Returns ``(coef, rank)``."""
    if Vt is None:
        _, s, Vt = np.linalg.svd(Xc, full_matrices=False)
    rank = numeric_rank(s, Xc.shape)
    if rank == Xc.shape[1]:
        return coef, rank
    V = Vt[:rank]
    return (coef @ V.T) @ V, rank
