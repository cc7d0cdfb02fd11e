"""scikit-learn estimators: :class:`LinearRegressor`, :class:`QuantileRegressor`, :class:`HuberRegressor`.

They follow scikit-learn's estimator contract (the constructor only stores parameters, ``fit``
returns ``self``, fitted attributes end in ``_``) and pass ``sklearn.utils.estimator_checks``.
scikit-learn is needed only here: ``import gradfit`` works without it (``pip install gradfit[sklearn]``).
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np

try:
    from sklearn.base import BaseEstimator, RegressorMixin
    from sklearn.exceptions import ConvergenceWarning as _SklearnConvergenceWarning
    from sklearn.utils import check_random_state
    from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("gradfit's scikit-learn estimators need scikit-learn: pip install 'gradfit[sklearn]'") from exc

from gradfit import api
from gradfit.data.sparse import is_sparse
from gradfit.estimators.docs import SHARED_DOC as _SHARED_DOC
from gradfit.estimators.partial import StochasticState, chunk_moments, solve_moments, stochastic_models
from gradfit.problem.losses import Loss, get_loss
from gradfit.model import LinearModel
from gradfit.problem.penalties import Penalty, get_penalty
from gradfit.solvers import ConvergenceWarning as _GradfitConvergenceWarning


class EstimatorConvergenceWarning(_GradfitConvergenceWarning, _SklearnConvergenceWarning):
    """An iterative solver stopped at ``epochs`` before meeting ``tol``.

    Both gradfit's and scikit-learn's ``ConvergenceWarning``, so filters written for either (e.g.
    around ``GridSearchCV``) catch it.
    """




#: scipy.sparse formats fit/predict take as they are (others are converted to CSR); never densified
SPARSE_FORMATS = ("csr", "csc", "coo")


def _store(estimator: Any, params: dict) -> None:
    for name, value in params.items():
        if name not in ("self", "__class__"):
            setattr(estimator, name, value)


class LinearPredictor:
    """``predict`` of a fitted linear estimator (``coef_`` of shape (p,) or (k, p), ``intercept_``).

    ``predict_dtypes`` is what X is validated to: float64, or a list of float types that keeps X's own
    (the result then comes in X's float type, as scikit-learn's linear models give it)."""

    predict_dtypes: Any = np.float64

    def predict(self, X: Any) -> np.ndarray:
        """Predict ``X @ coef_.T + intercept_``.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_targets)
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=self.predict_dtypes, accept_sparse=SPARSE_FORMATS)
        coef = np.asarray(self.coef_)
        out = np.asarray(X @ coef.T)
        out = (out.reshape(-1) if coef.ndim == 1 else out) + self.intercept_
        return out.astype(np.result_type(X.dtype, np.float32), copy=False)


