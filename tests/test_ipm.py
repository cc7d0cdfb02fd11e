"""The ipm solver (Frisch–Newton + Portnoy–Koenker) against scipy's HiGHS linear programs."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linprog

import gradfit
from gradfit.solvers import SolverMismatch, auto_name, get_solver
from gradfit.problem.losses import get_loss
from gradfit.problem.penalties import get_penalty
from streamed import Streamed  # tests/streamed.py


def lp_reference(X, y, tau, s=None, fit_intercept=True, scale=1.0, l1=0.0):
    """min scale * sum s rho_tau(y - Xw - b) / sum s + l1 ||w||_1 as an LP solved by HiGHS.

    Variables: w+ , w- (p each), b (free, or fixed 0), u+, u- (n each) with Xw + b + u+ - u- = y."""
    n, p = X.shape
    s = np.ones(n) if s is None else s
    S = s.sum()
    A = np.hstack([X, -X, np.ones((n, 1)), np.eye(n), -np.eye(n)])
    c = np.r_[np.full(2 * p, l1), 0.0, scale * tau * s / S, scale * (1 - tau) * s / S]
    free_b = (None, None) if fit_intercept else (0.0, 0.0)
    bounds = [(0, None)] * (2 * p) + [free_b] + [(0, None)] * (2 * n)
    res = linprog(c, A_eq=A, b_eq=y, bounds=bounds, method="highs")
    assert res.status == 0
    w = res.x[:p] - res.x[p:2 * p]
    return res.fun, w, res.x[2 * p]


def make(n, p, seed, heavy=True):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) * rng.uniform(0.1, 100, size=p) + rng.normal(size=p) * 10
    noise = rng.standard_t(2, size=n) if heavy else rng.normal(size=n)
    y = X @ rng.normal(size=p) + 3.0 + noise
    return X, y, rng


@pytest.mark.parametrize("tau", [0.1, 0.5, 0.9])
def test_quantile_matches_highs(tau):
    X, y, _ = make(300, 4, seed=int(tau * 10))
    m = gradfit.fit(X, y, loss="quantile", quantile=tau)
    ref, w, b = lp_reference(X, y, tau)
    assert abs(m.final_loss_ - ref) <= 1e-9 * ref
    assert m.converged_ and m.gap_ <= 1e-8
    np.testing.assert_allclose(m.coef_, w, rtol=1e-6, atol=1e-8)
    assert m.intercept_ == pytest.approx(b, rel=1e-6, abs=1e-8)
    pred = m.predict(X)
    assert abs(np.mean(y - pred < 0) - tau) <= 4 / 300 + 1e-12  # a tau-quantile fit splits the rows


def test_absolute_loss_weights_and_no_intercept():
    X, y, rng = make(250, 3, seed=5)
    s = rng.uniform(0.2, 3.0, size=250)
    for fit_intercept in (True, False):
        m = gradfit.fit(X, y, loss="l1", sample_weight=s, fit_intercept=fit_intercept)
        ref, w, b = lp_reference(X, y, 0.5, s, fit_intercept, scale=2.0)
        assert abs(m.final_loss_ - ref) <= 1e-9 * ref
        assert m.gap_ <= 1e-8
        np.testing.assert_allclose(m.coef_, w, rtol=1e-6, atol=1e-8)
        if not fit_intercept:
            assert m.intercept_ == 0.0
        # the objective gradfit reports is the weighted mean absolute error at its own coefficients
        assert m.final_loss_ == pytest.approx(np.sum(s * np.abs(y - m.predict(X))) / s.sum(), rel=1e-12)


def test_degenerate_ties_duplicates_and_constant_column():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 4, size=120).astype(float)       # heavy ties in x
    y = np.round(2 * x + rng.integers(-2, 3, size=120))  # integer y: many exact fits
    X = np.c_[x, np.ones(120) * 7.0, x ** 2]             # a constant column, collinear with the intercept
    X = np.vstack([X, X[:40]])                           # duplicated rows
    y = np.r_[y, y[:40]]
    m = gradfit.fit(X, y, loss="l1")
    ref, _, _ = lp_reference(X, y, 0.5, scale=2.0)
    assert abs(m.final_loss_ - ref) <= 1e-9 * ref
    assert m.converged_ and m.gap_ <= 1e-8


def test_l1_penalty_is_exact():
    X, y, _ = make(200, 5, seed=11)
    X = X / X.std(0)
    for tau in (0.3, 0.5):
        m = gradfit.fit(X, y, loss="quantile", quantile=tau, penalty="l1", alpha=0.2)
        ref, w, _ = lp_reference(X, y, tau, l1=0.2)
        assert abs(m.final_loss_ - ref) <= 1e-9 * ref
        assert m.gap_ <= 1e-8
        assert np.sum(m.coef_ == 0) >= 1 or np.allclose(m.coef_, w, atol=1e-7)


def test_preprocessing_path_gives_same_optimum():
    X, y, rng = make(6000, 3, seed=2)
    s = rng.uniform(0.5, 2.0, size=6000)
    opts = {"min_rows": 1000, "subsample": 400}
    m = gradfit.fit(X, y, loss="quantile", quantile=0.25, sample_weight=s, options=opts)
    assert m.info["subsample"] >= 400 and m.info["reduced_rows"] < 6000
    full = gradfit.fit(X, y, loss="quantile", quantile=0.25, sample_weight=s, options={"preprocess": False})
    assert m.final_loss_ == pytest.approx(full.final_loss_, rel=1e-12)
    assert m.gap_ <= 1e-8 and full.gap_ <= 1e-8
    np.testing.assert_allclose(m.coef_, full.coef_, rtol=1e-7)



def test_streamed_source_gives_the_lp_optimum():
    X, y, _ = make(400, 3, seed=8)
    m = gradfit.fit(Streamed(X, y, 64), loss="l1")
    ref, _, _ = lp_reference(X, y, 0.5, scale=2.0)
    assert abs(m.final_loss_ - ref) <= 1e-9 * ref


def test_certificate_reports_an_unconverged_run():
    X, y, _ = make(300, 4, seed=9)
    m = gradfit.fit(X, y, loss="l1", options={"max_iter": 2, "polish": False}, warn=False)
    assert not m.converged_ and m.gap_ > 1e-8
    ref, _, _ = lp_reference(X, y, 0.5, scale=2.0)
    assert m.final_loss_ - ref <= m.gap_ * m.final_loss_ * (1 + 1e-9)  # the gap bounds the true excess


def test_registry_and_mismatch():
    loss = get_loss("l1")
    assert auto_name(loss, get_penalty("none")) == "ipm"
    assert get_solver("ipm", get_loss("quantile", tau=0.2), get_penalty("l1", 0.1)).name == "ipm"
    with pytest.raises(SolverMismatch, match="quadratic"):
        get_solver("ipm", loss, get_penalty("l2", 1.0))
    with pytest.raises(SolverMismatch):
        get_solver("ipm", get_loss("l2"), get_penalty("none"))


def test_ill_conditioned_polynomial_and_collinear_columns():
    rng = np.random.default_rng(0)
    x = rng.uniform(1, 2, size=400)
    y = np.sin(3 * x) + rng.standard_t(3, size=400) * 0.1
    poly = np.vander(x, 11, increasing=True)[:, 1:]                         # degree 10 on [1, 2]
    coll = np.c_[poly[:, :3], poly[:, :3] @ [1, 2, 3] + 1e-9 * rng.normal(size=400)]
    for X, tau in ((poly, 0.5), (coll, 0.3)):
        m = gradfit.fit(X, y, loss="quantile", quantile=tau)
        assert m.converged_ and m.gap_ <= 1e-8 and m.info["whitened"]
        _, w, b = lp_reference(X, y, tau)
        F = lambda w, b: np.mean(np.where(y - X @ w - b >= 0, tau, tau - 1) * (y - X @ w - b))
        # HiGHS stops at its feasibility tolerance here; ours is certified and at least as good
        assert F(m.coef_, m.intercept_) <= F(w, b) * (1 + 1e-7)


def test_exactly_singular_design_is_reported():
    X, y, _ = make(200, 3, seed=6)
    X = np.c_[X, X[:, 0] - 2 * X[:, 1]]
    m = gradfit.fit(X, y, loss="l1")
    ref, _, _ = lp_reference(X, y, 0.5, scale=2.0)
    assert m.info["rank"] == 4 and m.info["full_rank"] == 5 and m.final_loss_ <= ref * (1 + 1e-9) and m.gap_ <= 1e-8


def test_compiled_interior_point_matches_the_torch_one():
    """_fnb.c runs lp.py's iteration fused: the same iterates up to rounding, so the same answer."""
    import torch
    from gradfit.solvers.ipm import native
    from gradfit.solvers.ipm.lp import frisch_newton_torch
    if native._load() is None:
        pytest.skip("the compiled interior point was not built (no C compiler)")
    X, y, rng = make(3000, 5, seed=21)
    Z = torch.from_numpy(np.c_[(X - X.mean(0)) / X.std(0), np.ones(len(y))])
    yt, u = torch.from_numpy(y), torch.from_numpy(rng.uniform(0.5, 2.0, size=len(y)))
    for tau in (0.1, 0.5, 0.9):
        beta, dual, it, gap, converged = native.fnb(Z, yt, u, tau, 1e-11, 100)
        ref = frisch_newton_torch(Z, yt, u, tau, 1e-11, 100)
        assert converged and ref.converged and gap <= 1e-11 and abs(it - ref.n_iter) <= 1
        np.testing.assert_allclose(beta.numpy(), ref.beta.numpy(), rtol=1e-7, atol=1e-9)
        assert bool(((dual >= 0) & (dual <= u)).all())
    # a rank-deficient design cannot be factored: None, and frisch_newton falls back to torch
    assert native.fnb(torch.zeros(50, 3, dtype=torch.float64), yt[:50], u[:50], 0.5, 1e-11, 100) is None


