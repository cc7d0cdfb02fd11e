"""Exact L1/quantile regression of data read in passes: Portnoy–Koenker as a streaming algorithm.

For a source that is not in memory (a file larger than memory, the shards of many processes) the
objective of :mod:`.solver` is minimized without holding the rows. Memory is the sample plus the
kept rows (about ``1.8 m``, ``m = ((q+1) n)^(2/3)``: 0.9M rows of 70M), not ``n``. One round:

1. **Sampling pass** (:func:`~.sampling.sample_pass`): a uniform sample of m rows, the weight sum,
   the zero model's loss and each column's range (for the scales and constant columns).
2. **LP on the sample** (loose tolerance): ``beta0``; ``L`` the Cholesky factor of ``Zs'Zs``.
3. **Classifying pass**: ``kappa_i = r_i / ||L^-1 z_i||`` at ``beta0``; rows with ``kappa`` below
   ``lo`` / above ``hi`` (the sample's quantiles of kappa at ``tau -/+ 0.4 m / n``) are folded into
   two glob sums, the others (about ``0.8 m``) are kept.
4. **LP on the kept rows and the two globs** (+ the L1 penalty's rows), polished to a vertex.
5. **Check.** A globbed row keeps its sign unless ``|z_i (beta - beta0)| >= |r_i|``, and
   ``|z_i d| <= ||L^-1 z_i|| ||L' d||``, so ``||L'(beta - beta0)|| < min(hi, -lo)`` proves every
   sign without reading the data again; the rows of a wider band held in memory settle a larger
   move. Otherwise a **check pass** finds the rows whose sign flipped; up to ``0.1 m`` of them are
   moved into the kept rows and the LP is solved again from its last optimum (three times at
   most), more start a new round with ``2 m``.

A source that can read a few of its pieces (Parquet row groups, :meth:`Batches.sample_units`) first
tries a round whose sample comes from a few row groups picked at random: its classifying pass also
sums what the sampling pass would have (rows, weights, column ranges and moments), so a file in
random row order is fitted in one pass. Those moments and the sample also bound the design's
condition number (:func:`~.scales.design_proved`), which spares the singular-design check its pass.
The sample only steers the round; the proof of step 5 makes
the result exact whatever it was, and a failed round falls back to the uniform sampling pass.

When every glob keeps its sign the reduced LP has the full LP's optimum and its objective and dual
bound are the full problem's, so the certificate ``gap_`` is that of the in-memory fit. Problems
with fewer than ``max(min_rows, 3 m)`` rows are read into memory and solved directly. Across
processes every sum goes through ``allreduce`` and every kept row to every process, so all take
the same steps.
"""
from __future__ import annotations

import torch
from torch import Tensor

from gradfit.data.stream import release_memory
from gradfit.problem.objective import Objective
from gradfit.solvers.base import FitResult, Settings, SolverMismatch
from gradfit.solvers.exact import record_design_note
from gradfit.solvers.ipm.lp import frisch_newton, pinball_sum, weighted_gram
from gradfit.solvers.ipm.passes import F64, known_rows, load_pass
from gradfit.solvers.ipm.sampling import Totals, sample_pass, unit_sample_pass
from gradfit.solvers.ipm.split import Split, check_pass, classify_pass, near_check
from gradfit.solvers.ipm.preprocessing import (REDUCED_ROUNDS, SAMPLE_TOL, glob_rows, kth_fraction, solve_rows,
                                              stack_rows, with_rows)
from gradfit.solvers.ipm.finish import conclude, l1_rows, vertex
from gradfit.solvers.ipm.scales import DESIGN_PROOF_ROWS, Scales, design_proved, used_columns

MAX_ROUNDS = 12
MAX_FIXUPS = 3
NEAR_FACTOR = 1.0  # near rows held per kept row (see _Round.run)
UNITS = "a few row groups"  # where a sample came from (the fit's info["sample_from"])


