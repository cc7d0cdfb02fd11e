"""A fitted linear model: coefficients, predictions, and its JSON file (written here, read and checked
field by field in :mod:`gradfit.model_file`).

The file is plain JSON (no pickle, nothing executed on load), floats written with ``repr`` so
they round-trip bit-exactly, and written atomically.
"""
from __future__ import annotations

import html as _html
import importlib
import json
import math
import os
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from gradfit._version import __version__
from gradfit.data.atomic import write_text
from gradfit.data.arrays import feature_names_of, to_numpy
from gradfit.data.sparse import is_sparse
from gradfit.data.batches import DataError
from gradfit.exceptions import ModelFileError  # noqa: F401  (its old import path)
from gradfit.inference.intervals import as_frame, interval_columns, store
from gradfit.inference.summary import summary as summarize
from gradfit.data.columns import to_float
from gradfit.data.sources import show
from gradfit.model_file import FORMAT, FORMAT_VERSION, json_number, model_from_dict, read_json
from gradfit.solvers.history import History

@dataclass
class LinearModel:
    """``y = X @ coef_ + intercept_``, with how it was fitted (what :func:`gradfit.fit` returns).

    It minimized ``F(w, b) = sum_i s_i rho(y_i - x_i.w - b) / sum_i s_i + P(w)`` for the ``loss``
    and ``penalty`` recorded on it (see :func:`gradfit.fit`).

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
    intercept_ : float
    feature_names_in_ : list of str
        Column names (``x0, x1, ...`` for arrays).
    target_name : str or None
    loss, penalty : dict
        JSON descriptions, e.g. ``{"name": "huber", "delta": 1.35}``.
    solver : str
        The solver that fitted it.
    converged_ : bool
        Whether it met its tolerance.
    gap_ : float
        Bound on the relative objective gap ``(F - F*) / F*`` (0 for closed forms, NaN if unknown).
    n_iter_ : int
        Epochs or iterations.
    final_loss_ : float
        Objective at the solution.
    history_ : History or None
        Objective per epoch (:class:`gradfit.solvers.history.History`).
    fit_intercept : bool
        Whether ``intercept_`` was fitted (False: fixed at 0).
    scale_mode : {"fixed", "joint", "mad"}
        ``fixed``: the loss has no scale (``delta`` in the units of ``y``); ``joint``: a Huber fit that
        estimated the scale sigma with the coefficients (scikit-learn's HuberRegressor); ``mad``: sigma
        from the residuals' median absolute deviation (statsmodels' RLM). Its value is ``scale_``.
    scale_ : float or None
        The jointly fitted scale (None when ``scale_mode`` is ``fixed``).
    info : dict
        Timings, rows, condition number and other solver facts.
    formula_ : FormulaDesign or None
        The formula and its learned encoding (levels of categorical columns) when fitted by
        ``fit(formula=..., data=...)``; new data goes through it in :meth:`predict` and :meth:`summary`.
    inference_ : dict or None
        What prediction intervals need (parameter covariances, residual scale and degrees of freedom),
        stored by :meth:`summary` of a least-squares fit; saved in the model file.

    Examples
    --------
    >>> import gradfit
    >>> m = gradfit.fit([[0.0], [1.0], [2.0]], [1.0, 3.0, 5.0])
    >>> [round(float(c), 12) for c in m.coef_], round(m.intercept_, 12)
    ([2.0], 1.0)
    """

    SCALE_MODES = ("fixed", "joint", "mad")

    coef_: np.ndarray
    intercept_: float
    feature_names_in_: list[str]
    _: KW_ONLY  # everything after the coefficients is named
    target_name: str | None = None
    loss: dict = field(default_factory=lambda: {"name": "squared"})
    penalty: dict = field(default_factory=lambda: {"name": "none", "alpha": 0.0, "l1_ratio": 0.0})
    solver: str = "exact"
    converged_: bool = True
    gap_: float = float("nan")
    n_iter_: int = 0
    final_loss_: float = float("nan")
    history_: History | None = None
    fit_intercept: bool = True
    scale_mode: str = "fixed"
    scale_: float | None = None
    info: dict = field(default_factory=dict)
    inference_: dict | None = None  # covariances for intervals, stored by summary() (see inference/intervals.py)
    formula_: Any = None  # a FormulaDesign (gradfit.data.formula) when fitted from a formula

    def __post_init__(self) -> None:
        if self.scale_mode not in self.SCALE_MODES:
            raise ValueError(f"scale_mode must be one of {', '.join(self.SCALE_MODES)}, got {self.scale_mode!r}")

    @property
    def n_features_in_(self) -> int:
        return len(self.coef_)

    def __repr__(self) -> str:
        """One line: the equation (at most six terms shown), the loss, solver and certificate."""
        terms = [f"{c:.4g}*{n}" for n, c in zip(self.feature_names_in_, self.coef_)]
        shown = " + ".join(terms[:6]) + (f" + ... ({len(terms) - 6} more)" if len(terms) > 6 else "")
        gap = "gap unknown" if math.isnan(self.gap_) else f"gap {self.gap_:.1e}"
        status = "converged" if self.converged_ else "NOT converged"
        return (f"<gradfit LinearModel {self.target_name or 'y'} = {shown} + {self.intercept_:.4g}; "
                f"loss {self.loss.get('name')}, solver {self.solver}, {status} ({gap})>")

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><th scope=row>{_html.escape(k)}</th><td>{v:.6g}</td></tr>"
                       for k, v in self.coefficients().items())
        status = "converged" if self.converged_ else "<b>NOT converged</b>"
        gap = "unknown" if math.isnan(self.gap_) else f"{self.gap_:.2e}"
        return (f"<div class=gradfit-model><p><b>gradfit LinearModel</b> of {_html.escape(self.target_name or 'y')}: "
                f"loss {_html.escape(str(self.loss.get('name')))}, solver {_html.escape(self.solver)}, {status} "
                f"(relative gap {gap}, {self.n_iter_} iterations)</p><table><thead><tr><th>parameter</th>"
                f"<th>coefficient</th></tr></thead><tbody>{rows}</tbody></table></div>")

    def coefficients(self) -> dict[str, float]:
        """Feature name -> coefficient, then ``"intercept"`` (when the model was fitted with one)."""
        out = dict(zip(self.feature_names_in_, map(float, self.coef_)))
        if self.fit_intercept:
            out["intercept"] = float(self.intercept_)
        return out

    # -- prediction ---------------------------------------------------------------------------
    def _design(self, X: Any) -> np.ndarray:
        if self.formula_ is not None and _columns(X):
            raw, have = self.formula_.rhs_variables(), _columns(X)
            if all(n in have for n in raw):
                return self.formula_.matrix(X)
            if not all(n in have for n in self.feature_names_in_):  # neither the raw columns nor the design's
                missing = [n for n in raw if n not in have]
                raise DataError(f"data is missing column(s) {', '.join(missing)} that the formula "
                                f"{self.formula_.formula!r} uses; it has {', '.join(have)}")
        if isinstance(X, (pa.Table, pa.RecordBatch)):  # by name, like a DataFrame
            names = list(X.column_names)
            self._check_names(names)
            return np.stack([to_float(X.column(names.index(f)), f, lambda i: f"row index {i - 1} (0-based)")
                             for f in self.feature_names_in_], axis=1) if len(X) else np.empty((0, len(self.coef_)))
        names = feature_names_of(X)
        if names is not None:
            self._check_names(names)
            by_name = dict(zip(names, X.columns))  # a DataFrame's names may be integers: match as text
            X = X[[by_name[f] for f in self.feature_names_in_]]
        arr = X if is_sparse(X) else to_numpy(X, "X")  # sparse X stays sparse: X @ coef_ is a sparse product
        if arr.ndim == 1:
            arr = arr[:, None] if self.n_features_in_ == 1 else arr[None, :]
        if arr.shape[1] != self.n_features_in_:
            raise DataError(f"X has {arr.shape[1]} columns but the model has {self.n_features_in_} features "
                            f"({', '.join(self.feature_names_in_)})")
        return arr

    def _check_names(self, names: list[str]) -> None:
        missing = [f for f in self.feature_names_in_ if f not in names]
        if missing:
            raise DataError(f"data is missing feature column(s) {', '.join(missing)} the model was "
                            f"fitted on; it has {show(names)}")
        twice = sorted({f for f in self.feature_names_in_ if names.count(f) > 1})
        if twice:
            raise DataError(f"data has two columns named {twice[0]!r}; rename one so each name is unique")

    def predict(self, X: Any, interval: str | None = None, level: float = 0.95, cov_type: str | None = None,
                weights: Any = None):
        """Predictions ``X @ coef_ + intercept_``, with confidence or prediction intervals when asked.

        Parameters
        ----------
        X : array-like of shape (n, n_features), tensor, DataFrame or pyarrow Table
            DataFrames and pyarrow tables are matched to ``feature_names_in_`` by column name
            (any order, extra columns ignored; names compared as text, so ``0`` matches ``"0"``).
        interval : None, ``"confidence"`` or ``"prediction"``
            None: the predictions alone. Otherwise statsmodels' ``get_prediction().summary_frame()``
            columns: ``mean``, ``mean_se`` and ``mean_ci_lower/upper`` (the mean's interval) or
            ``obs_ci_lower/upper`` (a new observation's). Needs a least-squares model whose
            :meth:`summary` was computed on its training data (it stores the covariance).
        level : float
            Coverage of the intervals.
        cov_type : str or None
            The covariance behind them (``nonrobust`` or ``HC0``..``HC3``, as computed by the summary).
        weights : array-like or None
            Weights of the new rows for the prediction interval (variance ``sigma^2 / weight``).

        Returns
        -------
        ndarray of shape (n,), float64; with ``interval``, a pandas DataFrame
        """
        D = self._design(X)
        # a sparse D gives a (n,) or (n, 1) product: flatten
        mean = np.asarray(D @ np.asarray(self.coef_, dtype=np.float64) + self.intercept_, dtype=np.float64).reshape(-1)
        if interval is None:
            return mean
        index = getattr(X, "index", None)
        return as_frame(interval_columns(self, D, mean, interval, level, cov_type, weights),
                        index=index if not callable(index) else None)

    # -- file format ---------------------------------------------------------------------------
    def to_dict(self, with_history: bool = True) -> dict:
        d = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "gradfit_version": __version__,
            "feature_names": list(self.feature_names_in_), "target": self.target_name,
            "coef": [float(c) for c in self.coef_], "intercept": float(self.intercept_),
            "loss": self.loss, "penalty": self.penalty, "solver": self.solver,
            "training": {"converged": bool(self.converged_), "gap": json_number(self.gap_), "n_iter": int(self.n_iter_),
                         "final_loss": json_number(self.final_loss_), "fit_intercept": bool(self.fit_intercept),
                         **{k: json_number(v) for k, v in self.info.items()}},
        }
        if self.formula_ is not None:
            d["formula"] = self.formula_.to_dict()
        if self.inference_:
            d["inference"] = self.inference_
        if self.scale_mode != "fixed":
            d["training"].update(scale_mode=self.scale_mode, scale=json_number(self.scale_))  # info["scale"] too
        if with_history and self.history_ is not None:
            d["history"] = {"loss": [json_number(v) for v in self.history_.loss]}
        return d

    def save(self, path: str | os.PathLike) -> None:
        """Write the model as plain JSON (floats round-trip bit-exactly), atomically.

        Parameters
        ----------
        path : str or os.PathLike
            Destination; a crash mid-write leaves any previous file intact.
        """
        write_text(path, json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n")

    @classmethod
    def from_dict(cls, d: Any, source: str = "model") -> "LinearModel":
        """The model a file's JSON describes; ModelFileError naming ``source`` and the field when it is not one."""
        return model_from_dict(cls, d, source)

    def plot(self, X: Any = None, y: Any = None, *, kind: str = "all", ax: Any = None, sample_weight: Any = None,
             max_rows: int = 5000):
        """A matplotlib Figure: ``kind`` ``all`` (R's four ``plot(lm)`` diagnostics), ``residuals``, ``qq``,
        ``scale_location``, ``leverage`` (with Cook's distance), ``partial`` (per feature), ``fit`` or ``loss``.

        Diagnostics draw the model on its data ``X, y`` (at most ``max_rows`` sampled rows, stated on
        the picture); ``ax`` draws one kind into an existing Axes. See :mod:`gradfit.viz.diagnostics`.
        """
        # Pictures are an edge above the model (gradfit.viz); like pandas' DataFrame.plot, the method
        # reaches it by name at call time, so the layers below never import it.
        viz = importlib.import_module("gradfit.viz.diagnostics")
        return viz.plot_model(self, X, y, kind=kind, ax=ax, sample_weight=sample_weight, max_rows=max_rows)

    def summary(self, *args, **kwargs):
        """Statistical summary (see :mod:`gradfit.inference.summary`); needs the training data.

        A least-squares summary also stores the covariance on the model for :meth:`predict` intervals.
        """
        if self.formula_ is not None and args and len(args) == 1 and kwargs.get("y") is None \
                and _has_columns(args[0], [self.formula_.target]):
            frame = args[0]  # a DataFrame holding the target too: the formula gives X and y
            args = (self.formula_.matrix(frame), np.asarray(frame[self.formula_.target], dtype=np.float64))
        s = summarize(self, *args, **kwargs)
        store(self, s)
        return s


def _columns(X: Any) -> list[str]:
    cols = getattr(X, "columns", None)
    if cols is not None:
        return [str(c) for c in cols]
    return [str(k) for k in X] if isinstance(X, dict) else []


def _has_columns(X: Any, names: list[str]) -> bool:
    """Whether ``X`` is a frame (or dict) holding every column in ``names`` (a formula's raw data)."""
    have = _columns(X)
    return bool(have) and all(n in have for n in names)


def load(path: str | os.PathLike) -> LinearModel:
    """Read a model file written by :meth:`LinearModel.save`. Never executes anything from it.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    LinearModel

    Raises
    ------
    ModelFileError
        The file is missing, not JSON, not a gradfit model, newer than this gradfit, or damaged
        (one line saying which).
    """
    source = os.fspath(path)
    return LinearModel.from_dict(read_json(source), source)
