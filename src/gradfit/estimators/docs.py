"""The parameter and attribute sections shared by the docstrings of :mod:`gradfit.estimators.linear`."""

SHARED_DOC = """
    penalty : {None, "none", "l2", "l1", "elasticnet"}, default=None
        Names a mix: ``"l2"`` is ``l1_ratio=0``, ``"l1"`` is 1, ``"elasticnet"`` is ``l1_ratio``
        (default 0.5), ``"none"`` is ``alpha=0``; a name that contradicts ``alpha``/``l1_ratio``
        raises. ``None`` uses ``alpha`` and ``l1_ratio`` as given.
    alpha : float, default=0.0
        Penalty strength (>= 0) in ``P(w) = alpha * (l1_ratio ||w||_1 + (1 - l1_ratio)/2 ||w||^2)``,
        the same rule as :func:`gradfit.fit` and ``gradfit fit`` (``gradfit.problem.penalties.PENALTY_RULE``).
    l1_ratio : float or None, default=None
        Share of the L1 term, in [0, 1]; None: 0, or the named penalty's.
    solver : str, default="auto"
        ``"auto"`` picks the fastest exact method for the loss and penalty (closed form for squared
        loss with ridge); ``"exact"``, ``"cd"``, ``"prox"``, ``"ipm"``, ``"sgd"``, ``"momentum"``,
        ``"nesterov"``, ``"adam"`` ... (see :func:`gradfit.solvers.available`).
    lr : float or None, default=None
        Step size of the gradient solvers (None: the solver's default).
    epochs : int, default=1000
        Maximum passes over the data for iterative solvers.
    batch_size : int or None, default=None
        Rows per gradient step (None: full batch).
    tol : float, default=1e-8
        Bound on the certified relative objective gap ``gap_`` for ``converged_`` (the same
        meaning for every solver; see :func:`gradfit.fit`).
    fit_intercept : bool, default=True
        Fit ``b`` (never penalized).
    warm_start : bool, default=False
        Start iterative solvers from the previous ``coef_``/``intercept_``.
    random_state : int, RandomState or None, default=None
        Seed of the stochastic solvers' shuffling.
    dtype : {"float64", "float32"}, default="float64"
        Floating point type of the computation.
    device : str, default="cpu"
        torch device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
    options : dict or None, default=None
        Solver-specific options passed through to :func:`gradfit.fit`.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,) or (n_targets, n_features)
    intercept_ : float or ndarray of shape (n_targets,)
    n_iter_ : int
        Iterations (epochs) of the solver; the largest over targets.
    gap_ : float
        Certified bound on the relative objective gap at the solution (never negative; NaN if
        no certificate exists).
    converged_ : bool
        Whether every target's ``gap_`` is at most ``tol``.
    history_ : History or list of History
        Objective per epoch (:class:`gradfit.solvers.history.History`).
    model_ : LinearModel or list of LinearModel
        The fitted :class:`gradfit.LinearModel` (``.save``, ``.summary``...).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` had string column names.
"""
