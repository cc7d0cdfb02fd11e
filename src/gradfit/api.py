"""``gradfit.fit``: one call from data to a fitted :class:`~gradfit.model.LinearModel`."""
from __future__ import annotations

import math
import time
import warnings
from typing import Any, Callable

import numpy as np
import torch

from gradfit.data.arrays import as_batches, to_tensor
from gradfit.data.batches import Batches
from gradfit.data.formula import FormulaBatches, FormulaDesign, frame_of
from gradfit.exceptions import DataError
from gradfit.model import LinearModel
from gradfit.numerics.device import resolve_device, resolve_dtype  # noqa: F401  (re-exported)
from gradfit.problem.losses import Loss, get_loss
from gradfit.problem.objective import Objective
from gradfit.problem.penalties import Penalty, get_penalty
from gradfit.solvers import ConvergenceWarning, DivergenceError, FitResult, Settings, get_solver
from gradfit.solvers.certificate import certify, certify_in_float64
from gradfit.solvers.exact import forget_design

def initial_theta(init: Any, p: int, dtype: torch.dtype, device: torch.device, seed: int) -> torch.Tensor:
    """``zeros``; ``torch`` (nn.Linear's default: U(-1/sqrt(p), 1/sqrt(p)) for w and b); or values."""
    if isinstance(init, str):
        if init == "zeros":
            return torch.zeros(p + 1, dtype=dtype, device=device)
        if init in ("torch", "linear"):
            bound = 1.0 / math.sqrt(max(p, 1))
            gen = torch.Generator().manual_seed(seed)
            return (torch.rand(p + 1, generator=gen, dtype=torch.float64) * 2 - 1).mul(bound).to(device, dtype)
        raise ValueError(f"unknown init {init!r}; choose zeros, torch, or give p+1 numbers (w..., b)")
    theta = to_tensor(init, dtype, device, "init").reshape(-1)
    if theta.numel() != p + 1:
        raise ValueError(f"init needs {p + 1} numbers (w_1..w_{p}, b), got {theta.numel()}")
    return theta