class _Round:
    """One Portnoy–Koenker round on a sample; :meth:`run` returns the certified optimum or None."""

    def __init__(self, fit: "_Streamed", sample: Tensor):
        self.f, self.sample = fit, sample

    def run(self):
        f, sample = self.f, self.sample
        self.sample = None  # held only until the pass (its first rows prove the design)
        p, m, n = f.p, sample.shape[0], f.n
        Ds = f.scales.design(sample)
        Zs, ys, us = Ds.full(), sample[:, p], sample[:, p + 1]
        _, beta0, _, _, it, k = solve_rows(Zs, ys, us, f.extra_for(float(us.sum())), f.tau, max(f.tol, SAMPLE_TOL),
                                           f.max_iter, False, f.gen, f.min_lp_rows, f.mm_factor, trial=True)
        f.n_iter += it
        f.lp_solves += k
        release_memory()  # the sample LP's work arrays, before the pass
        L, info = torch.linalg.cholesky_ex(weighted_gram(Zs, torch.ones(m, dtype=F64)))
        if int(info) != 0:  # a singular sample
            return None
        Linv_t = torch.linalg.solve_triangular(L, torch.eye(L.shape[0], dtype=F64), upper=False).T
        fold, shift = f.scales.full_fold(Ds, torch.cat([beta0[:, None], Linv_t], 1))
        P = torch.addmm(shift, sample[:, :p], fold)
        kappa = (ys - P[:, 0]) / P[:, 1:].square().sum(1).sqrt().clamp_min(1e-12)
        M = f.mm_factor * m
        lo = kth_fraction(kappa, max(1.0 / m, f.tau - M / (2 * n)))
        hi = kth_fraction(kappa, min(f.tau + M / (2 * n), (m - 1.0) / m))
        # the near band: NEAR_FACTOR M more rows, globbed but also held, so that a fit that moved by
        # less than this band's margin is checked on them instead of in a pass over the data
        lo2 = kth_fraction(kappa, max(1.0 / m, f.tau - (1 + NEAR_FACTOR) * M / (2 * n)))
        hi2 = kth_fraction(kappa, min(f.tau + (1 + NEAR_FACTOR) * M / (2 * n), (m - 1.0) / m))
        proof_rows = sample[:DESIGN_PROOF_ROWS].clone()
        Ds = f.design  # its scales fold the fits below
        del sample, Zs, ys, us, P, kappa
        release_memory()  # 0.25 GB of sample and its products at 70M rows, not held through the pass
        split = classify_pass(f.data, Split(fold, shift, float(lo), float(hi), float(min(lo2, lo)),
                                            float(max(hi2, hi))), cap=int(4 * M) + 1000,
                              near_cap=int(4 * NEAR_FACTOR * M) + 1000, totals=(f.tau, f.scales.center))
        if not f.take_totals(split.totals, proof_rows):
            return None
        if split.overflow:
            return None
        margin = min(split.hi, -split.lo)
        margin2 = min(split.hi2, -split.lo2) if split.near is not None else margin
        beta = None
        for _ in range(MAX_FIXUPS + 1):
            Dk = f.scales.design(split.kept)
            globs = glob_rows(Dk, torch.cat([split.globs[:, :p][:, f.scales.used], split.globs[:, p:]], 1))
            # a fix-up moved a few rows: the last optimum starts the solve of nearly the same rows
            rows, beta, p_red, lower, it, k = solve_rows(Dk.full(), split.kept[:, p], split.kept[:, p + 1],
                                                         with_rows(globs, f.extra), f.tau, f.tol, f.max_iter,
                                                         f.polish, f.gen, f.min_lp_rows, f.mm_factor,
                                                         max_rounds=REDUCED_ROUNDS, start=beta)
            del Dk
            release_memory()  # the LP's work arrays, before a pass or the check
            f.n_iter += it
            f.lp_solves += k
            f.reduced_rows = int(rows[0].shape[0])
            moved = float((L.T @ (beta - beta0)).norm())
            if margin > 0 and moved < 0.9 * margin:  # every globbed row provably keeps its sign
                f.proof = "bound"
                return beta, p_red, lower
            a, c = Ds.fold(beta)
            a_full = torch.zeros(p, dtype=F64)
            a_full[f.scales.used] = a
            if split.near is not None and margin2 > 0 and moved < 0.9 * margin2:
                # rows outside the near band provably keep their sign; the near rows are at hand
                bad, where = near_check(f.data, split, (a_full, c))
                if bad.shape[0] == 0:
                    f.proof = "bound and the near rows"
                    return beta, p_red, lower
            elif f.sampled == UNITS:
                # the few row groups steered the fit badly (a file in a meaningful row order): a
                # uniform sample's round costs two passes, and a check pass here would rarely end it
                return None
            else:
                f.passes += 1
                total, bad, where = check_pass(f.data, split, (a_full, c), f.tau, cap=int(0.1 * M))
                if bad is not None and bad.shape[0] == 0:
                    f.proof = "check pass"
                    if f.extra is not None:
                        total += float(pinball_sum(f.extra[1] - f.extra[0] @ beta, f.extra[2], f.tau))
                    return beta, total, lower
            if bad is None or bad.shape[0] > 0.1 * M:
                return None
            f.fixups += 1
            above = bad[:, -1] == 1
            for side, mask in ((0, ~above), (1, above)):
                rows_s = bad[mask, :-1]
                W = rows_s[:, p + 1]
                split.globs[side] -= torch.cat([W @ rows_s[:, :p], (W @ rows_s[:, p]).reshape(1), W.sum().reshape(1)])
            split.kept = torch.cat([split.kept, bad[:, :-1]])
            split.moved.append(where)
            if split.near is not None:  # a row moved by a check pass is no longer a globbed near row
                stay = ~torch.isin(split.near_at, where)
                split.near, split.near_at = split.near[stay], split.near_at[stay]
        return None


