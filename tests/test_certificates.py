"""Certificates: every fit reports gap_, and the bound is at least the true relative gap."""
import math
import warnings

import numpy as np
import pytest
import torch

import gradfit
from gradfit.solvers.certificate import certify
from gradfit.data.arrays import as_batches
from gradfit.problem.losses import Squared
from gradfit.problem.objective import Objective
from gradfit.problem.penalties import Penalty
from gradfit.solvers import REGISTRY, FitResult
from gradfit.solvers.history import History

rng = np.random.default_rng(4)
X = rng.normal(size=(200, 3)) * [1.0, 3.0, 0.5]
Y = X @ [2.0, -1.0, 4.0] + 0.5 + rng.standard_t(3, size=200)


def fit(**kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return gradfit.fit(X, Y, **kw)


def true_gap(model, exact):
    return (model.final_loss_ - exact) / exact


def test_sgd_gap_is_the_distance_to_the_exact_optimum():
    exact = fit(solver="exact")
    m = fit(solver="sgd", lr=0.01, epochs=5)
    theta = np.r_[m.coef_, m.intercept_]
    f = np.mean((Y - X @ theta[:-1] - theta[-1]) ** 2)
    assert m.gap_ == pytest.approx((f - exact.final_loss_) / exact.final_loss_, rel=1e-9)
    assert m.gap_ > 1e-3 and not m.converged_
    assert "exact" in m.info["certificate"]


def test_converged_iterative_fit_has_a_small_certified_gap():
    m = fit(solver="lbfgs", tol=1e-12)
    assert m.converged_ and 0 <= m.gap_ <= 1e-6


def test_certificate_can_be_turned_off():
    m = fit(solver="sgd", lr=0.01, epochs=5, options={"certify": False})
    assert math.isnan(m.gap_)


def test_exact_solvers_certify_themselves():
    assert fit(solver="exact").gap_ == 0.0
    n = fit(loss="huber", huber_scale="absolute", solver="newton")
    assert 0 <= n.gap_ < 1e-12 and "certificate" not in n.info


def test_huber_gap_bounds_the_true_gap():
    best = fit(loss="huber", huber_scale="absolute", solver="newton", tol=1e-15)
    m = fit(loss="huber", huber_scale="absolute", solver="adam", lr=0.05, epochs=60)
    assert m.gap_ >= true_gap(m, best.final_loss_) - 1e-12
    assert m.gap_ > 1e-6 and "newton" in m.info["certificate"]


def test_l1_gap_uses_the_lp_solver_when_registered():
    m = fit(loss="l1", solver="sgd", lr=0.05, epochs=50)
    if "ipm" not in REGISTRY:
        assert math.isnan(m.gap_)
        return
    lp = fit(loss="l1")
    assert m.gap_ >= true_gap(m, lp.final_loss_) - 1e-12 and m.gap_ > 0


def test_ridge_gap_uses_the_exact_ridge_optimum():
    exact = fit(solver="exact", penalty="l2", alpha=0.1)
    m = fit(solver="gd", penalty="l2", alpha=0.1, epochs=3)
    assert m.gap_ == pytest.approx(true_gap(m, exact.final_loss_), rel=1e-6, abs=1e-14)


def test_certify_on_a_result_directly():
    data = as_batches(X, Y)
    obj = Objective(Squared(), Penalty(), data)
    theta = torch.zeros(4, dtype=torch.float64)
    result = FitResult(theta, False, 0, History(), "sgd")
    gap = certify(obj, result)
    f0 = float(np.mean(Y ** 2))
    f_star = fit(solver="exact").final_loss_
    assert gap == pytest.approx((f0 - f_star) / f_star, rel=1e-9)
    assert result.info["optimum"] == pytest.approx(f_star, rel=1e-12)