def fit(X: Any = None, y: Any = None, *, formula: str | None = None, data: Any = None,
        levels: dict | None = None, loss: str | Loss = "l2", solver: str = "auto",
        optimizer: str | None = None, penalty: str | Penalty | None = None, alpha: float = 0.0,
        l1_ratio: float | None = None, delta: float = 1.35, huber_scale: str = "joint",
        quantile: float = 0.5, lr: float | None = None,
        epochs: int = 1000, batch_size: int | None = None, tol: float = 1e-8, seed: int = 0,
        fit_intercept: bool = True, sample_weight: Any = None, init: Any = "zeros",
        dtype: Any = "float64", device: Any = "cpu", log_every: int = 0,
        on_log: Callable[[int, float], None] | None = None,
        on_epoch: Callable[[int, float, torch.Tensor], None] | None = None,
        record_path: bool = True, warn: bool = True, standardize: bool | None = None,
        options: dict | None = None) -> LinearModel:
    """Fit ``y ~ X @ w + b`` by minimizing a loss plus a penalty.

    The objective is ``F(w, b) = sum_i s_i rho(y_i - x_i.w - b) / sum_i s_i + P(w)`` where ``rho`` is
    the loss (``l2``: r**2, ``l1``: |r|, ``huber``: quadratic within ``delta``, ``quantile``: pinball at
    ``quantile``) and ``P(w) = alpha * (l1_ratio*||w||_1 + (1-l1_ratio)/2*||w||_2**2)``.

    Parameters
    ----------
    X : array-like (n, p) or (n,), DataFrame, tensor, scipy.sparse matrix/array, or :class:`~gradfit.data.batches.Batches`
        Features; a Batches source (e.g. a streamed file) carries ``y`` itself. A sparse X (any
        format) is kept sparse by every solver (:mod:`gradfit.data.sparse`).
    y : array-like (n,)
        Targets.
    formula, data, levels
        Instead of ``X, y``: a formula such as ``"price ~ sqft + age + C(hood) + sqft:age"`` over the
        columns of ``data`` (a DataFrame or dict; see :mod:`gradfit.data.formula`), categorical
        columns encoded with statsmodels' names (``C(hood)[T.North]``); ``levels`` declares the levels
        of a column (``{"hood": ["East", "North", "South"]}``). The encoding is kept on the model.
    loss : ``l2`` (squared), ``l1`` (absolute), ``huber``, ``quantile``, an alias, or a Loss
    penalty, alpha, l1_ratio
        Strength ``alpha`` (>= 0, default 0) and mix ``l1_ratio`` (default: 0, or the named
        penalty's) of the penalty above; ``penalty`` (``none``, ``l2``, ``l1``, ``elasticnet``) names
        a mix. The rule, shared by the estimators and the CLI: :data:`gradfit.problem.penalties.PENALTY_RULE`.
    delta, quantile : float
        Huber threshold; level of the quantile loss in (0, 1).
    huber_scale : {"joint", "mad", "absolute"}
        What ``delta`` is relative to: ``joint`` (default) a scale fitted with the coefficients, as
        scikit-learn's HuberRegressor (``delta`` = its ``epsilon``); ``mad`` the residuals' MAD scale,
        as statsmodels' RLM with HuberT; ``absolute`` the units of ``y``. See :class:`gradfit.problem.losses.Huber`.
    solver, optimizer : str
        ``auto`` (fastest exact method for the loss), ``exact``, ``sgd``, ``momentum``,
        ``nesterov``, ``adam`` and the others in :func:`gradfit.solvers.available`.
        ``optimizer`` is an alias of ``solver``.
    lr, epochs, batch_size, seed
        Gradient-method settings: step size, passes over the data, rows per step (None: all),
        random seed.
    tol : float
        The same meaning for every solver: the fit is converged (``converged_`` True) exactly when
        its certificate bounds the relative objective gap ``(F(w, b) - F*) / |F*|`` by ``tol``
        (``gap_`` is that bound; ``|F*|`` is floored at 1e-6 of the zero model's objective).
        Iterative solvers stop as soon as the certificate allows, otherwise at ``epochs``; every
        other stop leaves ``converged_`` False and warns with ``gap_`` and the reason. The bound
        comes from the solver (duality gap, Newton decrement, exact solution) or from comparing
        with the exact optimum; float32 fits are measured on the data in float64.
    init : ``"zeros"``, ``"torch"`` (nn.Linear's initialisation) or p+1 numbers (w..., b).
    fit_intercept : bool
        Fit ``b`` (never penalized); False fixes ``b = 0``.
    sample_weight : array-like (n,) or None
        Non-negative weights ``s_i``.
    dtype, device
        ``float64``/``float32``; ``cpu``, ``cuda`` or ``auto``.
    log_every, on_log, on_epoch
        Call ``on_log(epoch, loss)`` every ``log_every`` epochs and ``on_epoch(epoch, loss, theta)``
        every epoch.

    record_path, warn
        Keep theta per epoch in ``history_.path``; emit :class:`ConvergenceWarning`. (An unpenalized fit
        whose design cannot identify every coefficient -- a constant, duplicated or linearly dependent
        column, or a condition number above 1e8 -- warns with ``SingularDesignWarning`` naming the
        columns, whatever the solver and loss and whatever ``warn``; ``model.summary()`` then gives
        those coefficients no standard errors or p-values.)
    options : dict or the solver's ``Options``
        The chosen solver's own options (``gradfit.solvers.REGISTRY[name].Options`` lists them);
        an unknown name raises ValueError listing the known ones. ``certify=False`` skips the
        comparison with an exact solver that bounds ``gap_`` of an iterative fit.

    standardize : bool or None
        Gradient methods (sgd, momentum, nesterov, adam, gd) step in standardized coordinates
        (each feature scaled to mean 0, std 1; the data is not copied) and report the coefficients in
        the original units. None: the solver's default (on for ``gd``, off for the torch.optim
        methods, whose trajectory is then a hand-written PyTorch loop's).

    Raises
    ------
    DivergenceError
        The loss blew up; the message gives the stable learning rate computed from the data and the
        column whose scale limits it, and the error carries the history until then.
    ValueError
        A setting out of range, named as above (e.g. ``lr must be a positive finite number, got -1``).

    Returns
    -------
    LinearModel
        With ``coef_``, ``intercept_``, ``history_``, ``converged_`` (``gap_ <= tol``), ``gap_``
        (never negative; NaN when no certificate exists, e.g. ``options={"certify": False}``), ``n_iter_``.

    Examples
    --------
    >>> import gradfit
    >>> m = gradfit.fit([[0.0], [1.0], [2.0], [3.0]], [1.0, 3.0, 5.2, 7.0], loss="l1")
    >>> m.solver, round(float(m.coef_[0]), 6), round(m.intercept_, 6)
    ('ipm', 2.0, 1.0)
    """
    dt, dev = resolve_dtype(dtype), resolve_device(device)
    design = None
    if formula is not None:
        if y is not None:
            raise ValueError("fit(formula=..., data=...): the formula names the target; leave y out")
        design, X, y = FormulaDesign.learn(formula, frame_of(X if data is None else data), levels)
        X = as_batches(X, y, sample_weight, dtype=dt, device=dev, validate=False, feature_names=design.columns,
                       target_name=design.target)
        fit_intercept = fit_intercept and design.intercept
    elif isinstance(X, Batches):
        source = getattr(X, "local", X)  # a distributed source wraps this process's shard
        if isinstance(source, FormulaBatches):  # a file encoded by a formula: the model keeps the encoding
            design = source.design
            fit_intercept = fit_intercept and design.intercept
    if X is None:
        raise ValueError("fit needs X and y, or formula= and data=")
    if isinstance(X, Batches):
        data = X
    else:
        if y is None:
            raise ValueError("fit(X, y): y is required unless X is a Batches source")
        data = as_batches(X, y, sample_weight, dtype=dt, device=dev, validate=False)
    loss_obj = get_loss(loss, delta=delta, tau=quantile, scale=huber_scale)
    pen = get_penalty(penalty, alpha, l1_ratio)
    chosen = get_solver(optimizer or solver, loss_obj, pen)
    if standardize is not None:
        if "standardize" not in chosen.Options.known():
            raise ValueError(f"standardize applies to the gradient methods (sgd, momentum, nesterov, adam, gd), "
                             f"not to solver '{chosen.name}'; leave it out or pick one of them")
        options = {**(dict(options) if isinstance(options, dict) else {}), "standardize": bool(standardize)}
    settings = Settings(lr=lr, epochs=epochs, batch_size=batch_size, tol=tol, seed=seed, log_every=log_every,
                        on_log=on_log, on_epoch=on_epoch, record_path=record_path,
                        options=chosen.Options.parse(options, chosen.name))
    chosen.check_data(data, settings.batch_size)
    if not chosen.checks_finite:
        data.validate()
    objective = Objective(loss_obj, pen, data, fit_intercept)
    theta0 = initial_theta(init, data.n_features, data.dtype, data.device, settings.seed)
    forget_design(data)  # this fit's own solves (exact, its certificate, Newton's start) diagnose it afresh
    t0 = time.perf_counter()
    try:
        result = chosen.solve(objective, settings, theta0)
    except DivergenceError as exc:
        overflow = _overflow_at_start(objective, theta0)
        if overflow:
            raise DataError(overflow) from None
        if exc.stability is None:
            from gradfit.solvers.stability import learning_rate_limit
            exc.stability = learning_rate_limit(objective, chosen.name, momentum=settings.momentum,
                                                standardized=bool(getattr(settings.options, "standardize", False)))
        raise
    elapsed = time.perf_counter() - t0
    if chosen.name != "exact" and pen.alpha == 0:  # exact warned itself; a penalty identifies every coefficient
        _warn_if_singular(data, fit_intercept)
    if settings.options.certify:  # options={"certify": False} skips the external certificate
        if data.dtype != torch.float64 and chosen.name != "exact":  # exact certifies its rounding itself
            result.gap = certify_in_float64(objective, result)
        elif math.isnan(result.gap):
            result.gap = certify(objective, result)
    model = to_model(result, objective, elapsed, settings, warn)
    model.formula_ = design
    return model