class _Streamed:
    def __init__(self, objective: Objective, settings: Settings, tau: float, scale: float):
        opts = settings.options
        self.data, self.objective, self.tau, self.scale = objective.data, objective, tau, scale
        self.p = objective.n_features
        self.tol, self.max_iter, self.polish = opts.ipm_tol, opts.max_iter, opts.polish
        self.mm_factor = opts.mm_factor
        self.min_rows = opts.min_rows if opts.preprocess else 1 << 62
        self.min_lp_rows = max(self.min_rows, 20000)  # an LP in memory smaller than this is solved directly
        self.m, self.whiten = opts.subsample, opts.whiten
        self.gen = torch.Generator().manual_seed(settings.seed + 7919 * getattr(self.data, "rank", 0))
        self.n_iter = self.lp_solves = self.fixups = self.reduced_rows = 0
        self.passes, self.proof, self.extra, self.totals, self.n = 0, "direct", None, None, 0
        self.sampled = "none"

    def m_for(self, n: int) -> int:
        q = self.p + int(self.objective.fit_intercept)
        return int(self.m) if self.m else int(((q + 1) * n) ** (2.0 / 3.0))

    def extra_for(self, weight_sum: float):
        """The L1 penalty's LP rows for rows of this total weight (None without a penalty)."""
        return l1_rows(self.design, self.objective.penalty.l1, weight_sum, self.scale)

    def solve(self):
        known = known_rows(self.data)
        if known is not None:
            found = self._from_units(known)
            if found is not None:
                return found
        world = getattr(self.data, "world", 1)
        m = None

        def target(n_local: int) -> int:
            n = known if known is not None else n_local * world
            return max(m or self.m_for(n), self.min_rows)

        for _ in range(MAX_ROUNDS):
            self.passes += 1
            sample, self.totals = sample_pass(self.data, self.tau, target, self.gen)
            self.sampled = "a uniform sampling pass"
            n = self.n = self.totals.n
            if n == 0 or not self.totals.weight_sum > 0:
                raise SolverMismatch("solver 'ipm' got no rows with positive weight; check the data and its weights")
            self._check_finite()
            if not hasattr(self, "scales"):
                self.scales = Scales(sample, self.totals.col_min, self.totals.col_max,
                                      self.objective.fit_intercept, self.whiten)
                self.design = self.scales.design(sample[:0])  # the scales, not the rows
                if self.design.shape[1] == 0:  # nothing to fit: y = 0 is the optimum
                    return torch.zeros(0, dtype=F64), self.totals.zero_sum, self.totals.zero_sum
            self.extra = self.extra_for(self.totals.weight_sum)
            m = m or min(self.m_for(n), sample.shape[0])
            if n < max(self.min_rows, 3 * m):
                return self._direct(sample if sample.shape[0] == n else None)
            sample = sample[:m]  # sorted by key: its first m rows are a uniform sample too
            self.subsample = sample.shape[0]
            self.passes += 1
            rnd, sample = _Round(self, sample), None
            found = rnd.run()
            if found is not None:
                return found
            m *= 2
        return self._direct(None)

    def _from_units(self, known: int):
        """The round of a sample drawn from a few row groups (see the module docstring), or None."""
        m = self.m_for(known)
        if known < max(self.min_rows, 3 * m):
            return None
        sample = unit_sample_pass(self.data, m, self.gen)
        if sample is None or sample.shape[0] < m // 2 or not bool(torch.isfinite(sample).all()):
            return None
        lo, hi = torch.aminmax(sample[:, :self.p], dim=0)
        self.scales = Scales(sample, lo, hi, self.objective.fit_intercept, self.whiten)
        self.design = self.scales.design(sample[:0])  # the scales, not the rows
        found = None
        if self.design.shape[1] > 0:
            self.n, self.subsample, self.sampled = known, sample.shape[0], UNITS
            self.passes += 1
            rnd, sample = _Round(self, sample), None
            found = rnd.run()
        if found is None and self.totals is None:  # its scales were never checked against every row
            del self.scales, self.design
        return found

    def take_totals(self, totals: Totals, sample: Tensor) -> bool:
        """Take the classifying pass's totals when no sampling pass gave them (False: that round's
        sample marked other columns constant than the data has); prove the design well conditioned
        when the totals and the sample allow it (:func:`design_proved`)."""
        if self.totals is None:
            self.totals = totals
            if totals.n == 0 or not totals.weight_sum > 0:
                raise SolverMismatch("solver 'ipm' got no rows with positive weight; check the data and its weights")
            self._check_finite()
            if not torch.equal(used_columns(totals.col_min, totals.col_max, self.objective.fit_intercept),
                               self.scales.used):
                self.totals = None  # these scales leave out a column the data uses: start afresh
                return False
            self.extra = self.extra_for(totals.weight_sum)
        if totals.s1 is not None and totals.finite() and design_proved(totals, sample, self.objective.fit_intercept):
            record_design_note(self.data, self.objective.fit_intercept, "")
        return True

    def _direct(self, rows: Tensor | None):
        if rows is None:
            self.passes += 1
            rows = load_pass(self.data)
        p = self.p
        D = self.scales.design(rows)
        Zr, yr, ur = stack_rows(D.full(), rows[:, p], rows[:, p + 1], self.extra)
        sol = frisch_newton(Zr, yr, ur, self.tau, self.tol, self.max_iter)
        self.n_iter += sol.n_iter
        self.lp_solves += 1
        self.proof, self.subsample, self.reduced_rows = "direct", 0, int(Zr.shape[0])
        return vertex(Zr, yr, ur, self.tau, sol.beta, sol.dual, self.polish)

    def _check_finite(self) -> None:
        if not self.totals.finite():
            self.data.validate()  # raises DataError naming the column and row
            raise ValueError("the data's sums are not finite: values too large for float64; rescale them")


def solve_streamed(name: str, objective: Objective, settings: Settings, tau: float, scale: float,
                   t0: float) -> FitResult:
    """The exact L1/quantile fit of a source read in passes (see the module docstring)."""
    fit = _Streamed(objective, settings, tau, scale)
    beta, p_val, lower = fit.solve()
    info = {"subsample": getattr(fit, "subsample", 0), "reduced_rows": fit.reduced_rows,
            "lp_solves": fit.lp_solves, "ipm_iterations": fit.n_iter, "passes": fit.passes,
            "fixups": fit.fixups, "signs_proved_by": fit.proof, "sample_from": fit.sampled, "used": fit.scales.used}
    return conclude(name, objective, settings, fit.design, beta, float(p_val), float(lower),
                    fit.totals.zero_sum, fit.totals.weight_sum, scale, fit.n_iter, t0, info)