def _lp_rows(n, q, seed, weights="ones", collinear=False):
    """Rows of a reduced LP: q - 1 standardized columns and the intercept (q = 1: the intercept alone)."""
    import torch
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, q - 1))
    if collinear and q > 2:
        X[:, 1] = X[:, 0] + 1e-3 * rng.normal(size=n)  # nearly collinear, as a standardized design can be
    Z = np.c_[X, np.ones(n)]
    y = Z @ rng.normal(size=q) + rng.standard_t(3, size=n)
    u = np.ones(n)
    if weights == "wide":  # weights over six decades
        u = np.exp(rng.uniform(-7, 7, size=n))
    elif weights == "globs":  # two heavy rows, as the streamed LP's globs
        u[-2:] = (1e4, 3e4)
    return torch.from_numpy(Z), torch.from_numpy(y), torch.from_numpy(u)


@pytest.mark.parametrize("n, q, weights, collinear", [
    (1, 1, "ones", False), (3, 2, "ones", False), (7, 3, "wide", False), (101, 1, "ones", False),
    (255, 4, "wide", True), (257, 11, "globs", False), (2051, 11, "wide", True), (5000, 11, "ones", False),
    (1500, 17, "wide", False), (1200, 33, "ones", True), (900, 64, "wide", False)])
