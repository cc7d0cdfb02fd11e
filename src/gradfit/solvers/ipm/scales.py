"""The scales of the streamed L1/quantile fit (:mod:`.streamed`): which columns it uses, how rows are
standardized, and whether its pass proved the design well conditioned."""
from __future__ import annotations

import torch
from torch import Tensor

from gradfit.solvers.ipm.design import Design, whitening
from gradfit.solvers.ipm.lp import weighted_gram
from gradfit.solvers.ipm.passes import F64
from gradfit.solvers.ipm.sampling import Totals

# The unpenalized design counts as well conditioned (no SingularDesignWarning, no moments pass) when
# this bound on cond(Z'SZ) holds; exact.COND_WARN warns above 1e16, the margin covers rounding
DESIGN_PROOF_COND = 1e12
DESIGN_PROOF_ROWS = 1 << 16


def used_columns(col_min: Tensor, col_max: Tensor, intercept: bool) -> Tensor:
    """The columns the LP uses: a constant column is left out when the intercept carries it (or it is 0)."""
    constant = col_min == col_max
    return ~(constant & (intercept | (col_min == 0)))


def design_proved(totals: Totals, sample: Tensor, intercept: bool) -> bool:
    """Whether the unpenalized design ``[X, 1]`` is provably identified and well conditioned, as
    :func:`gradfit.solvers.exact.design_warning` standardizes it (columns centred with an intercept,
    scaled to unit mean square), from the pass's column moments and the sample's rows alone.

    The sample's rows are distinct rows of the data, so with the data's centre and scales
    ``A >= A_s`` (every row adds a positive semidefinite term): ``lambda_min(A) >= lambda_min(A_s)``,
    and ``lambda_max(A) <= trace(A)`` = the number of columns. A bound ``k / lambda_min(A_s)`` below
    DESIGN_PROOF_COND proves what the moments pass would find; above it (a nearly singular design,
    or a constant column) nothing is recorded and that pass decides."""
    p, sw = totals.col_min.numel(), totals.weight_sum
    mean = totals.center + totals.s1 / sw
    var = (totals.s2 / sw - (totals.s1 / sw).square()).clamp_min(0.0)
    D = (var if intercept else var + mean.square()).sqrt()
    if bool(((D <= 1e-10 * mean.abs()) | (D == 0)).any()):
        return False
    sample = sample[:DESIGN_PROOF_ROWS]  # fewer rows: a weaker bound, as valid, and cheap
    Z = (sample[:, :p] - mean) / D if intercept else sample[:, :p] / D
    if intercept:
        Z = torch.cat([Z, torch.ones(Z.shape[0], 1, dtype=F64)], 1)
    lam = float(torch.linalg.eigvalsh(weighted_gram(Z, sample[:, p + 1]) / sw)[0])
    return lam > 0 and Z.shape[1] / lam < DESIGN_PROOF_COND


class Scales:
    """Centre, scale, used columns and whitening, fixed from the first sample (any scale gives the
    same optimum): :meth:`design` standardizes any rows the same way."""

    def __init__(self, sample: Tensor, col_min: Tensor, col_max: Tensor, intercept: bool, whiten: bool):
        p = col_min.numel()
        X, s = sample[:, :p], sample[:, p + 1]
        tot = s.sum()
        self.center = (s @ X) / tot  # the shift of the classifying pass's column moments
        mu = self.center if intercept else torch.zeros(p, dtype=F64)
        sd = ((s @ (X - mu).square()) / tot).sqrt()
        constant = col_min == col_max
        self.used = used_columns(col_min, col_max, intercept)
        sd = torch.where(constant, col_min.abs(), sd)
        sd = torch.where(sd > 0, sd, (col_max - col_min).clamp_min(1e-300))  # constant on the sample only
        self.mu, self.sd, self.intercept, self.T = mu, sd[self.used], intercept, None
        if whiten:
            self.T = whitening(self.design(sample))

    def design(self, rows: Tensor) -> Design:
        D = Design(rows[:, :self.mu.numel()], self.mu, self.sd, self.used, self.intercept)
        if self.T is not None:
            D.whiten(self.T)
        return D

    def full_fold(self, D: Design, M: Tensor) -> tuple[Tensor, Tensor]:
        """(A, c) with ``Z @ M = X @ A + c`` on all p columns (zero rows for unused ones)."""
        A, c = D.fold(M)
        full = torch.zeros((self.mu.numel(),) + tuple(A.shape[1:]), dtype=F64)
        full[self.used] = A
        return full, c