def _warn_if_singular(data: Batches, fit_intercept: bool) -> None:
    """A SingularDesignWarning naming the columns when the design cannot identify every coefficient, for
    every solver and loss: the exact solver's diagnosis of ``[X, 1]`` (one place decides)."""
    from gradfit.solvers.exact import SingularDesignWarning, design_warning
    note = design_warning(data, fit_intercept)
    if note:
        warnings.warn(note, SingularDesignWarning, stacklevel=3)


def _overflow_at_start(objective: Objective, theta0: torch.Tensor) -> str:
    """Why a fit that diverged could not have started ("" when the step size is to blame): the objective at
    the starting point is not finite in the data's dtype, so no learning rate helps."""
    with torch.no_grad():
        if bool(torch.isfinite(objective.value(theta0)).all()):
            return ""
    kind = str(objective.data.dtype).replace("torch.", "")
    fix = ("fit in float64 (--dtype float64; dtype='float64' in Python) or rescale the data" if kind != "float64"
           else "rescale the data (divide the large columns by a power of 10)")
    return (f"the data's values are too large for {kind}: the loss at the starting point overflows to inf, "
            f"however small the step; {fix}")


def to_model(result: FitResult, objective: Objective, elapsed: float, settings: Settings,
             warn: bool = True) -> LinearModel:
    """The fitted model of ``result``: coefficients in float64, the problem's description, timings."""
    data = objective.data
    theta = result.theta.detach().to("cpu", torch.float64).numpy()
    final = result.history.loss[-1] if result.history.loss else float("nan")
    info = {"n_rows": float(data.total_rows()) if data.full_batch() is None else float(data.n_rows),
            "seconds": elapsed, **{k: v for k, v in result.info.items() if isinstance(v, (int, float, str))}}
    if settings.lr is not None:
        info["lr"] = settings.lr
    info["stop_reason"] = result.message
    gap = float(result.gap)
    result.converged = converged = math.isfinite(gap) and gap <= settings.tol  # the certificate decides
    mode = getattr(objective.loss, "scale", "absolute")  # the Huber threshold's scale: absolute, joint or mad
    joint = mode != "absolute" and "scale" in result.info
    model = LinearModel(np.array(theta[:-1]), float(theta[-1]), list(data.feature_names),
                        target_name=data.target_name, loss=objective.loss.spec(), penalty=objective.penalty.spec(),
                        solver=result.solver, converged_=converged, gap_=gap, n_iter_=int(result.n_iter),
                        final_loss_=float(final), history_=result.history, fit_intercept=bool(objective.fit_intercept),
                        scale_mode=mode if joint else "fixed",
                        scale_=float(result.info["scale"]) if joint else None, info=info)
    if warn and not converged:
        warnings.warn(not_converged_message(result.solver, result.message, gap, settings.tol),
                      ConvergenceWarning, stacklevel=3)
    return model


def not_converged_message(solver: str, reason: str, gap: float, tol: float) -> str:
    """The ConvergenceWarning's text: the certified gap against ``tol`` and why the solver stopped."""
    if math.isfinite(gap):
        what = f"certified relative gap {gap:.3g} > tol {tol:g}"
    else:
        what = "no certificate of the gap is available for this loss and penalty"
    return (f"{solver} did not converge: {what} (gap_ = {gap:.3g}); stopped because: {reason or 'unknown'}; "
            "raise epochs or lr, or use solver='auto' for the exact optimum")
