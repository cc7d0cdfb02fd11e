"""Newton's method on the Huber objective: one pass gives its value, gradient and Hessian
(:class:`HuberPass`), and :func:`minimize` takes damped Newton steps to the optimum; used by
:mod:`.newton` (delta in the units of y) and :mod:`.huber_scale` (the joint scale)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from gradfit.numerics.moments import Moments, column_scales, padded_width
from gradfit.numerics.passes import F64, chunk_rows, is_sparse_rows, run_parts
from gradfit.problem.objective import Objective


class HuberPass:
    """Value, gradient and Hessian of ``F`` over all rows, in centred coordinates ``[x - m, 1]``.

    ``delta`` and ``l2`` are attributes so an outer loop over a scale can move them between calls.
    Each call also leaves ``psi2 = sum_i s_i clip(r_i, -delta, delta)^2 / sum_i s_i`` and
    ``outside = sum_i s_i 1{|r_i| > delta} / sum_i s_i`` (what the scale equations need).
    """

    def __init__(self, objective: Objective, delta: float, l2: float):
        self.obj, self.delta, self.l2 = objective, float(delta), float(l2)
        self.p = objective.n_features
        self.center, _ = column_scales(objective.data, centered=objective.fit_intercept)
        self.psi2 = self.outside = float("nan")

    def __call__(self, v: Tensor):
        """v = [w, b'] with b' = b + m.w: returns (F, grad, Hessian) in float64."""
        p, d, dev = self.p, self.delta, self.obj.device
        rows = chunk_rows(p + 1)
        width = padded_width(p + 1) if dev.type == "cpu" else p + 1

        def part(chunks):
            buf = torch.zeros(rows, width, dtype=F64, device=dev)
            buf[:, p] = 1.0 if self.obj.fit_intercept else 0.0
            thw = torch.zeros(width, dtype=F64, device=dev)
            thw[:p + 1] = v
            sums = torch.zeros(4, dtype=F64, device=dev)  # value, weight, psi^2, outside
            g = torch.zeros(width, dtype=F64, device=dev)
            H = torch.zeros(width, width, dtype=F64, device=dev)
            for X, y, s in chunks:
                z = buf[:X.shape[0]]
                torch.sub(X, self.center, out=z[:, :p])
                r = y.to(F64) - z @ thw
                s = torch.ones_like(r) if s is None else s.to(F64)
                psi = r.clamp(-d, d)
                inside = psi == r
                sums[0] += s @ (psi * (r - 0.5 * psi))  # = rho_delta(r) inside and outside the zone
                sums[1] += s.sum()
                sums[2] += s @ (psi * psi)
                sums[3] += s.sum() - s @ inside.to(F64)
                g -= z.T @ (s * psi)
                H.addmm_(z.T, z * (s * inside)[:, None])
            return sums, g[:p + 1], H[:p + 1, :p + 1]

        full = self.obj.data.full_batch()
        if full is not None and is_sparse_rows(full.X):
            sums, g, H = self._sparse_sums(full, v)
        else:
            out = run_parts(part, self.obj.data, rows)
            sums, g, H = (sum(o[i] for o in out) for i in range(3))
        k = p + 1
        packed = self.obj.data.allreduce(torch.cat([sums, g, H.reshape(-1)]))
        sums, g, H = packed[:4], packed[4:4 + k], packed[4 + k:].reshape(k, k)
        sw = sums[1]
        self.psi2, self.outside = float(sums[2] / sw), float(sums[3] / sw)
        w = v[:p]
        val = sums[0] / sw + 0.5 * self.l2 * (w @ w)
        g, H = g / sw, H / sw
        g[:p] += self.l2 * w
        H[:p, :p] += self.l2 * torch.eye(p, dtype=F64, device=dev)
        if not self.obj.fit_intercept:
            g[p], H[p, :], H[:, p], H[p, p] = 0.0, 0.0, 0.0, 1.0
        return float(val), g, H

    def _sparse_sums(self, full, v: Tensor):
        """The sums of ``part`` for sparse rows, in the centred coordinates by algebra: with
        ``z = [x - m, 1]``, ``z'a = [X'a - m 1'a, 1'a]`` and ``Z'QZ`` from :meth:`Moments.add_sparse`
        (X'QX a sparse product, moved to the shift m)."""
        p, d, m = self.p, self.delta, self.center
        X, dev = full.X.to(F64), self.obj.device
        one = 1.0 if self.obj.fit_intercept else 0.0
        r = full.y.to(F64) - (X @ v[:p] - m @ v[:p]) - one * v[p]
        s = torch.ones_like(r) if full.weight is None else full.weight.to(F64)
        tot_s = s.sum()

        def zt(a: Tensor) -> Tensor:  # z'a over all rows, (p + 1,)
            tot = a.sum()
            return torch.cat([X.T @ a - m * tot, (one * tot).reshape(1)])

        def ztqz(q: Tensor) -> Tensor:  # weighted moments of [x - m, 1] (the y column unused)
            sums = Moments(p, shift_x=m, shift_y=0.0, device=dev)
            return sums.add_sparse(X.csr, np.zeros(X.shape[0]), q.cpu().numpy()).M[:p + 1, :p + 1]

        psi = r.clamp(-d, d)
        inside = (psi == r).to(F64)
        sums = torch.stack([s @ (psi * (r - 0.5 * psi)), tot_s, s @ (psi * psi), tot_s - s @ inside])
        return sums, -zt(s * psi), ztqz(s * inside)


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


@dataclass
class NewtonRun:
    """Where :func:`minimize` stopped: the point, its value, gap, steps taken and why it stopped."""

    v: Tensor
    value: float
    gap: float
    steps: int
    converged: bool
    message: str


def minimize(f: HuberPass, v: Tensor, max_steps: int, target: float, gap_scale, record=None) -> NewtonRun:
    """Damped Newton on ``f`` from ``v`` until the relative Newton decrement is below ``target``.

    ``gap_scale(value)`` is the denominator of the relative gap; ``record(step, value, v, gap)`` is
    called at every iterate (the epoch loop of a plain fit).
    """
    val, g, H = f(v)
    gap, message = float("nan"), f"stopped at the iteration limit ({max_steps})"
    for it in range(max_steps + 1):
        d = _newton_step(g, H)
        dec = float(-(g @ d))
        gap = max(dec, 0.0) / 2 / gap_scale(val)
        if record is not None:
            record(it, val, v, gap)
        if dec <= 0 or gap <= target:
            return NewtonRun(v, val, gap, it, True, "converged (Newton decrement below tolerance)")
        if it == max_steps:
            break
        t = 1.0
        while True:
            nv = v + t * d
            nval, ng, nH = f(nv)
            if nval <= val - 1e-4 * t * dec or t < 1e-12:
                break
            t *= 0.5
        if nval > val:  # no descent at float precision: v is optimal to rounding
            f(v)  # leave f's residual sums at v
            return NewtonRun(v, val, gap, it, True, "converged (no further decrease at float precision)")
        v, val, g, H = nv, nval, ng, nH
    return NewtonRun(v, val, gap, max_steps, False, message)
