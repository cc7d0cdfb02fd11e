"""Gradient methods: the torch.optim updates follow a hand-written PyTorch loop, ``gd`` reaches
the exact optimum, divergence and epoch limits are reported, mini-batches are reproducible."""

import numpy as np
import pytest
import torch

import gradfit
from gradfit import ConvergenceWarning, DivergenceError
from gradfit.data.arrays import as_batches
from gradfit.problem.losses import get_loss
from gradfit.problem.objective import Objective
from gradfit.problem.penalties import get_penalty
from gradfit.solvers.coordinates import Coordinates, top_eigenvalue


def problem(n=400, p=4, seed=0, scales=(1.0, 30.0, 0.01, 5.0), noise=0.5):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)) * np.asarray(scales[:p]) + np.arange(p)
    y = X @ rng.standard_normal(p) + 2.0 + noise * rng.standard_t(3, n)
    return X, y


def rel_gap(value, optimum):
    return (value - optimum) / abs(optimum)


def seed_problem(n=1000):
    """The seed's data and nn.Linear(1, 1) initialisation."""
    torch.manual_seed(0)
    x = torch.nn.init.uniform_(torch.empty(n, 1), -10, 10)
    y = (2 * (x + torch.nn.init.normal_(torch.empty(n, 1))) + 3)[:, 0]
    layer = torch.nn.Linear(1, 1)
    return x.double(), y.double(), float(layer.weight.detach()), float(layer.bias.detach())


def torch_loop(x, y, w0, b0, make_opt, epochs=500):
    model = torch.nn.Linear(1, 1).double()
    with torch.no_grad():
        model.weight.fill_(w0)
        model.bias.fill_(b0)
    opt, crit = make_opt(model.parameters()), torch.nn.L1Loss()
    for _ in range(epochs):
        opt.zero_grad()
        crit(model(x), y[:, None]).backward()
        opt.step()
    return float(model.weight.detach()), float(model.bias.detach())


@pytest.mark.parametrize("name, make_opt", [
    ("sgd", lambda p: torch.optim.SGD(p, lr=0.001)),
    ("momentum", lambda p: torch.optim.SGD(p, lr=0.001, momentum=0.9)),
    ("nesterov", lambda p: torch.optim.SGD(p, lr=0.001, momentum=0.9, nesterov=True)),
    ("adam", lambda p: torch.optim.Adam(p, lr=0.01)),
])
def test_follows_the_torch_loop_on_the_seed_program(name, make_opt):
    x, y, w0, b0 = seed_problem()
    w, b = torch_loop(x, y, w0, b0, make_opt)
    lr = 0.01 if name == "adam" else 0.001
    m = gradfit.fit(x, y, loss="l1", solver=name, lr=lr, epochs=500, init=[w0, b0], tol=0.0, warn=False)
    assert m.n_iter_ == 500 and len(m.history_.loss) == 501
    assert abs(m.coef_[0] - w) <= 1e-6 and abs(m.intercept_ - b) <= 1e-6
    assert m.history_.path[0] == pytest.approx([w0, b0])


@pytest.mark.parametrize("loss", ["l2", "huber"])
def test_gd_lipschitz_reaches_the_optimum_on_badly_scaled_columns(loss):
    X, y = problem()
    ref = gradfit.fit(X, y, loss="l2")
    m = gradfit.fit(X, y, loss=loss, solver="gd", epochs=3000, tol=1e-12, delta=1e9, huber_scale="absolute")
    assert m.converged_ and m.info["step_rule"] == "lipschitz"
    # huge delta: Huber is half the squared loss
    scale = 1.0 if loss == "l2" else 0.5
    assert rel_gap(m.final_loss_, scale * ref.final_loss_) <= 1e-6
    np.testing.assert_allclose(m.coef_, ref.coef_, rtol=1e-5, atol=1e-7)


def test_gd_with_sample_weights_ridge_and_no_intercept_matches_exact():
    X, y = problem(seed=1)
    w = np.random.default_rng(2).uniform(0.1, 3, len(y))
    for kw in ({"sample_weight": w}, {"penalty": "l2", "alpha": 0.3}, {"fit_intercept": False}):
        ref = gradfit.fit(X, y, **kw)
        m = gradfit.fit(X, y, solver="gd", epochs=5000, tol=1e-13, **kw)
        assert rel_gap(m.final_loss_, ref.final_loss_) <= 1e-6, kw


def test_gd_huber_matches_scipy():
    scipy_optimize = pytest.importorskip("scipy.optimize")
    X, y = problem(n=300, p=3, seed=3)
    m = gradfit.fit(X, y, loss="huber", huber_scale="absolute", delta=1.0, solver="gd", epochs=5000, tol=1e-14)
    loss = get_loss("huber", delta=1.0, scale="absolute")
    Xt, yt = torch.tensor(X), torch.tensor(y)

    def f(t):
        r = yt - Xt @ torch.tensor(t[:-1]) - t[-1]
        return float(loss.value(r).mean())
    ref = scipy_optimize.minimize(f, np.r_[m.coef_, m.intercept_] + 0.1, method="Nelder-Mead",
                                  options={"xatol": 1e-10, "fatol": 1e-14, "maxiter": 20000})
    assert m.final_loss_ <= ref.fun * (1 + 1e-9)


