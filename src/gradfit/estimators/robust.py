"""scikit-learn's robust regressors on gradfit's exact solvers: :class:`QuantileRegressor`, :class:`HuberRegressor`.

Same parameters, defaults and meaning as ``sklearn.linear_model.QuantileRegressor`` and
``HuberRegressor`` (so swapping the import gives the same model), the same fitted attributes, and
gradfit's on top: ``gap_`` (certified relative objective gap), ``converged_``, ``model_`` (the
:class:`gradfit.LinearModel`), :meth:`summary` and :meth:`save`.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from gradfit import api
from gradfit.estimators.linear import (SPARSE_FORMATS, EstimatorConvergenceWarning, LinearPredictor, fit_inputs,
                                       label_models)
from gradfit.problem.losses import get_loss
from gradfit.problem.penalties import Penalty

HIGHS = ("highs", "highs-ds", "highs-ipm")
GONE = ("interior-point", "revised simplex")  # scipy >= 1.11 has neither


def check_param(estimator: Any, name: str, ok: bool, what: str) -> None:
    """scikit-learn's error for a parameter outside its range (``what``: e.g. "a float in the range [0, inf)")."""
    if not ok:
        raise ValueError(f"The {name!r} parameter of {type(estimator).__name__} must be {what}. "
                         f"Got {getattr(estimator, name)!r} instead.")


class Fitted(LinearPredictor, RegressorMixin, BaseEstimator):
    """Fitted-model plumbing shared by the drop-ins: attributes from a LinearModel, predict, extras.
    A subclass checks its parameters and fits in ``_fit`` (or overrides :meth:`fit`)."""

    def fit(self, X: Any, y: Any, sample_weight: Any = None):
        """Fit the model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : object
            The fitted estimator.
        """
        self._fit(X, y, sample_weight)
        return self

    def _fit(self, X: Any, y: Any, sample_weight: Any) -> None:
        raise NotImplementedError

    def _fit_model(self, X, y, sample_weight, **fit_kwargs):
        X, y, w, target = fit_inputs(self, X, y, sample_weight, multi_output=False)
        weight_sum = float(len(y) if w is None else w.sum())
        # a callable setting is a function of the weight sum (scikit-learn's unnormalized penalties)
        settings = {k: v(weight_sum) if callable(v) else v for k, v in fit_kwargs.items()}
        model = api.fit(X, y, sample_weight=w, fit_intercept=self.fit_intercept, record_path=False, warn=False,
                        **settings)
        label_models(self, [model], target)
        self.model_ = model
        self._fit_data = (X, y, w)  # for summary() without arguments; not pickled (see __getstate__)
        self.coef_ = np.asarray(model.coef_, dtype=np.float64)
        self.intercept_ = float(model.intercept_) if self.fit_intercept else 0.0
        self.n_iter_ = int(model.n_iter_)
        self.gap_ = float(model.gap_)
        self.converged_ = bool(model.converged_)
        self.history_ = model.history_
        return X, y, w

    def _warn_unconverged(self, what: str) -> None:
        if not self.converged_:
            warnings.warn(f"{type(self).__name__} ({self.model_.solver}) did not converge: {what} (relative gap "
                          f"{self.gap_:.2g}, tol {getattr(self, 'tol', 1e-8):g})", EstimatorConvergenceWarning,
                          stacklevel=3)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # scipy.sparse X is fitted without densifying
        return tags

    def summary(self, X: Any = None, y: Any = None, sample_weight: Any = None, **kwargs):
        """Statistical summary of the fit (:mod:`gradfit.inference.summary`), like statsmodels' ``summary()``.

        Without ``X, y`` it uses the rows of the last :meth:`fit` (kept by reference, never pickled).
        ``kwargs``: ``level``, ``cov_type``, ``use_t``.
        """
        check_is_fitted(self)
        if X is None:
            if getattr(self, "_fit_data", None) is None:
                raise ValueError("summary() needs the training rows: pass X, y (on a pickled estimator)")
            X, y, sample_weight = self._fit_data
        else:
            X, y = validate_data(self, X, y, reset=False, y_numeric=True, dtype=np.float64,
                                 accept_sparse=SPARSE_FORMATS)
        return self.model_.summary(X, y, sample_weight=sample_weight, fit_intercept=self.fit_intercept, **kwargs)

    def __getstate__(self):
        state = dict(super().__getstate__())
        state.pop("_fit_data", None)  # a pickled estimator does not carry its training rows
        return state

    def save(self, path) -> None:
        """Write the fitted model as gradfit's JSON model file (:meth:`gradfit.LinearModel.save`)."""
        check_is_fitted(self)
        self.model_.save(path)


