"""The streamed exact L1/quantile fit (Portnoy–Koenker in passes) against the in-memory fit."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import gradfit
from gradfit.data.batches import Batch
from gradfit.data.files import open_table
from streamed import Streamed  # tests/streamed.py


class WeightedStreamed(Streamed):
    def __init__(self, X, y, w, size):
        super().__init__(X, y, size)
        self.w = torch.tensor(w)

    def __iter__(self):
        for start in range(0, len(self.y), self.size):
            sl = slice(start, start + self.size)
            yield Batch(self.X[sl], self.y[sl], self.w[sl])

    @property
    def has_weight(self):
        return True


def problem(n=6000, p=4, seed=0):
    r = np.random.default_rng(seed)
    X = r.normal(size=(n, p)) * r.uniform(0.5, 20, size=p) + r.normal(size=p) * 5
    y = X @ r.normal(size=p) + 3.0 + r.standard_t(2, size=n)
    return X, y, r.uniform(0.0, 2.0, size=n) * (r.uniform(size=n) > 0.1)  # a tenth of the weights are 0


OPTS = {"min_rows": 1000}  # preprocess these small problems as a big one would be


def _same(streamed, memory, rel=1e-10):
    assert streamed.converged_ and memory.converged_
    assert streamed.gap_ <= 1e-8
    assert abs(streamed.final_loss_ - memory.final_loss_) <= rel * memory.final_loss_


@pytest.mark.parametrize("kw", [dict(loss="l1"), dict(loss="quantile", quantile=0.1),
                                dict(loss="quantile", quantile=0.9), dict(loss="l1", fit_intercept=False),
                                dict(loss="quantile", quantile=0.3, penalty="l1", alpha=0.05)])
@pytest.mark.parametrize("weighted", [False, True])
def test_streamed_equals_in_memory(kw, weighted):
    X, y, w = problem()
    data = WeightedStreamed(X, y, w, 500) if weighted else Streamed(X, y, 500)
    m = gradfit.fit(data, options=OPTS, **kw)
    ref = gradfit.fit(X, y, sample_weight=w if weighted else None, options=OPTS, **kw)
    _same(m, ref)
    if kw.get("fit_intercept", True):  # (without one, this misspecified model defeats the globs in memory too)
        assert m.info["subsample"] > 0 and m.info["reduced_rows"] < 4000  # preprocessed: not every row held
    np.testing.assert_allclose(m.coef_, ref.coef_, rtol=1e-6, atol=1e-8)


def test_a_failed_first_sample_repeats_with_a_larger_one():
    X, y, _ = problem(8000, seed=1)
    ref = gradfit.fit(X, y, loss="quantile", quantile=0.1)
    for seed in range(3):  # a 30-row sample of 8000 rows: its globs are wrong, the check passes find it
        m = gradfit.fit(Streamed(X, y, 700), loss="quantile", quantile=0.1, seed=seed,
                        options={"subsample": 30, "min_rows": 100})
        _same(m, ref)
        assert m.info["passes"] > 3 and m.info["lp_solves"] > 2


def test_small_streamed_source_is_solved_directly_and_constant_columns():
    X, y, _ = problem(300, seed=2)
    X[:, 1] = 4.0  # constant: dropped with an intercept, a scale of 4 without
    for kw in (dict(), dict(fit_intercept=False)):
        m = gradfit.fit(Streamed(X, y, 64), loss="l1", **kw)
        ref = gradfit.fit(X, y, loss="l1", **kw)
        _same(m, ref)
        assert m.info["subsample"] == 0
    assert gradfit.fit(Streamed(X, y, 64), loss="l1").coef_[1] == 0.0


def test_streamed_parquet_file(tmp_path):
    X, y, w = problem(5000, seed=3)
    df = pd.DataFrame(X, columns=["a", "b", "c", "d"]).assign(y=y, w=w)
    df.to_parquet(tmp_path / "t.parquet", row_group_size=700)
    data = open_table(tmp_path / "t.parquet", target="y", weight="w", cache=False)
    assert data.full_batch() is None
    m = gradfit.fit(data, loss="quantile", quantile=0.9, options=OPTS)
    ref = gradfit.fit(X, y, sample_weight=w, loss="quantile", quantile=0.9, options=OPTS)
    _same(m, ref)


def test_streamed_bad_values_and_no_rows(tmp_path):
    X, y, _ = problem(500, seed=4)
    y[17] = np.nan
    with pytest.raises(ValueError, match="not finite|NaN|missing"):
        gradfit.fit(Streamed(X, y, 64), loss="l1")
    X, y, _ = problem(50, seed=4)
    with pytest.raises(ValueError, match="no rows with positive weight"):
        gradfit.fit(WeightedStreamed(X, y, np.zeros(50), 16), loss="l1")


def test_two_passes_suffice_when_the_near_rows_settle_the_signs():
    """The classifying pass also holds the globbed rows of a wider band: a fit that moved less than
    that band's margin is checked on them (fix-ups included) without a third pass over the data."""
    proofs = set()
    for seed in range(3):
        X, y, _ = problem(30000, seed=seed)
        m = gradfit.fit(Streamed(X, y, 1000), loss="l1", options={"min_rows": 1000}, seed=seed)
        ref = gradfit.fit(X, y, loss="l1")
        _same(m, ref, rel=1e-12)
        assert m.info["passes"] == 2
        proofs.add((m.info["signs_proved_by"], m.info["fixups"] > 0))
    assert ("bound and the near rows", True) in proofs  # a near row flipped, moved in memory, re-solved