@pytest.mark.parametrize("loss, tau", [("l1", 0.5), ("quantile", 0.8)])
def test_gd_smoothing_reaches_the_lp_optimum(loss, tau):
    linprog = pytest.importorskip("scipy.optimize").linprog
    X, y = problem(n=120, p=2, seed=4)
    n = len(y)
    A = np.hstack([X, np.ones((n, 1))])
    c = np.r_[np.zeros(3), tau * np.ones(n), (1 - tau) * np.ones(n)]
    lp = linprog(c, A_eq=np.hstack([A, np.eye(n), -np.eye(n)]), b_eq=y,
                 bounds=[(None, None)] * 3 + [(0, None)] * (2 * n), method="highs")
    optimum = lp.fun / n * (2 if loss == "l1" else 1)
    m = gradfit.fit(X, y, loss=loss, quantile=tau, solver="gd", epochs=6000, tol=1e-10, warn=False)
    assert m.info["step_rule"] == "smoothing"
    assert 0 <= rel_gap(m.final_loss_, optimum) <= 1e-8 + 1e-12


def test_gd_other_step_rules_decrease_the_loss():
    X, y = problem(seed=5)
    ref = gradfit.fit(X, y)
    m = gradfit.fit(X, y, solver="gd", epochs=400, tol=1e-12, options={"step": "armijo"}, warn=False)
    assert rel_gap(m.final_loss_, ref.final_loss_) <= 1e-6
    s = gradfit.fit(X, y, loss="l1", solver="gd", epochs=300, options={"step": "subgradient"}, warn=False)
    assert s.final_loss_ < 0.5 * s.history_.loss[0]
    with pytest.raises(ValueError, match="step rule"):
        gradfit.fit(X, y, solver="gd", options={"step": "bogus"})


def test_sgd_and_adam_reach_the_exact_answer():
    X, y = problem(seed=6, scales=(1.0, 2.0, 0.5, 1.0))
    ref = gradfit.fit(X, y)
    m = gradfit.fit(X, y, solver="sgd", lr=0.1, epochs=20000, tol=1e-14, warn=False,
                    options={"standardize": True})
    assert rel_gap(m.final_loss_, ref.final_loss_) <= 1e-6
    a = gradfit.fit(X, y, solver="adam", lr=0.05, epochs=4000, tol=1e-14, warn=False)
    assert rel_gap(a.final_loss_, ref.final_loss_) <= 1e-3
    for name in ("momentum", "nesterov"):
        m = gradfit.fit(X, y, solver=name, lr=0.05, epochs=3000, tol=1e-14, warn=False,
                        options={"standardize": True})
        assert rel_gap(m.final_loss_, ref.final_loss_) <= 1e-6, name


def test_power_iteration_finds_the_top_eigenvalue():
    X, y = problem(n=200, p=4, seed=7)
    obj = Objective(get_loss("l2"), get_penalty(), as_batches(X, y))
    coords = Coordinates.standardized(obj)
    Z = np.hstack([(X - X.mean(0)) / X.std(0), np.ones((len(y), 1))])
    expected = np.linalg.eigvalsh(Z.T @ Z / len(y))[-1]
    assert top_eigenvalue(obj, coords, iters=200, rtol=1e-12) == pytest.approx(expected, rel=1e-6)
    raw = np.hstack([X, np.ones((len(y), 1))])
    assert top_eigenvalue(obj, Coordinates.raw(obj), iters=200, rtol=1e-12) == \
        pytest.approx(np.linalg.eigvalsh(raw.T @ raw / len(y))[-1], rel=1e-6)


def test_huge_lr_diverges_with_advice():
    X, y = problem(seed=8)
    with pytest.raises(DivergenceError, match="smaller learning rate"):
        gradfit.fit(X, y, solver="sgd", lr=1e3, epochs=200)


def test_epoch_limit_warns():
    X, y = problem(seed=9)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        m = gradfit.fit(X, y, solver="sgd", lr=1e-5, epochs=5)
    assert not m.converged_ and m.n_iter_ == 5 and len(m.history_.loss) == 6


def test_minibatches_are_reproducible_and_cover_every_row():
    X, y = problem(n=1037, seed=10)
    kw = dict(solver="sgd", lr=1e-4, epochs=3, batch_size=64, tol=0.0, warn=False)
    a = gradfit.fit(X, y, seed=1, **kw)
    b = gradfit.fit(X, y, seed=1, **kw)
    c = gradfit.fit(X, y, seed=2, **kw)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    assert not np.array_equal(a.coef_, c.coef_)
    data = as_batches(X, y, np.arange(len(y), dtype=float))
    batches = list(data.shuffled(100, torch.Generator().manual_seed(0)))
    assert [len(bt) for bt in batches] == [100] * 10 + [37]
    seen = torch.cat([bt.weight for bt in batches]).long()  # the weight column holds the row number
    assert sorted(seen.tolist()) == list(range(len(y)))
    rows = torch.cat([bt.X for bt in batches])
    np.testing.assert_array_equal(rows.numpy(), X[seen.numpy()])