class QuantileRegressor(Fitted):
    """Linear quantile regression, scikit-learn's ``QuantileRegressor`` solved by gradfit's interior point.

    Minimizes ``sum_i s_i rho_q(y_i - x_i.w - b) / sum_i s_i + alpha ||w||_1`` with the pinball
    loss ``rho_q(r) = r (q - 1{r < 0})``. The answer is a vertex of the linear program (``p + 1`` zero
    residuals where the optimum is a vertex, as HiGHS returns) with a certified gap.

    Parameters
    ----------
    quantile : float, default=0.5
        The quantile ``q`` the model predicts, in (0, 1).
    alpha : float, default=1.0
        L1 penalty strength (>= 0).
    fit_intercept : bool, default=True
    solver : str, default="highs"
        scikit-learn's names ``"highs"``, ``"highs-ds"`` and ``"highs-ipm"`` all mean gradfit's exact
        interior point with crossover; ``"interior-point"`` and ``"revised simplex"`` raise ValueError
        as scikit-learn does with SciPy >= 1.11. gradfit's own names (``"ipm"``, ``"prox"``, ``"sgd"`` ...)
        are accepted too.
    solver_options : dict or None, default=None
        ``maxiter`` limits the iterations; other keys go to the solver's options.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
    intercept_ : float
    n_iter_ : int
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` had string column names.
    gap_ : float
        Certified relative objective gap.
    converged_ : bool
        ``gap_ <= 1e-8``.
    model_ : LinearModel

    Examples
    --------
    >>> from gradfit import QuantileRegressor
    >>> QuantileRegressor(alpha=0.0).fit([[0.0], [1.0], [2.0]], [0.0, 1.0, 5.0]).coef_
    array([2.5])
    """

    def __init__(self, *, quantile: float = 0.5, alpha: float = 1.0, fit_intercept: bool = True,
                 solver: str = "highs", solver_options: dict | None = None):
        self.quantile = quantile
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.solver_options = solver_options

    def _fit(self, X: Any, y: Any, sample_weight: Any) -> None:
        check_param(self, "quantile", 0 < self.quantile < 1, "a float in the range (0, 1)")
        check_param(self, "alpha", self.alpha >= 0, "a float in the range [0, inf)")
        solver = str(self.solver)
        if solver in GONE:
            raise ValueError(f"Solver {solver} is not anymore available in SciPy >= 1.11.0.")
        options = dict(self.solver_options or {})
        epochs = int(options.pop("maxiter", 1000))
        self._fit_model(X, y, sample_weight,
                        loss="quantile", quantile=float(self.quantile), penalty=Penalty(float(self.alpha), 1.0),
                        solver="auto" if solver in HIGHS else solver, epochs=epochs, tol=1e-8, options=options)
        self._warn_unconverged("Linear programming for QuantileRegressor did not succeed")