def _row_group_file(tmp_path, X, y, w=None, rows=1000, name="g.parquet"):
    df = pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])]).assign(y=y)
    if w is not None:
        df = df.assign(w=w)
    df.to_parquet(tmp_path / name, row_group_size=rows)
    return open_table(tmp_path / name, target="y", weight="w" if w is not None else None, cache=False)


@pytest.mark.parametrize("kw,weighted", [(dict(loss="l1"), False), (dict(loss="quantile", quantile=0.9), True),
                                         (dict(loss="quantile", quantile=0.1), False),
                                         (dict(loss="quantile", quantile=0.3, penalty="l1", alpha=0.05), True),
                                         (dict(loss="l1", fit_intercept=False), False)])
def test_one_pass_from_a_few_row_groups(tmp_path, kw, weighted):
    """A Parquet file of many row groups: the sample comes from a few of them and the classifying pass
    sums what the sampling pass would have, so the file is read once (plus those row groups)."""
    X, y, w = problem(60000, seed=5)
    data = _row_group_file(tmp_path, X, y, w if weighted else None)
    m = gradfit.fit(data, options=OPTS, **kw)
    ref = gradfit.fit(X, y, sample_weight=w if weighted else None, options=OPTS, **kw)
    _same(m, ref)
    if kw.get("fit_intercept", True):  # (without one, this misspecified model defeats the globs in memory too)
        assert m.info["sample_from"] == "a few row groups"
        assert m.info["passes"] == 1 and m.info["reduced_rows"] < 20000


def test_row_groups_in_a_meaningful_order_or_missing_a_column_still_exact(tmp_path):
    """The row groups' sample only steers the round: a file sorted by y, or a column that is 0 in every
    row group but one (constant in the sample, not in the data), still gives the in-memory optimum."""
    X, y, _ = problem(60000, seed=6)
    order = np.argsort(y)
    for seed in range(2):
        m = gradfit.fit(_row_group_file(tmp_path, X[order], y[order]), loss="l1", options=OPTS, seed=seed)
        _same(m, gradfit.fit(X, y, loss="l1", options=OPTS))
    X2 = X.copy()
    X2[:-1000, 3] = 0.0
    ref = gradfit.fit(X2, y, loss="quantile", quantile=0.7, options=OPTS)
    for seed in range(3):
        m = gradfit.fit(_row_group_file(tmp_path, X2, y, name="z.parquet"), loss="quantile", quantile=0.7,
                        options=OPTS, seed=seed)
        _same(m, ref)
        assert m.coef_[3] != 0.0


def test_the_one_pass_fit_proves_the_design_or_warns(tmp_path, monkeypatch):
    """A well-conditioned design is proved so from the pass's moments and the sample (no extra moments
    pass for the singular-design check); a duplicated column still gets its SingularDesignWarning."""
    import warnings
    import gradfit.solvers.exact as exact
    calls = []
    real = exact._gram_diagnosis
    monkeypatch.setattr(exact, "_gram_diagnosis", lambda obj: calls.append(1) or real(obj))
    X, y, _ = problem(60000, seed=7)
    with warnings.catch_warnings():
        warnings.simplefilter("error", exact.SingularDesignWarning)
        m = gradfit.fit(_row_group_file(tmp_path, X, y), loss="l1", options=OPTS)
    assert m.info["sample_from"] == "a few row groups" and calls == []
    X3 = np.column_stack([X, X[:, 0] * 2.0])
    with pytest.warns(exact.SingularDesignWarning, match="x0.*x4|x4.*x0"):
        gradfit.fit(_row_group_file(tmp_path, X3, y, name="d.parquet"), loss="l1", options=OPTS)
    assert calls


def test_one_pass_bad_value_names_the_row(tmp_path):
    X, y, _ = problem(60000, seed=8)
    X[45678, 2] = np.inf
    with pytest.raises(gradfit.data.batches.DataError, match="x2.*45679|45679.*x2"):
        gradfit.fit(_row_group_file(tmp_path, X, y), loss="l1", options=OPTS)


@pytest.mark.parametrize("tau", [0.5, 0.9])
def test_a_fix_up_starts_from_the_last_optimum(tau):
    """A few rows changed sides after a solve: the re-solve classifies every row by the last optimum
    and solves only the band nearest to it (no sample LP), and still reaches the direct optimum."""
    from gradfit.solvers.ipm.design import Design
    from gradfit.solvers.ipm.preprocessing import pfn, solve_to_vertex
    r = np.random.default_rng(12)
    n, q = 200000, 6
    Z = torch.from_numpy(np.column_stack([r.normal(size=(n, q - 1)), np.ones(n)]))
    y = Z @ torch.linspace(-1, 1, q, dtype=torch.float64) + torch.from_numpy(r.standard_t(3, size=n))
    u = torch.ones(n, dtype=torch.float64)
    D = Design(Z, torch.zeros(q, dtype=torch.float64), torch.ones(q, dtype=torch.float64),
               torch.ones(q, dtype=torch.bool), False)
    first = pfn(D, y, u, tau, generator=torch.Generator().manual_seed(0))
    y2 = y.clone()
    y2[:300] += 3.0 * torch.sign(y[:300] - Z[:300] @ first.beta)  # 300 rows pushed further out, 300 flipped in
    y2[300:600] -= 2.0 * torch.sign(y[300:600] - Z[300:600] @ first.beta)
    warm = pfn(D, y2, u, tau, generator=torch.Generator().manual_seed(0), start=first.beta, max_rounds=1)
    beta, value, lower, _, _ = solve_to_vertex(Z, y2, u, tau, 1e-12, 100, True)
    assert warm.subsample > 0 and warm.rounds <= 3  # solved on the band (and fix-ups), not directly
    assert warm.Z.shape[0] < n // 4
    assert abs(warm.value - value) <= 1e-11 * value
