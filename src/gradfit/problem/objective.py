"""The objective a fit minimizes, joining a loss, the data, sample weights and a penalty once.

    F(w, b) = sum_i s_i * rho(y_i - x_i . w - b) / sum_i s_i  +  P(w)

Parameters travel as one vector ``theta = [w_1 .. w_p, b]`` (intercept last). Every pass over
the data sums per batch and combines the sums through ``data.allreduce`` so streamed and
distributed data give the same numbers as in-memory data.
"""
from __future__ import annotations

import torch
from torch import Tensor

from gradfit.problem.batches import Batch, Batches
from gradfit.problem.losses import Loss
from gradfit.problem.penalties import Penalty


GAP_FLOOR = 1e-6  # relative gaps are measured against at least this fraction of the zero model's loss


class Objective:
    def __init__(self, loss: Loss, penalty: Penalty, data: Batches, fit_intercept: bool = True):
        self.loss, self.penalty, self.data = loss, penalty, data
        self.fit_intercept = fit_intercept
        self.n_features = data.n_features
        self.dtype, self.device = data.dtype, data.device
        self._weight_sum: Tensor | None = None
        self._zero_value: float | None = None
        self._distributed = data.distributed  # one process: skip packing sums for allreduce

    # -- parameters -------------------------------------------------------------------
    def zeros(self) -> Tensor:
        return torch.zeros(self.n_features + 1, dtype=self.dtype, device=self.device)

    @staticmethod
    def split(theta: Tensor) -> tuple[Tensor, Tensor]:
        return theta[:-1], theta[-1]

    def predict(self, X: Tensor, theta: Tensor) -> Tensor:
        return torch.addmv(theta[-1], X, theta[:-1])  # b + X @ w in one kernel, as nn.Linear's addmm

    # -- sums over rows -------------------------------------------------------------------
    def _batches(self):
        full = self.data.full_batch()
        return (full,) if full is not None else self.data

    @property
    def weight_sum(self) -> Tensor:
        if self._weight_sum is None:
            total = sum((b.weight_sum() for b in self._batches()),
                        torch.zeros((), dtype=self.dtype, device=self.device))
            self._weight_sum = self.data.allreduce(total)
        return self._weight_sum

    def batch_sums(self, batch: Batch, theta: Tensor, need_grad: bool = True):
        """(sum s*rho, gradient of that sum wrt theta or None) over one batch."""
        r = batch.y - self.predict(batch.X, theta)
        rho = self.loss.value(r)
        if batch.weight is not None:
            rho = rho * batch.weight
        if not need_grad:
            return rho.sum(), None
        d = self.loss.derivative(r)
        if batch.weight is not None:
            d = d * batch.weight
        gb = d.sum() if self.fit_intercept else d.new_zeros(())
        g = torch.cat([batch.X.T @ d, gb.reshape(1)]).neg_()  # one allocation: this runs every step
        return rho.sum(), g

    def _finish(self, loss_sum: Tensor, grad_sum: Tensor | None, theta: Tensor):
        value = loss_sum / self.weight_sum
        if self.penalty.alpha:
            value = value + self.penalty.value(theta[:-1])
        if grad_sum is None:
            return value, None
        grad = grad_sum / self.weight_sum
        if self.penalty.l2:
            grad[:-1] += self.penalty.gradient(theta[:-1])
        return value, grad

    def value_and_grad(self, theta: Tensor) -> tuple[Tensor, Tensor]:
        """Full objective and its (sub)gradient at ``theta``: one pass over the data."""
        full = self.data.full_batch()
        if full is not None and not self._distributed:  # the per-epoch hot path of full-batch GD
            return self._finish(*self.batch_sums(full, theta), theta)
        loss_sum = torch.zeros((), dtype=self.dtype, device=self.device)
        grad_sum = torch.zeros_like(theta)
        for batch in self._batches():
            ls, gs = self.batch_sums(batch, theta)
            loss_sum += ls
            grad_sum += gs
        both = self.data.allreduce(torch.cat([loss_sum[None], grad_sum]))
        return self._finish(both[0], both[1:], theta)

    def value(self, theta: Tensor) -> Tensor:
        loss_sum = torch.zeros((), dtype=self.dtype, device=self.device)
        for batch in self._batches():
            loss_sum += self.batch_sums(batch, theta, need_grad=False)[0]
        return self._finish(self.data.allreduce(loss_sum), None, theta)[0]

    def minibatch_value_and_grad(self, batch: Batch, theta: Tensor) -> tuple[Tensor, Tensor]:
        """Objective estimated on one batch (a weighted mean over its rows) and its gradient."""
        ls, gs = self.batch_sums(batch, theta)
        ws = batch.weight_sum() if batch.weight is not None else float(len(batch))
        value = ls / ws
        grad = gs.div_(ws)
        if self.penalty.alpha:
            value = value + self.penalty.value(theta[:-1])
            grad[:-1] += self.penalty.gradient(theta[:-1])
        return value, grad

    # -- optimality -------------------------------------------------------------------------
    def zero_model_value(self) -> float:
        """The weighted mean loss of predicting 0 everywhere: the problem's natural size (one pass, cached)."""
        if self._zero_value is None:
            total = torch.zeros((), dtype=self.dtype, device=self.device)
            for batch in self._batches():
                rho = self.loss.value(batch.y)
                total += (rho if batch.weight is None else rho * batch.weight).sum()
            self._zero_value = float(self.data.allreduce(total) / self.weight_sum)
        return self._zero_value

    def gap_scale(self, value: float) -> float:
        """Denominator of a relative gap: |F|, floored at ``GAP_FLOOR`` times the zero model's loss, so
        an optimum that interpolates the data (F* = 0 up to round-off) does not make round-off a 100% gap."""
        return max(abs(value), GAP_FLOOR * self.zero_model_value(), 1e-300)

    def stationarity(self, theta: Tensor, grad: Tensor) -> Tensor:
        """Norm of the minimal subgradient (zero exactly at the optimum of a smooth datafit)."""
        dist = self.penalty.subdiff_distance(theta[:-1], grad[:-1])
        return torch.sqrt((dist * dist).sum() + grad[-1] ** 2)


EPS = 2.220446049250313e-16  # float64 unit roundoff (x2): two computed values this close are not told apart


def relative_gap(value: float, optimum: float, scale: float | None = None) -> float:
    """A bound on ``(F - F*) / scale`` from computed values ``value`` (F) and ``optimum`` (F*, or a
    lower bound on it); ``scale`` defaults to |F*| (see :meth:`Objective.gap_scale`).

    Never negative, and never 0 unless both values are exactly 0: the difference of two float64
    numbers is only known to within their rounding, so ``EPS * (|F| + |F*|)`` is added.
    """
    scale = max(abs(optimum), 1e-300) if scale is None else scale
    return (max(value - optimum, 0.0) + EPS * (abs(value) + abs(optimum))) / scale
