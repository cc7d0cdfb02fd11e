"""The compiled pass kernels of the streamed L1/quantile fit (solvers/ipm/_passes.c through native.py)
against a plain numpy computation of what each output is defined to be."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from gradfit.solvers.ipm import native

pytestmark = pytest.mark.skipif(not native.rows_usable([]), reason="the compiled kernels were not built here")
WIDTHS = [4, 8] if native.rows_usable([]) and native.pass_width(8) == 8 else [4]


@pytest.fixture(autouse=True, params=WIDTHS, ids=lambda w: f"w{w}")
def width(request):
    """Every test at each vector width this CPU runs (AVX2 and, where the CPU has it, AVX-512)."""
    if not native.rows_usable([]):
        yield
        return
    before = native.pass_width()
    assert native.pass_width(request.param) == request.param
    yield request.param
    native.pass_width(before)


def rho(r, tau):
    return r * (tau - (r < 0))


def block(n, p, k, seed=0, weights="fractional", bad=None):
    """Random rows, a fold (A, c) whose residual column fits y roughly, and lo / hi / lo2 / hi2 that
    put a few percent of the rows in the middle and as many near it."""
    g = np.random.default_rng(seed)
    X = g.normal(size=(n, p)) * g.uniform(0.5, 3, size=p) + g.normal(size=p)
    beta = g.normal(size=p)
    y = X @ beta + 1.0 + g.standard_t(3, size=n)
    A = g.normal(size=(p, k)) * 0.05
    A[:, 0] = beta
    c = g.normal(size=k) * 0.1
    c[0] = 1.0
    u = {"none": None, "ones": np.ones(n), "fractional": g.uniform(0.1, 2.0, size=n),
         "zeros": g.uniform(0.1, 2.0, size=n) * (g.uniform(size=n) > 0.3)}[weights]
    if bad is not None:  # a NaN and an inf in column 1 (one in a row of weight > 0, one maybe not)
        X[n // 3, 1], X[(2 * n) // 3, 1] = bad
    return X, y, u, A, c


def bands(X, y, A, c):
    with np.errstate(invalid="ignore"):
        P = X @ A + c
    r = y - P[:, 0]
    return r, np.sqrt((P[:, 1:] ** 2).sum(1))


def reference(X, y, u, A, c, lo, hi, lo2, hi2, tau, center):
    w = np.ones(len(y)) if u is None else u
    pos = w > 0
    r, band = bands(X, y, A, c)
    with np.errstate(invalid="ignore"):
        below, above = pos & (r < lo * band), pos & (r > hi * band)
        near = (below & (r >= lo2 * band)) | (above & (r <= hi2 * band))
    mid = pos & ~below & ~above
    G = np.zeros((2, X.shape[1] + 2))
    for s, m in enumerate((below, above)):
        G[s] = np.r_[w[m] @ X[m], w[m] @ y[m], w[m].sum()]
    Xp, wp = X[pos], w[pos]
    p = X.shape[1]
    with np.errstate(invalid="ignore"):
        stats = np.r_[pos.sum(), wp.sum(), wp @ rho(y[pos], tau),
                      Xp.min(0) if len(Xp) else np.full(p, np.inf), Xp.max(0) if len(Xp) else np.full(p, -np.inf),
                      wp @ (Xp - center), wp @ (Xp - center) ** 2]
    side = above.astype(np.int8) - below.astype(np.int8)
    return G, np.flatnonzero(mid), side, np.flatnonzero(near), stats


def layouts(X):
    """The same rows as separate columns (rs = 1), a row-major matrix (rs = p), a column-major one and
    a strided view (every other row of a bigger matrix)."""
    t = torch.from_numpy(X)
    wide = torch.zeros(2 * X.shape[0], X.shape[1] + 3, dtype=torch.float64)
    wide[::2, 1:X.shape[1] + 1] = t
    return {"columns": [np.ascontiguousarray(X[:, j]) for j in range(X.shape[1])], "rows": t.contiguous(),
            "colmajor": t.T.contiguous().T, "strided": wide[::2, 1:X.shape[1] + 1]}


def close(a, b, rtol=1e-11):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    scale = np.where(np.isfinite(b), np.abs(b), 0).max(initial=0) + 1e-300
    np.testing.assert_allclose(a, b, rtol=0, atol=rtol * scale)
    assert (np.isnan(a) == np.isnan(b)).all() and (np.isinf(a) == np.isinf(b)).all()


def run_classify(X, y, u, A, c, lims, tau, center, cap, near_cap, stats=None):
    lo, hi, lo2, hi2 = lims
    return native.classify(X, torch.from_numpy(y), None if u is None else torch.from_numpy(u), torch.from_numpy(A),
                           torch.from_numpy(c), lo, hi, cap=cap, lo2=lo2, hi2=hi2, near_cap=near_cap, side=True,
                           stats=stats, center=center, tau=tau)


def limits(X, y, A, c, u):
    r, band = bands(X, y, A, c)
    ok = np.isfinite(r) & np.isfinite(band)
    kap = r[ok] / np.maximum(band[ok], 1e-300)
    if len(kap) == 0:
        return -0.1, 0.1, -0.2, 0.2
    return tuple(np.quantile(kap, [0.45, 0.55, 0.4, 0.6]))


@pytest.mark.parametrize("k", [1, 12, 16, 17, 40])
@pytest.mark.parametrize("layout", ["columns", "rows", "colmajor", "strided"])
def test_classify_matches_reference(k, layout):
    n, p, tau = 1000 + 3 * k, 10, 0.3
    X, y, u, A, c = block(n, p, k, seed=k, weights="zeros" if k % 2 else "fractional")
    lims = limits(X, y, A, c, u)
    center = np.linspace(-1, 1, p)
    ref = reference(X, y, u, A, c, *lims, tau, center)
    stats = torch.zeros(3 + 4 * p, dtype=torch.float64)
    G, mid, side, near = run_classify(layouts(X)[layout], y, u, A, c, lims, tau, center, n, n, stats)
    close(G, ref[0])
    np.testing.assert_array_equal(mid, ref[1])
    np.testing.assert_array_equal(side, ref[2])
    np.testing.assert_array_equal(near, ref[3])
    if k > 1:  # (with k = 1 the band is 0: the middle is the rows on the fit, the near band empty)
        assert 0.05 * n < len(mid) < 0.2 * n and 0.05 * n < len(near) < 0.2 * n  # the test means something
    close(stats, ref[4])


@pytest.mark.parametrize("k", [5, 12, 17, 40])
def test_classify_triangular_fold(k):
    """A fold [beta, L^-T] of a Cholesky factor is upper triangular (the kernel skips its zero rows per
    chunk of outputs), one with a whole chunk of zero columns too."""
    n, p = 700, 10
    X, y, u, A, c = block(n, p, k, seed=k)
    for a in range(p):
        A[a, 1:1 + min(a, k - 1)] = 0.0
    if k > 9:
        A[:, 5:9] = 0.0
    lims = limits(X, y, A, c, u)
    ref = reference(X, y, u, A, c, *lims, 0.5, np.zeros(p))
    stats = torch.zeros(3 + 4 * p, dtype=torch.float64)
    G, mid, side, near = run_classify(layouts(X)["columns"], y, u, A, c, lims, 0.5, None, n, n, stats)
    close(G, ref[0])
    np.testing.assert_array_equal(mid, ref[1])
    np.testing.assert_array_equal(side, ref[2])
    np.testing.assert_array_equal(near, ref[3])
    close(stats, ref[4])


@pytest.mark.parametrize("weights", ["none", "ones", "fractional", "zeros"])
@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 127, 128, 129, 300])
def test_classify_sizes_and_weights(n, weights):
    p, k, tau = 3, 5, 0.7
    X, y, u, A, c = block(n, p, k, seed=n, weights=weights)
    lims = (-0.3, 0.2, -0.6, 0.5)
    ref = reference(X, y, u, A, c, *lims, tau, np.zeros(p))
    stats = torch.zeros(3 + 4 * p, dtype=torch.float64)
    G, mid, side, near = run_classify(layouts(X)["columns"] if n else [np.zeros(0)] * p, y, u, A, c, lims, tau,
                                      None, n, n, stats)
    close(G, ref[0])
    np.testing.assert_array_equal(mid, ref[1])
    np.testing.assert_array_equal(side, ref[2])
    np.testing.assert_array_equal(near, ref[3])
    if ref[4][0] > 0:
        close(stats, ref[4])
    else:  # no row counted: nothing added, the extremes untouched
        assert (stats == 0).all()


def test_classify_without_stats_or_near_leaves_them():
    X, y, u, A, c = block(500, 4, 12)
    lims = limits(X, y, A, c, u)
    G, mid, side, near = native.classify(layouts(X)["columns"], torch.from_numpy(y), torch.from_numpy(u),
                                         torch.from_numpy(A), torch.from_numpy(c), lims[0], lims[1], cap=500)
    ref = reference(X, y, u, A, c, *lims, 0.5, np.zeros(4))
    close(G, ref[0])
    np.testing.assert_array_equal(mid, ref[1])
    assert side is None and near is None


@pytest.mark.parametrize("bad", [(np.nan, np.inf), (np.inf, -np.inf), (-np.inf, np.nan)])
@pytest.mark.parametrize("weights", ["none", "zeros"])
def test_classify_non_finite_values(bad, weights):
    n, p, k = 600, 4, 12
    X, y, u, A, c = block(n, p, k, seed=3, weights=weights, bad=bad)
    if u is not None:  # the first bad value in a row of weight 0, the second in one of weight 1
        u[n // 3], u[(2 * n) // 3] = 0.0, 1.0
    lims = limits(X, y, A, c, u)
    center = np.ones(p)
    ref = reference(X, y, u, A, c, *lims, 0.5, center)
    for layout in ("columns", "rows"):
        stats = torch.zeros(3 + 4 * p, dtype=torch.float64)
        G, mid, side, near = run_classify(layouts(X)[layout], y, u, A, c, lims, 0.5, center, n, n, stats)
        close(G, ref[0])
        np.testing.assert_array_equal(mid, ref[1])
        np.testing.assert_array_equal(side, ref[2])
        np.testing.assert_array_equal(near, ref[3])
        close(stats, ref[4])
        # a NaN in a counted row makes the column's min and max NaN; in a row of weight 0 it does not
        w = np.ones(n) if u is None else u
        assert np.isnan(float(stats[3 + 1])) == (np.isnan(X[:, 1]) & (w > 0)).any()


def test_classify_inf_in_a_globbed_row_reaches_the_glob():
    n, p, k = 256, 3, 4
    X, y, u, A, c = block(n, p, k, seed=5, weights="none")
    A[1] = 1.0  # x_1 = inf: P_0 = inf, r = -inf, band = inf, and with lo > 0 the row lies below
    X[10, 1] = np.inf
    lims = (0.1, 0.2, 0.05, 0.3)
    G, mid, side, near = run_classify(layouts(X)["columns"], y, u, A, c, lims, 0.5, None, n, n)
    ref = reference(X, y, u, A, c, *lims, 0.5, np.zeros(p))
    assert side[10] == -1 and np.isinf(float(G[0, 1])) and np.isfinite(float(G[1, 1]))
    close(G, ref[0])
    np.testing.assert_array_equal(side, ref[2])


def test_classify_caps():
    n, p, k = 2000, 5, 12
    X, y, u, A, c = block(n, p, k, seed=1)
    lims = limits(X, y, A, c, u)
    ref = reference(X, y, u, A, c, *lims, 0.5, np.zeros(p))
    n_mid, n_near = len(ref[1]), len(ref[3])
    for cap, near_cap in [(n_mid, n_near), (n_mid - 1, n_near), (n_mid, n_near - 1), (0, 0)]:
        G, mid, side, near = run_classify(layouts(X)["columns"], y, u, A, c, lims, 0.5, None, cap, near_cap)
        close(G, ref[0])
        np.testing.assert_array_equal(side, ref[2])
        if cap >= n_mid:
            np.testing.assert_array_equal(mid, ref[1])
        else:
            assert mid is None
        if near_cap >= n_near:
            np.testing.assert_array_equal(near, ref[3])
        else:
            assert near is None


def test_classify_stats_accumulate_over_blocks():
    n, p, k, tau = 5000, 6, 12, 0.9
    X, y, u, A, c = block(n, p, k, seed=2, weights="zeros")
    X[:, 2] += 1e6  # a column far from 0: the centred sums keep their accuracy
    center = X.mean(0)
    lims = limits(X, y, A, c, u)
    ref = reference(X, y, u, A, c, *lims, tau, center)
    stats = torch.zeros(3 + 4 * p, dtype=torch.float64)
    G = torch.zeros(2, p + 2, dtype=torch.float64)
    edges = [0, 1, 1, 130, 1000, 3333, n]
    for a, b in zip(edges[:-1], edges[1:]):
        sl = slice(a, b)
        G += run_classify(layouts(X[sl])["columns"] if b > a else [np.zeros(0)] * p, y[sl], u[sl], A, c, lims, tau,
                          torch.from_numpy(center), b - a, b - a, stats)[0]
    close(G, ref[0])
    close(stats, ref[4])
    # the stats of rows counted so far, then a block whose rows all have weight 0: nothing changes
    before = stats.clone()
    run_classify(layouts(X[:50])["columns"], y[:50], np.zeros(50), A, c, lims, tau, center, 50, 50, stats)
    assert torch.equal(stats, before)


def test_classify_bad_arguments():
    X, y, u, A, c = block(10, 2, 3)
    cols = layouts(X)["columns"]
    with pytest.raises(ValueError, match="tau"):
        run_classify(cols, y, u, A, c, (-1, 1, -2, 2), None, None, 10, 10, torch.zeros(11, dtype=torch.float64))
    with pytest.raises(ValueError, match="11"):
        run_classify(cols, y, u, A, c, (-1, 1, -2, 2), 0.5, None, 10, 10, torch.zeros(10, dtype=torch.float64))
    with pytest.raises(ValueError, match="129"):
        A2, c2 = np.zeros((2, 129)), np.zeros(129)
        run_classify(cols, y, u, A2, c2, (-1, 1, -2, 2), 0.5, None, 10, 10)


@pytest.mark.parametrize("layout", ["columns", "rows", "strided"])
@pytest.mark.parametrize("weights", ["none", "zeros"])
def test_check_matches_reference(layout, weights):
    n, p, tau = 777, 7, 0.25
    X, y, u, A, c = block(n, p, 12, seed=4, weights=weights)
    X[5, 3] = np.nan  # a NaN residual in a row: the total is NaN where the row counts, else not
    if u is not None:
        u[5] = 0.0
    side = np.random.default_rng(0).integers(-1, 2, size=n).astype(np.int8)
    a, c0 = A[:, 0] + 0.01, 0.9
    r = y - (X @ a + c0)
    w = np.ones(n) if u is None else u
    pos = w > 0
    total = w[pos] @ rho(r[pos], tau)
    flips = np.flatnonzero(pos & (((side < 0) & (r > 0)) | ((side > 0) & (r < 0))))
    ut = None if u is None else torch.from_numpy(u)
    t, bad, res = native.check(layouts(X)[layout], torch.from_numpy(y), ut, torch.from_numpy(a), c0, tau,
                               torch.from_numpy(side), cap=n, residual=True)
    close(t, total)
    assert np.isnan(t) == (u is None)
    np.testing.assert_array_equal(bad, flips)
    close(res, r)
    assert native.check(layouts(X)[layout], torch.from_numpy(y), ut, torch.from_numpy(a), c0, tau,
                        torch.from_numpy(side), cap=len(flips) - 1)[1] is None


@pytest.mark.parametrize("n", [0, 1, 100, 1000])
@pytest.mark.parametrize("layout", ["columns", "rows"])
def test_stats_matches_reference(n, layout):
    p, tau = 4, 0.6
    X, y, u, A, c = block(n, p, 3, seed=n, weights="zeros")
    if n > 10:
        X[7, 2] = np.nan
        u[7] = 1.0
        X[8, 3] = np.nan
        u[8] = 0.0
    keys = np.random.default_rng(n).uniform(size=n)
    w = u
    pos = w > 0
    cmin, cmax = torch.full((p,), np.inf, dtype=torch.float64), torch.full((p,), -np.inf, dtype=torch.float64)
    sums = torch.zeros(3, dtype=torch.float64)
    idx = native.stats(layouts(X)[layout] if n else [np.zeros(0)] * p, torch.from_numpy(y), torch.from_numpy(u),
                       tau, torch.from_numpy(keys), 0.3, cmin, cmax, sums, cap=n)
    np.testing.assert_array_equal(idx, np.flatnonzero(pos & (keys < 0.3)))
    close(sums, [pos.sum(), w[pos].sum(), w[pos] @ rho(y[pos], tau)])
    if pos.any():
        close(cmin, X[pos].min(0))
        close(cmax, X[pos].max(0))


def test_no_features():
    """p = 0 (an intercept-only fit): the fold is the constant c alone."""
    n, tau = 300, 0.5
    X = np.zeros((n, 0))
    y = np.linspace(-1.0, 1.0, n)
    A, c = np.zeros((0, 3)), np.array([0.1, 0.0, 0.0])
    ref = reference(X, y, None, A, c, 0.0, 0.0, 0.0, 0.0, tau, np.zeros(0))
    stats = torch.zeros(3, dtype=torch.float64)
    G, mid, side, near = run_classify(torch.from_numpy(X), y, None, A, c, (0.0, 0.0, 0.0, 0.0), tau, None, n, n, stats)
    close(G, ref[0])
    np.testing.assert_array_equal(side, ref[2])
    assert len(mid) == 0 and len(near) == 0
    close(stats, ref[4])
    t, flips, r = native.check(torch.from_numpy(X), torch.from_numpy(y), None, torch.zeros(0, dtype=torch.float64), 0.1,
                               tau, side, cap=n, residual=True)
    close(r, y - 0.1)
    close(t, rho(y - 0.1, tau).sum())
    assert len(flips) == 0


def test_gather_copies_the_rows_asked_for():
    r = np.random.default_rng(3)
    M = r.normal(size=(500, 7))
    y, u = torch.from_numpy(r.normal(size=500)), torch.from_numpy(r.uniform(size=500))
    idx = torch.tensor([0, 3, 3, 250, 499])
    want = torch.cat([torch.from_numpy(M[idx.numpy()]), y[idx, None], u[idx, None]], 1)
    for X in ([np.ascontiguousarray(c) for c in M.T], torch.from_numpy(M), torch.from_numpy(M.T.copy()).T,
              torch.from_numpy(np.asfortranarray(M))):
        assert torch.equal(native.gather(X, y, u, idx), want)
    ones = native.gather(torch.from_numpy(M), y, None, idx)
    assert torch.equal(ones[:, -1], torch.ones(5, dtype=torch.float64))
    assert native.gather(torch.from_numpy(M), y, u, torch.empty(0, dtype=torch.long)).shape == (0, 9)


@pytest.mark.parametrize("weighted", [False, True])
def test_classify_copies_the_middle_and_near_rows(weighted):
    """rows=True: the middle and near rows come out of the sweep itself, equal to gathering them by index
    (with the near rows' side codes), also when a cap is reached."""
    r = np.random.default_rng(4)
    n, p = 3000, 5
    M = r.normal(size=(n, p))
    y = torch.from_numpy(M @ r.normal(size=p) + r.normal(size=n))
    u = torch.from_numpy(r.uniform(size=n) * (r.uniform(size=n) > 0.2)) if weighted else None
    A = torch.from_numpy(r.normal(size=(p, 4)))
    c = torch.from_numpy(r.normal(size=4))
    for X in ([np.ascontiguousarray(col) for col in M.T], torch.from_numpy(M)):
        G, mid, side, near, kept, held = native.classify(X, y, u, A, c, -0.3, 0.3, cap=10**6, lo2=-0.9, hi2=0.9,
                                                          near_cap=10**6, side=True, rows=True)
        assert len(mid) > 100 and len(near) > 100
        assert torch.equal(kept, native.gather(X, y, u, mid))
        assert torch.equal(held[:, :-1], native.gather(X, y, u, near))
        assert torch.equal(held[:, -1], side[near].to(torch.float64))
        _, mid2, _, near2, kept2, held2 = native.classify(X, y, u, A, c, -0.3, 0.3, cap=50, lo2=-0.9, hi2=0.9,
                                                          near_cap=len(near), rows=True)
        assert mid2 is None and kept2 is None and torch.equal(held2, held)