class LinearRegressor(LinearPredictor, RegressorMixin, BaseEstimator):
    __doc__ = """Linear model ``y = X @ coef_ + intercept_`` fitted by gradfit, scikit-learn style.

    Minimizes ``F(w, b) = sum_i s_i rho(y_i - x_i.w - b) / sum_i s_i + P(w)`` with
    ``P(w) = alpha * (l1_ratio * ||w||_1 + (1 - l1_ratio) / 2 * ||w||_2**2)`` and ``rho`` the loss:
    ``"squared"`` r**2 (the mean squared error, no 1/2), ``"absolute"`` |r|, ``"huber"`` (quadratic
    within ``delta``), ``"quantile"`` (pinball at ``quantile``). Each column of a 2-D ``y`` is fitted
    on its own.

    Mapping to scikit-learn (n rows, or n = sum of sample weights):
    ``LinearRegression`` = alpha 0; ``Ridge(alpha=a)`` = ``alpha = 2 * a / n, l1_ratio=0``;
    ``Lasso(alpha=a)`` = ``alpha = 2 * a, l1_ratio=1``; ``ElasticNet(alpha=a, l1_ratio=r)`` =
    ``alpha = 2 * a, l1_ratio=r``; ``QuantileRegressor(quantile=q, alpha=a)`` = ``loss="quantile",
    quantile=q, alpha=a, l1_ratio=1``; ``HuberRegressor(epsilon=e, alpha=a)`` = ``loss="huber", delta=e,
    alpha=2 * a / n``. gradfit also has those classes under scikit-learn's own names and parameters:
    :class:`gradfit.QuantileRegressor`, :class:`gradfit.HuberRegressor`, :class:`gradfit.LinearRegression`...

    Parameters
    ----------
    loss : {"squared", "absolute", "huber", "quantile"} or alias ("l2", "l1", ...), default="squared"
    delta : float, default=1.35
        Huber threshold, relative to ``huber_scale``.
    huber_scale : {"joint", "mad", "absolute"}, default="joint"
        ``joint``: a scale fitted with the coefficients (scikit-learn's HuberRegressor, ``delta`` is its
        ``epsilon``); ``mad``: the residuals' MAD scale (statsmodels RLM); ``absolute``: units of ``y``
        (the only mode of the gradient solvers and of ``partial_fit``).
    quantile : float, default=0.5
        Quantile level of the pinball loss, in (0, 1).""" + _SHARED_DOC + """
    Examples
    --------
    >>> import numpy as np
    >>> from gradfit import LinearRegressor
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> LinearRegressor().fit(X, 2 * X[:, 0] + 1).coef_
    array([2.])
    """

    def __init__(self, *, loss: str = "squared", penalty: str | None = None, alpha: float = 0.0,
                 l1_ratio: float | None = None, delta: float = 1.35, huber_scale: str = "joint",
                 quantile: float = 0.5, solver: str = "auto",
                 lr: float | None = None, epochs: int = 1000, batch_size: int | None = None, tol: float = 1e-8,
                 fit_intercept: bool = True, warm_start: bool = False, random_state: Any = None,
                 dtype: str = "float64", device: str = "cpu", options: dict | None = None):
        _store(self, locals())

    # -- settings -> gradfit objects ------------------------------------------------------------
    def _loss_object(self) -> Loss:
        return get_loss(self.loss, delta=self.delta, tau=self.quantile, scale=self.huber_scale)

    def _penalty_object(self) -> Penalty:
        return get_penalty(self.penalty, self.alpha, self.l1_ratio)  # the one rule (PENALTY_RULE)

    def _fit_kwargs(self) -> dict:
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        return dict(loss=self._loss_object(), solver=self.solver, penalty=self._penalty_object(), lr=self.lr,
                    epochs=self.epochs, batch_size=self.batch_size, tol=self.tol, seed=seed, dtype=self.dtype,
                    device=self.device, record_path=False, warn=False, options=self.options)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        tags.input_tags.sparse = True  # scipy.sparse X is fitted without densifying
        return tags

    # -- fitting ----------------------------------------------------------------------------
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> "LinearRegressor":
        """Fit the model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights ``s_i`` of the objective.

        Returns
        -------
        self : LinearRegressor
        """
        X, y, w, target = fit_inputs(self, X, y, sample_weight)
        Y = y.reshape(len(y), -1)
        kwargs = self._fit_kwargs()
        models = []
        for j in range(Y.shape[1]):
            init = self._warm_init(j, X.shape[1], Y.shape[1])
            models.append(api.fit(X, Y[:, j], sample_weight=w, init=init, fit_intercept=self.fit_intercept,
                                  **kwargs))
        self._stream = None
        self._fit_data = (X, Y, w)  # for summary() without arguments; not pickled (see __getstate__)
        self._set_fitted(models, y.ndim, target)
        if not self.converged_:
            worst = next(m for m in models if not m.converged_)
            warnings.warn(api.not_converged_message(worst.solver, str(worst.info.get("stop_reason", "")),
                                                    float(worst.gap_), self.tol),
                          EstimatorConvergenceWarning, stacklevel=2)
        return self

    def _warm_init(self, j: int, p: int, k: int):
        if not (self.warm_start and hasattr(self, "coef_")):
            return "zeros"
        coef, b = np.reshape(self.coef_, (-1, np.shape(self.coef_)[-1])), np.reshape(self.intercept_, -1)
        if coef.shape != (k, p):
            return "zeros"
        return np.append(coef[j], b[j] if self.fit_intercept else 0.0)

    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> "LinearRegressor":
        """Update the fit with one more chunk of rows (streaming).

        Squared loss: exact. Every call merges the chunk's weighted sufficient statistics
        (means and centered cross-products) and re-solves, so after the last chunk ``coef_`` equals
        what :meth:`fit` gives on all rows together, in any chunk order. Other losses: stochastic.
        Every call takes one shuffled pass of mini-batch steps (``batch_size`` rows each) of the
        ``solver`` (sgd, momentum, nesterov or adam; ``"auto"`` means adam), keeping its state between
        calls; ``converged_`` stays False since no gap is certified.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : LinearRegressor
        """
        first = getattr(self, "_stream", None) is None
        X, y, w, _ = fit_inputs(self, X, y, sample_weight, reset=first)
        Y = y.reshape(len(y), -1)
        if first:
            self._stream_ndim = y.ndim
        elif self.coef_.reshape(-1, X.shape[1]).shape[0] != Y.shape[1]:
            raise ValueError(f"y has {Y.shape[1]} target column(s) but earlier partial_fit calls had "
                             f"{self.coef_.reshape(-1, X.shape[1]).shape[0]}; call fit() to start over")
        loss, kwargs = self._loss_object(), self._fit_kwargs()
        if loss.name == "squared":
            chunk = chunk_moments(X, Y, w)
            self._stream = chunk if first else self._stream.merge(chunk)
            models = solve_moments(self._stream, self.fit_intercept, kwargs)
        else:
            if first:
                self._stream = StochasticState(X.shape[1], Y.shape[1], str(self.solver).lower(), loss,
                                               kwargs["penalty"], self.lr, kwargs["seed"], api.resolve_dtype(self.dtype))
            self._stream.step(X, Y, w, loss, kwargs["penalty"], self.fit_intercept, self.batch_size)
            models = stochastic_models(self._stream, loss, kwargs["penalty"], X.shape[1], self.fit_intercept)
        self._set_fitted(models, self._stream_ndim, None)
        return self

    def _set_fitted(self, models: list[LinearModel], y_ndim: int, target: Any) -> None:
        label_models(self, models, target)
        one = y_ndim == 1
        coef = np.stack([np.asarray(m.coef_, dtype=np.float64) for m in models])
        intercept = np.array([float(m.intercept_) for m in models])
        self.coef_ = coef[0] if one else coef
        self.intercept_ = float(intercept[0]) if one else intercept
        self.model_ = models[0] if one else models
        self.history_ = models[0].history_ if one else [m.history_ for m in models]
        self.n_iter_ = max(int(m.n_iter_) for m in models)
        gaps = [float(m.gap_) for m in models]
        self.gap_ = float("nan") if any(np.isnan(gaps)) else max(gaps)
        self.converged_ = all(bool(m.converged_) for m in models)

    # -- statistics -----------------------------------------------------------------------------
    def summary(self, X: Any = None, y: Any = None, sample_weight: Any = None, **kwargs):
        """Statistical summary of the fit (:mod:`gradfit.inference.summary`), like statsmodels' ``summary()``.

        Without ``X, y`` it uses the rows of the last :meth:`fit` (the estimator keeps a reference to
        them, never pickled); after :meth:`partial_fit` pass them. ``kwargs``: ``level``,
        ``cov_type``, ``use_t``. A multi-output fit gives one summary per target.
        """
        check_is_fitted(self)
        if X is None:
            if getattr(self, "_fit_data", None) is None:
                raise ValueError("summary() needs the training rows: pass X, y (after partial_fit, or on a "
                                 "pickled estimator)")
            X, Y, sample_weight = self._fit_data
        else:
            X, y = validate_data(self, X, y, reset=False, multi_output=True, y_numeric=True, dtype=np.float64)
            Y = np.asarray(y).reshape(len(y), -1)
        models = self.model_ if isinstance(self.model_, list) else [self.model_]
        out = [m.summary(X, Y[:, j], sample_weight=sample_weight, fit_intercept=self.fit_intercept, **kwargs)
               for j, m in enumerate(models)]
        return out if isinstance(self.model_, list) else out[0]

    def __getstate__(self):
        state = dict(super().__getstate__())
        state.pop("_fit_data", None)  # a pickled estimator does not carry its training rows
        return state


