"""scikit-learn's ``ElasticNet`` and ``Lasso`` on gradfit's certified coordinate descent.

``ElasticNet(alpha, l1_ratio)``: ``1/(2n) ||y - Xw - b||^2 + alpha l1_ratio ||w||_1
+ alpha (1 - l1_ratio)/2 ||w||^2`` (``n`` rows, or ``n = sum(sample_weight)``); ``Lasso`` is
``l1_ratio=1``; ``positive=True`` adds ``w >= 0`` (each coordinate step projected). The fit stops
when gradfit's duality gap certifies ``min(tol, 1e-12)`` relative to the objective; ``dual_gap_`` is
scikit-learn's own gap (its dual point, its units), and a warm start that already meets
scikit-learn's stopping rule takes no epoch (``n_iter_ = 0``), as there.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp

from gradfit.estimators.dropins import FLOATS, LeastSquaresBase
from gradfit.estimators.linear import fit_inputs
from gradfit.exceptions import DivergenceError
from gradfit.problem.penalties import Penalty

NON_FINITE = ("Coordinate descent iterations resulted in non-finite parameter values. The input data may contain "
              "large values and need to be preprocessed.")  # scikit-learn's words


def sklearn_dual_gap(X, y: np.ndarray, sw: np.ndarray | None, coef: np.ndarray, alpha: float, l1_ratio: float,
                     fit_intercept: bool, positive: bool) -> tuple[float, float, float]:
    """``(dual gap, primal, ||y_c||^2 / n)`` of scikit-learn's elastic net at ``coef`` with the optimal
    intercept, computed as ``sklearn.linear_model``'s coordinate descent does (weights scaled to sum
    to ``n``, rows centred and multiplied by their root weight; ``dual gap`` divided by ``n``). Its
    dual point is feasible, so ``gap / primal`` is a valid relative certificate as well."""
    n = X.shape[0]
    s = np.ones(n) if sw is None else sw * (n / sw.sum())
    mx = (s @ X) / n if fit_intercept else np.zeros(X.shape[1])
    mx = np.asarray(mx).ravel()
    my = float(s @ y) / n if fit_intercept else 0.0
    yc = y - my
    R = yc - (np.asarray(X @ coef).ravel() - float(mx @ coef))
    sR = s * R
    l1, l2 = alpha * l1_ratio * n, alpha * (1.0 - l1_ratio) * n
    XtA = np.asarray(X.T @ sR).ravel() - mx * sR.sum() - l2 * coef
    dual_norm = float(XtA.max(initial=0.0)) if positive else float(np.abs(XtA).max(initial=0.0))
    r2, ry = float(R @ sR), float(sR @ yc)
    const = 1.0
    if dual_norm > l1:
        const = l1 / dual_norm
    elif l2 == 0.0 and dual_norm > 0.0 and r2 > 0.0:  # the lasso's best feasible multiple of R (>= 1)
        const = min(max(ry / r2, 1.0), l1 / dual_norm)
    gap = 0.5 * r2 * (1.0 + const * const)
    w2 = float(coef @ coef)
    gap += l1 * float(np.abs(coef).sum()) - const * ry + 0.5 * l2 * (1.0 + const * const) * w2
    primal = 0.5 * r2 / n + alpha * l1_ratio * float(np.abs(coef).sum()) + 0.5 * alpha * (1 - l1_ratio) * w2
    return gap / n, primal, float(yc @ (s * yc)) / n


def _check_gram(gram_in, X, sw, fit_intercept: bool, X_dtype=np.float64) -> None:
    """scikit-learn's handling of a precomputed Gram matrix: warned about and recomputed when X is
    centred for the intercept, otherwise checked on its diagonal and one entry (ValueError if wrong).
    gradfit computes its own Gram either way (the same numbers, so the same answer)."""
    gram = np.asarray(gram_in, dtype=np.float64)
    n, p = X.shape
    s = np.ones(n) if sw is None else sw * (n / sw.sum())
    offset = np.asarray((s @ X) / n).ravel()
    if fit_intercept and not np.allclose(offset, 0.0):
        warnings.warn("Gram matrix was provided but X was centered to fit intercept: recomputing Gram matrix.",
                      UserWarning, stacklevel=3)
        return
    if gram.shape != (p, p):
        raise ValueError(f"Gram matrix passed in via 'precompute' has shape {gram.shape}, expected {(p, p)}")
    Xd = X.toarray() if sp.issparse(X) else X
    Xr = (Xd - (offset if fit_intercept else 0.0)) * np.sqrt(s)[:, None]
    i, j = p // 2, (p // 2 + 1) % p
    rtol = 1e-4 if np.asarray(gram_in).dtype == np.float32 or X_dtype == np.float32 else 1e-7  # as scikit-learn
    for a, b in ((i, i), (i, j)):
        expected = float(Xr[:, a] @ Xr[:, b])
        if not np.isclose(expected, gram[a, b], rtol=rtol, atol=1e-5):
            raise ValueError("Gram matrix passed in via 'precompute' parameter did not pass validation when a single "
                             f"element was checked - please check that it was computed properly. For element ({a},{b}) "
                             f"we computed {expected} but the user-supplied value was {gram[a, b]}.")


class ElasticNet(LeastSquaresBase):
    """Elastic net, scikit-learn's ``ElasticNet``:
    ``min 1/(2n) ||y - Xw - b||^2 + alpha l1_ratio ||w||_1 + alpha (1 - l1_ratio)/2 ||w||^2``.

    Solved by gradfit's coordinate descent until its duality gap certifies ``tol``.

    Parameters
    ----------
    alpha : float, default=1.0
    l1_ratio : float, default=0.5
    fit_intercept : bool, default=True
    precompute : bool, "auto" or ndarray, default=False
        A Gram matrix is checked as scikit-learn does (recomputed, with a warning, when X is centred for
        the intercept; a wrong one is a ValueError); gradfit uses its own Gram (``p <= 2000``) or the
        columns either way.
    max_iter : int, default=1000
    copy_X : bool, default=True
        Accepted (X is never changed).
    tol : float, default=1e-4
        Stop when the certified relative objective gap is at most ``min(tol, 1e-12)``: scikit-learn's
        ``tol`` scales its duality gap by ``||y||^2 / n``, gradfit's by the objective, so the stricter
        of the two is kept.
    warm_start : bool, default=False
        Start from the last fit; no epoch runs when it already meets scikit-learn's rule
        (``dual_gap_ <= tol ||y_c||^2 / n``).
    positive : bool, default=False
        Constrain ``w >= 0``.
    random_state, selection
        Accepted; they do not change the answer (cyclic order always).

    Attributes
    ----------
    coef_, intercept_, n_iter_, n_features_in_, feature_names_in_
    dual_gap_ : float or ndarray
        scikit-learn's duality gap at the end, in the units of its objective.
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
        return Penalty(2.0 * float(self.alpha), float(self.l1_ratio), positive=bool(self.positive))

    def _check_params(self) -> None:
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
        if self.alpha == 0:
            warnings.warn("With alpha=0, this algorithm does not converge well. You are advised to use the "
                          "LinearRegression estimator (gradfit solves it exactly all the same)", UserWarning,
                          stacklevel=3)

    def fit(self, X: Any, y: Any, sample_weight: Any = None, check_input: bool = True) -> "ElasticNet":
        """Fit the model.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
        sample_weight : float or array-like of shape (n_samples,), default=None
        check_input : bool, default=True
            Accepted (the input is always checked: gradfit takes any memory layout).

        Returns
        -------
        self
        """
        self._check_params()
        if self.warm_start and self._warm_fit_holds(X, y, sample_weight):
            return self
        tol = min(float(self.tol), 1e-12)
        try:
            X, Y, w, models = self._fit_targets(X, y, sample_weight, tol=tol, epochs=int(self.max_iter),
                                                warm=self.warm_start)
        except DivergenceError as exc:
            raise ValueError(NON_FINITE) from exc
        if not np.all(np.isfinite(self.coef_)):
            raise ValueError(NON_FINITE)
        if not isinstance(self.precompute, (bool, str)) and self.precompute is not None:
            _check_gram(self.precompute, X, w, self.fit_intercept, self._dtype)
        coef = np.reshape(np.asarray(self.coef_, dtype=np.float64), (Y.shape[1], -1))
        gaps = np.array([sklearn_dual_gap(X, Y[:, j], w, coef[j], float(self.alpha), float(self.l1_ratio),
                                          self.fit_intercept, bool(self.positive))[0] for j in range(Y.shape[1])])
        self.dual_gap_ = float(gaps[0]) if np.ndim(y) == 1 else gaps
        return self

    def _warm_fit_holds(self, X, y, sample_weight) -> bool:
        """scikit-learn checks its gap before the first epoch: the last fit, if it meets the rule on
        this data, is kept (``n_iter_ = 0``, intercept re-centred) and certified by that gap."""
        if not hasattr(self, "coef_") or np.ndim(y) != 1 or np.ndim(self.coef_) != 1:
            return False
        Xv, yv, w, _ = fit_inputs(self, X, y, sample_weight, dtype=FLOATS)
        if Xv.shape[1] != np.size(self.coef_):
            return False
        self._dtype = Xv.dtype
        Xv = Xv.astype(np.float64, copy=False)
        coef = np.asarray(self.coef_, dtype=np.float64)
        gap, primal, yy = sklearn_dual_gap(Xv, yv, w, coef, float(self.alpha), float(self.l1_ratio),
                                           self.fit_intercept, bool(self.positive))
        if not gap <= float(self.tol) * yy:
            return False
        n = len(yv)
        s = np.ones(n) if w is None else w
        b = float(s @ (yv - np.asarray(Xv @ coef).ravel())) / float(s.sum()) if self.fit_intercept else 0.0
        self._fit_data = (Xv, yv, w)
        self.n_iter_, self.dual_gap_ = 0, gap
        self.gap_ = gap / primal if primal > 0 else 0.0
        self.converged_ = self.gap_ <= float(self.tol)
        self._y_ndim = 1
        self._set_coef(coef[None, :], np.array([b]))
        return True

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
        As :class:`ElasticNet`.
    max_iter : int, default=1000
    tol : float, default=1e-4
    warm_start : bool, default=False
    positive : bool, default=False
        Constrain ``w >= 0``.

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


__all__ = ["ElasticNet", "Lasso"]