def test_compiled_interior_point_agrees_on_the_edge_cases(n, q, weights, collinear):
    """The compiled loop (tiles of 256 rows, chunks of 2048, padding of the last quad of rows) gives the
    torch loop's answer to rounding on tiny, one-column, wide, weighted and nearly collinear problems,
    and the same answer bit for bit with any number of threads. (Problems with a unique optimum and a
    nonzero objective: the stop rule is relative to it.)"""
    import torch
    from gradfit.solvers.ipm import native
    from gradfit.solvers.ipm.lp import frisch_newton_torch, pinball_sum
    if native._load() is None:
        pytest.skip("the compiled interior point was not built (no C compiler)")
    Z, y, u = _lp_rows(n, q, seed=n + q, weights=weights, collinear=collinear)
    for tau in (0.1, 0.5, 0.9):
        got = native.fnb(Z, y, u, tau, 1e-12, 60, threads=1)
        ref = frisch_newton_torch(Z, y, u, tau, 1e-12, 60)
        assert got is not None
        beta, dual, it, gap, converged = got
        assert converged == ref.converged and abs(it - ref.n_iter) <= 1
        value, best = (float(pinball_sum(y - Z @ b, u, tau)) for b in (beta, ref.beta))
        assert abs(value - best) <= 1e-12 * abs(best) + 1e-14 * float(u @ y.abs())  # (an exact fit has 0)
        if converged:
            np.testing.assert_allclose(beta.numpy(), ref.beta.numpy(), rtol=1e-6, atol=1e-8)
        assert bool(((dual >= 0) & (dual <= u * (1 + 1e-12))).all())  # x and u - x are stepped apart: to rounding
        again = native.fnb(Z, y, u, tau, 1e-12, 60, threads=3)
        assert torch.equal(again[0], beta) and torch.equal(again[1], dual) and again[2:] == got[2:]


@pytest.mark.parametrize("tau", [0.1, 0.9])
def test_recursive_preprocessing_gives_the_direct_optimum(tau):
    """The sample's LP of a large problem is solved by Portnoy-Koenker again (the reduced LP, a band
    around the sample's fit, directly: REDUCED_ROUNDS): the optimum of the full LP solved directly."""
    X, y, rng = make(40000, 3, seed=31)
    s = rng.uniform(0.5, 2.0, size=40000)
    opts = {"min_rows": 1000}
    m = gradfit.fit(X, y, loss="quantile", quantile=tau, sample_weight=s, options=opts)
    full = gradfit.fit(X, y, loss="quantile", quantile=tau, sample_weight=s, options={"preprocess": False})
    assert m.info["lp_solves"] >= 3  # the sample's LP preprocessed (its sample and reduced LPs), the reduced LP
    assert m.final_loss_ == pytest.approx(full.final_loss_, rel=1e-12)
    assert m.converged_ and m.gap_ <= 1e-8


def test_smallest_is_topk_of_the_smallest():
    """finish.smallest (the vertex candidates of polish and crossover) picks the rows topk picks, also
    past the size where it filters by a sampled threshold first, with exact zeros (a vertex's rows)."""
    import torch
    from gradfit.solvers.ipm.finish import smallest
    g = torch.Generator().manual_seed(3)
    for n in (1000, (1 << 19) + 5):
        v = torch.randn(n, dtype=torch.float64, generator=g).abs()
        v[torch.randperm(n, generator=g)[:11]] = 0.0
        for k in (1, 14, 54, 400):
            got, ref = smallest(v, k), torch.topk(v, k, largest=False, sorted=True).indices
            assert torch.equal(v[got], v[ref]) and len(set(got.tolist())) == k