def writeable(a: np.ndarray) -> np.ndarray:
    """torch.from_numpy warns on read-only arrays (memmaps): copy those (sparse X passes as is)."""
    return a if is_sparse(a) or a.flags.writeable else a.copy()


def fit_inputs(estimator: Any, X: Any, y: Any, sample_weight: Any, *, reset: bool = True, multi_output: bool = True,
               dtype: Any = np.float64) -> tuple[Any, np.ndarray, np.ndarray | None, Any]:
    """The checks every estimator's ``fit`` starts with: ``(X, y, weights, target name)``.

    scikit-learn's ``validate_data`` (sets ``n_features_in_``/``feature_names_in_`` when ``reset``;
    sparse X kept in its format), then read-only arrays copied (torch needs writeable memory),
    ``y`` as float64 in ``X``'s float type, and the sample weights checked (a scalar is one weight for
    every row; negative or all-zero weights are refused). ``dtype`` as in ``validate_data`` (a list
    keeps float32 X as float32)."""
    target = getattr(y, "name", None)
    X, y = validate_data(estimator, X, y, reset=reset, multi_output=multi_output, y_numeric=True, dtype=dtype,
                         accept_sparse=SPARSE_FORMATS)
    y = writeable(np.asarray(y, dtype=np.float64))
    return writeable(X), y, sample_weights(sample_weight, X), target


def label_models(estimator: Any, models: list, target: Any) -> None:
    """Give the fitted models the estimator's column names and, for a named ``y``, its name."""
    names = getattr(estimator, "feature_names_in_", None)
    for m in models:
        if names is not None:
            m.feature_names_in_ = [str(n) for n in names]
        if isinstance(target, str):
            m.target_name = target


def sample_weights(sample_weight: Any, X: np.ndarray) -> np.ndarray | None:
    if sample_weight is None:
        return None
    w = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
    if not w.sum() > 0:
        raise ValueError("sample_weight sums to zero; give at least one row a positive weight")
    return writeable(w)


__all__ = ["LinearRegressor", "EstimatorConvergenceWarning", "fit_inputs", "label_models"]
