"""Newton's method for Huber regression, on the exact (piecewise quadratic) objective.

Fixed ``delta`` (the default):

    F(w, b) = sum_i s_i rho_delta(y_i - x_i.w - b) / sum_i s_i + l2/2 ||w||^2,
    rho_delta(r) = r^2/2 (|r| <= delta), delta (|r| - delta/2) otherwise.

With ``options={"scale": True}``: scikit-learn's HuberRegressor formulation, a joint fit of the
scale ``sigma > 0`` (reported as ``info["scale"]``):

    G(w, b, sigma) = sum_i s_i (sigma + sigma H(r_i / sigma)) / sum_i s_i + l2/2 ||w||^2,
    H(z) = z^2 (|z| <= delta), 2 delta |z| - delta^2 otherwise,

i.e. scikit-learn's objective divided by the weight sum (their ``epsilon`` is ``delta``, their
``alpha`` is ``l2 * sum_i s_i / 2``).

Each iteration is one pass over the data that returns the value, gradient and Hessian (the
Gram matrix of the rows inside the quadratic zone) at a point; the Newton step is accepted by
an Armijo backtracking search on the exact objective. Once the set of rows inside the zone stops
changing, the step lands on the exact minimizer, so the method ends after finitely many steps.
It starts from the least-squares fit (one more pass). ``gap`` is the Newton decrement
``g' H^-1 g / 2`` relative to ``|F|``, exact when the last step kept the zone unchanged; the
iteration runs until it is below ``min(tol, 1e-12)``.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from gradfit.problem.losses import Squared
from gradfit.problem.objective import Objective
from gradfit.problem.penalties import Penalty
from gradfit.numerics.moments import F64, chunk_rows, column_scales, is_sparse_rows, padded_width, run_parts
from gradfit.numerics.sparse_gram import add_gram
from gradfit.solvers.base import EpochLoop, FitResult, Options, Settings, Solver
from gradfit.solvers.registry import REGISTRY, register


class _HuberPass:
    """Value, gradient and Hessian over all rows, in centred coordinates ``[x - m, 1]``."""

    def __init__(self, objective: Objective, delta: float, with_scale: bool):
        self.obj, self.delta, self.with_scale = objective, delta, with_scale
        self.p = objective.n_features
        self.center, _ = column_scales(objective.data, centered=objective.fit_intercept)
        self.k = self.p + 1 + int(with_scale)
        self.sw = None

    def __call__(self, v: Tensor):
        """v = [w, b', (sigma)] with b' = b + m.w: returns (F, grad, Hessian) in float64."""
        p, d, dev = self.p, self.delta, self.obj.device
        rows = chunk_rows(p + 1)
        width = padded_width(p + 1) if dev.type == "cpu" else p + 1
        th = v[:p + 1]
        sig = float(v[p + 1]) if self.with_scale else 1.0

        def part(chunks):
            buf = torch.zeros(rows, width, dtype=F64, device=dev)
            buf[:, p] = 1.0 if self.obj.fit_intercept else 0.0
            thw = torch.zeros(width, dtype=F64, device=dev)
            thw[:p + 1] = th
            val = torch.zeros((), dtype=F64, device=dev)
            g = torch.zeros(width + 1, dtype=F64, device=dev)
            H = torch.zeros(width + 1, width + 1, dtype=F64, device=dev)
            sw = torch.zeros((), dtype=F64, device=dev)
            for X, y, s in chunks:
                m = X.shape[0]
                z = buf[:m]
                torch.sub(X, self.center, out=z[:, :p])
                r = y.to(F64) - z @ thw
                if s is None:
                    s = torch.ones_like(r)
                    sw += m
                else:
                    s = s.to(F64)
                    sw += s.sum()
                if not self.with_scale:
                    psi = r.clamp(-d, d)
                    val += s @ (psi * (r - 0.5 * psi))  # = rho_delta(r) inside and outside the zone
                    g[:width] -= z.T @ (s * psi)
                    si = s * (psi == r)
                    H[:width, :width].addmm_(z.T, z * si[:, None])
                    continue
                u = r / sig
                psi = u.clamp(-d, d)  # sigma*H(u) = sigma*psi*(2u - psi); dG/dr = 2 psi; dG/dsigma = 1 - psi^2
                val += s @ (sig + sig * psi * (2 * u - psi))
                g[:width] -= z.T @ (s * (2 * psi))
                g[width] += s @ (1 - psi * psi)
                si = s * (psi == u)
                H[:width, :width].addmm_(z.T, z * (si * (2 / sig))[:, None])
                H[:width, width] += z.T @ (si * (2 * u / sig))
                H[width, width] += si @ (2 * u * u / sig)
            keep = list(range(p + 1)) + ([width] if self.with_scale else [])
            return val, sw, g[keep], H[keep][:, keep]

        full = self.obj.data.full_batch()
        if full is not None and is_sparse_rows(full.X):
            val, sw, g, H = self._sparse_sums(full, th, sig)
        else:
            out = run_parts(part, self.obj.data, rows)
            val, sw = sum(o[0] for o in out), sum(o[1] for o in out)
            g, H = sum(o[2] for o in out), sum(o[3] for o in out)
        data = self.obj.data
        packed = data.allreduce(torch.cat([val[None], sw[None], g, H.reshape(-1)]))
        val, sw, g, H = packed[0], packed[1], packed[2:2 + self.k], packed[2 + self.k:].reshape(self.k, self.k)
        if self.with_scale:
            H[p + 1, :p + 1] = H[:p + 1, p + 1]
        l2 = self.obj.penalty.l2
        w = v[:p]
        val = val / sw + 0.5 * l2 * (w @ w)
        g, H = g / sw, H / sw
        g[:p] += l2 * w
        H[:p, :p] += l2 * torch.eye(p, dtype=F64, device=dev)
        if not self.obj.fit_intercept:
            g[p], H[p, :], H[:, p], H[p, p] = 0.0, 0.0, 0.0, 1.0
        return float(val), g, H


    def _sparse_sums(self, full, th: Tensor, sig: float):
        """The sums of ``part`` for sparse rows, in the centred coordinates by algebra: with
        ``z = [x - m, 1]``, ``z'a = [X'a - m 1'a, 1'a]`` and
        ``Z'QZ = X'QX - (X'q) m' - m (X'q)' + (1'q) m m'`` (X'QX: a sparse product, p x p)."""
        p, d, m = self.p, self.delta, self.center
        X, dev = full.X.to(F64), self.obj.device
        one = 1.0 if self.obj.fit_intercept else 0.0
        r = full.y.to(F64) - (X @ th[:p] - m @ th[:p]) - one * th[p]
        s = torch.ones_like(r) if full.weight is None else full.weight.to(F64)
        sw = s.sum()

        def zt(a: Tensor) -> Tensor:  # z'a over all rows, (p + 1,)
            tot = a.sum()
            return torch.cat([X.T @ a - m * tot, (one * tot).reshape(1)])

        def ztqz(q: Tensor) -> Tensor:
            G = np.zeros((p, p))
            add_gram(G, X.csr, q.cpu().numpy())
            xq, tot = X.T @ q, q.sum()
            H = torch.empty(p + 1, p + 1, dtype=F64, device=dev)
            H[:p, :p] = torch.from_numpy(G).to(dev) - torch.outer(xq, m) - torch.outer(m, xq) + tot * torch.outer(m, m)
            H[:p, p] = H[p, :p] = one * (xq - m * tot)
            H[p, p] = one * tot
            return H

        if not self.with_scale:
            psi = r.clamp(-d, d)
            val = s @ (psi * (r - 0.5 * psi))
            return val, sw, -zt(s * psi), ztqz(s * (psi == r))
        u = r / sig
        psi = u.clamp(-d, d)
        si = s * (psi == u)
        k = p + 2
        g = torch.empty(k, dtype=F64, device=dev)
        g[:p + 1] = -zt(s * (2 * psi))
        g[p + 1] = s @ (1 - psi * psi)
        H = torch.zeros(k, k, dtype=F64, device=dev)
        H[:p + 1, :p + 1] = ztqz(si * (2 / sig))
        H[:p + 1, p + 1] = zt(si * (2 * u / sig))
        H[p + 1, p + 1] = si @ (2 * u * u / sig)
        return s @ (sig + sig * psi * (2 * u - psi)), sw, g, H


def _newton_step(g: Tensor, H: Tensor) -> Tensor:
    """-H^-1 g with Jacobi scaling; a growing ridge when H is singular (few rows in the zone)."""
    dg = torch.diagonal(H).clamp_min(0).sqrt()
    dg = torch.where(dg > 0, dg, torch.ones_like(dg))
    Hs = H / dg[:, None] / dg[None, :]
    eye = torch.eye(H.shape[0], dtype=F64, device=H.device)
    for mu in (0.0, 1e-12, 1e-9, 1e-6, 1e-3, 1.0):
        L, info = torch.linalg.cholesky_ex(Hs + mu * eye)
        if int(info) == 0:
            return -torch.cholesky_solve((g / dg)[:, None], L)[:, 0] / dg
    return -g


@register
class Newton(Solver):
    """Newton's method with an Armijo line search for the Huber loss (+ ridge)."""

    name = "newton"
    losses = ("huber",)
    penalties = ("none", "l2")
    runs_distributed = True

    @dataclass(frozen=True)
    class Options(Options):
        """``scale``: fit scikit-learn's HuberRegressor objective, the scale sigma jointly (default False)."""

        scale: bool = False

    def solve(self, objective: Objective, settings: Settings, theta0: Tensor) -> FitResult:
        s = settings
        scale = s.options.scale
        f = _HuberPass(objective, objective.loss.delta, scale)
        p, m = f.p, f.center
        start, mean_sq = self._start(objective, theta0)
        v = torch.cat([start[:p], (start[p] + m @ start[:p]).reshape(1)])
        if scale:
            v = torch.cat([v, torch.tensor([max(math.sqrt(max(mean_sq, 0.0)), 1e-8)], dtype=F64)])
        to_theta = lambda u: torch.cat([u[:p], (u[p] - m @ u[:p]).reshape(1)]).to(objective.dtype)  # noqa: E731
        loop = EpochLoop(s, self.name)
        val, g, H = f(v)
        target = min(s.tol, 1e-12)  # steps are one pass each and converge quadratically: go far
        converged = False
        it, gap, message = 0, float("nan"), f"stopped at the iteration limit ({s.epochs})"
        for it in range(s.epochs + 1):
            d = _newton_step(g, H)
            dec = float(-(g @ d))
            gap = max(dec, 0.0) / 2 / objective.gap_scale(val)
            loop.record(it, val, to_theta(v), gap)
            if dec <= 0 or gap <= target:
                converged, message = True, "converged (Newton decrement below tolerance)"
                break
            if it == s.epochs:
                break
            t = 1.0
            if scale and float(d[-1]) < 0:  # keep sigma > 0
                t = min(1.0, 0.9 * float(v[-1]) / float(-d[-1]))
            while True:
                nv = v + t * d
                nval, ng, nH = f(nv)
                if nval <= val - 1e-4 * t * dec or t < 1e-12:
                    break
                t *= 0.5
            if nval > val:  # no descent at float precision: v is optimal to rounding
                converged, message = True, "converged (no further decrease at float precision)"
                break
            v, val, g, H = nv, nval, ng, nH
        info = {"scale": float(v[-1])} if scale else {}
        return FitResult(to_theta(v), converged, it, loop.history, self.name, gap=gap,
                         message=message, info=info)

    @staticmethod
    def _start(objective: Objective, theta0: Tensor) -> tuple[Tensor, float]:
        """The ridge/least-squares fit and its mean squared residual: one pass, and close to the
        Huber fit when outliers are few (``r^2/2 + l2/2 w^2`` is half of ``r^2 + l2 w^2``)."""
        exact = REGISTRY.get("exact")
        if exact is None or not bool((theta0 == 0).all()):
            return theta0.to(F64), float(objective.value(theta0)) * 2
        ls = Objective(Squared(), Penalty(2.0 * objective.penalty.l2, 0.0), objective.data,
                       objective.fit_intercept)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = exact.solve(ls, Settings(options=exact.Options()), theta0)
        return out.theta.to(F64), out.history.loss[-1]


__all__ = ["Newton"]
