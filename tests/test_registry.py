"""Every registered solver, through the registry, against an answer computed without gradfit."""
import warnings

import numpy as np
import pytest
import scipy.optimize
from sklearn.linear_model import Lasso

import gradfit
from gradfit.problem.losses import get_loss
from gradfit.problem.penalties import get_penalty
from gradfit.solvers import REGISTRY, SolverMismatch, available, get_solver

rng = np.random.default_rng(8)
X = rng.normal(size=(150, 3))
Y = X @ [1.0, -2.0, 0.5] + 1.0 + rng.standard_t(3, size=150)
ALPHA = 0.05
# (loss, penalty) pairs in the order a solver is tried on them
PAIRS = [("l2", "none"), ("huber", "none"), ("l1", "none"), ("l2", "l1")]
LR = {"sgd": 0.1, "momentum": 0.05, "nesterov": 0.05, "adam": 0.02}


def objective(loss, pen, theta):
    r = Y - X @ theta[:-1] - theta[-1]
    rho = {"l2": r * r, "l1": np.abs(r),
           "huber": np.where(np.abs(r) <= 1.35, 0.5 * r * r, 1.35 * (np.abs(r) - 0.675))}[loss]
    return rho.mean() + (ALPHA * np.abs(theta[:-1]).sum() if pen == "l1" else 0.0)


def reference(loss, pen):
    Z = np.c_[X, np.ones(len(Y))]
    if loss == "l2" and pen == "none":
        return np.linalg.lstsq(Z, Y, rcond=None)[0]
    if loss == "l2":  # mean r^2 + a|w|_1 is twice sklearn's 1/(2n)|r|^2 + (a/2)|w|_1
        las = Lasso(alpha=ALPHA / 2, tol=1e-12, max_iter=100000).fit(X, Y)
        return np.r_[las.coef_, las.intercept_]
    if loss == "l1":  # LP: min sum(u + v) s.t. Z theta + u - v = y
        n, k = Z.shape
        c = np.r_[np.zeros(k), np.ones(2 * n)] / n
        res = scipy.optimize.linprog(c, A_eq=np.c_[Z, np.eye(n), -np.eye(n)], b_eq=Y,
                                     bounds=[(None, None)] * k + [(0, None)] * (2 * n), method="highs")
        return res.x[:k]
    f = lambda t: objective(loss, pen, t)  # noqa: E731
    return scipy.optimize.minimize(f, np.linalg.lstsq(Z, Y, rcond=None)[0], method="Nelder-Mead",
                                   options={"xatol": 1e-10, "fatol": 1e-14, "maxiter": 20000}).x


def accepted_pair(name):
    for loss, pen in PAIRS:
        try:
            get_solver(name, get_loss(loss, scale="absolute"), get_penalty(pen, 0.0 if pen == "none" else ALPHA, 1.0))
            return loss, pen
        except SolverMismatch:
            continue
    return None


@pytest.mark.parametrize("name", available())
def test_solver_reaches_the_reference_optimum(name):
    pair = accepted_pair(name)
    assert pair is not None, f"{name} accepts none of {PAIRS}"
    loss, pen = pair
    ref = reference(loss, pen)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = gradfit.fit(X, Y, loss=loss, huber_scale="absolute", penalty=None if pen == "none" else pen, alpha=ALPHA if pen != "none" else 0,
                        solver=name, lr=LR.get(name), epochs=4000, tol=1e-12)
    theta = np.r_[m.coef_, m.intercept_]
    f, f_ref = objective(loss, pen, theta), objective(loss, pen, ref)
    iterative = name in LR
    assert f <= f_ref * (1 + (1e-4 if iterative else 1e-8)), (name, loss, pen, f, f_ref)
    if not iterative:
        assert np.allclose(theta, ref, rtol=1e-4, atol=1e-4), (name, theta, ref)
    assert np.isfinite(m.gap_) and m.gap_ >= 0


def test_registry_lists_the_exact_methods():
    assert {"exact", "lbfgs", "newton"} <= set(REGISTRY)
    assert REGISTRY["newton"].losses == ("huber",) and REGISTRY["lbfgs"].needs_smooth_loss


def test_quantile_half_has_the_l1_argmin():
    if "ipm" not in REGISTRY:
        pytest.skip("no LP solver registered")
    a = gradfit.fit(X, Y, loss="quantile", quantile=0.5)
    b = gradfit.fit(X, Y, loss="l1")
    assert np.allclose(np.r_[a.coef_, a.intercept_], np.r_[b.coef_, b.intercept_], atol=1e-6)
    assert abs(2 * a.final_loss_ - b.final_loss_) < 1e-8


def test_unknown_solver_is_one_sentence():
    with pytest.raises(SolverMismatch, match="unknown solver 'bogus'"):
        gradfit.fit(X, Y, solver="bogus")
