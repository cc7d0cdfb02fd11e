"""gradfit itself, through its public API (``gradfit.fit``) as a user calls it."""
from __future__ import annotations

import numpy as np

from ..problems import Problem
from .base import Peer

LOSS = {"squared": "l2", "absolute": "l1", "quantile": "quantile", "huber_scale": "huber"}


class Gradfit(Peer):
    def __init__(self, solver: str = "auto", label: str | None = None, **kwargs):
        super().__init__()
        self.solver, self.kwargs = solver, kwargs
        self.name = label or f"gradfit ({solver})"

    def supports(self, problem: Problem):
        from gradfit.solvers import available
        if self.solver != "auto" and self.solver not in available():
            return f"gradfit has no '{self.solver}' solver registered (yet)"
        return None

    def prepare(self) -> None:
        """Import gradfit's modules and run one tiny fit of each kind it dispatches on, untimed: the
        first call of a process pays for importing torch's and scipy's submodules (seconds), which is
        not the fit (the R peers load their packages before their clock starts too)."""
        import gradfit
        rng = np.random.default_rng(0)
        X = rng.normal(size=(64, 2))
        y = X @ [1.0, 2.0] + rng.normal(size=64)
        for loss in ("l2", "l1", "quantile"):
            gradfit.fit(X, y, loss=loss, warn=False, record_path=False)

    def fit(self, X, y, problem: Problem):
        import gradfit
        kw = dict(self.kwargs)
        if problem.loss == "quantile":
            kw.setdefault("quantile", problem.tau)
        if problem.loss == "huber_scale":
            kw.setdefault("delta", problem.epsilon)
        m = gradfit.fit(X, y, loss=LOSS[problem.loss], solver=self.solver, warn=False, record_path=False, **kw)
        self.info = {"solver": m.solver, "gap": float(m.gap_), "converged": bool(m.converged_),
                     "n_iter": int(m.n_iter_)}
        for key in ("scale", "method", "condition_number"):
            if key in m.info:
                self.info[key] = m.info[key]
        return np.asarray(m.coef_, dtype=np.float64), float(m.intercept_)