class HuberRegressor(Fitted):
    """scikit-learn's ``HuberRegressor``: the joint fit of the coefficients and a scale, solved exactly.

    Minimizes, over ``w``, ``b`` and ``sigma > 0``::

        sum_i s_i (sigma + H_eps((y_i - x_i.w - b) / sigma) sigma) + alpha ||w||_2^2,
        H_eps(z) = z^2 (|z| <= eps), 2 eps |z| - eps^2 otherwise

    (Owen 2007), so ``epsilon=1.35`` means what it means in scikit-learn. The objective is jointly
    convex; gradfit minimizes it exactly (:mod:`gradfit.solvers.huber_scale`): the scale never
    collapses to a spurious 0, the fit is scale-equivariant, and ``gap_`` certifies the objective.

    Parameters
    ----------
    epsilon : float, default=1.35
        Threshold relative to the scale, >= 1.
    max_iter : int, default=100
        Maximum updates of the scale (each an exact Newton fit of the coefficients).
    alpha : float, default=0.0001
        Ridge strength on ``w`` (not on ``b``), in scikit-learn's (unnormalized) units.
    warm_start : bool, default=False
        Start from the previous ``coef_``, ``intercept_`` and ``scale_``.
    fit_intercept : bool, default=True
    tol : float, default=1e-05
        Stop when the certified relative objective gap is at most ``tol``.
    scale : {"joint", "mad", "absolute"}, default="joint"
        gradfit's extra: ``"mad"`` is statsmodels' RLM with HuberT and the MAD scale; ``"absolute"``
        takes ``epsilon`` in units of ``y`` (then ``scale_`` is 1).

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
    intercept_ : float
    scale_ : float
        The fitted ``sigma``.
    n_iter_ : int
        Scale updates made.
    outliers_ : ndarray of bool, shape (n_samples,)
        Rows with ``|y - X w - b| > epsilon * scale_``.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
    gap_, converged_, model_
        gradfit's certificate, its verdict, and the :class:`gradfit.LinearModel`.

    Examples
    --------
    >>> import numpy as np
    >>> from gradfit import HuberRegressor
    >>> X = np.arange(10.0)[:, None]
    >>> y = 2 * X[:, 0] + 1 + np.r_[0.1, -0.1] .repeat(5)
    >>> y[3] = 40.0
    >>> reg = HuberRegressor().fit(X, y)
    >>> round(float(reg.coef_[0]), 1), bool(reg.outliers_[3])
    (2.0, True)
    """

    def __init__(self, *, epsilon: float = 1.35, max_iter: int = 100, alpha: float = 0.0001,
                 warm_start: bool = False, fit_intercept: bool = True, tol: float = 1e-05, scale: str = "joint"):
        self.epsilon = epsilon
        self.max_iter = max_iter
        self.alpha = alpha
        self.warm_start = warm_start
        self.fit_intercept = fit_intercept
        self.tol = tol
        self.scale = scale

    def _fit(self, X: Any, y: Any, sample_weight: Any) -> None:
        check_param(self, "epsilon", self.epsilon >= 1.0, "a float in the range [1.0, inf)")
        check_param(self, "alpha", self.alpha >= 0, "a float in the range [0.0, inf)")
        loss = get_loss("huber", delta=float(self.epsilon), scale=self.scale)
        init, options = "zeros", {}
        if self.warm_start and hasattr(self, "coef_") and np.shape(self.coef_) == (np.shape(X)[1],):
            init = np.append(self.coef_, self.intercept_)
            options["scale0"] = float(self.scale_) if self.scale == "joint" else None
        X, y, w = self._fit_model(X, y, sample_weight, loss=loss, solver="newton",
                                  penalty=lambda sw: Penalty(2.0 * float(self.alpha) / sw, 0.0),
                                  epochs=int(self.max_iter), tol=float(self.tol), init=init, options=options)
        self.scale_ = float(self.model_.info.get("scale", 1.0))
        r = y - np.asarray(X @ self.coef_).reshape(-1) - self.intercept_
        self.outliers_ = np.abs(r) > self.epsilon * self.scale_
        self._warn_unconverged(f"max_iter={self.max_iter} scale updates reached")


__all__ = ["QuantileRegressor", "HuberRegressor"]
