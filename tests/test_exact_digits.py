"""Exact means exact (issue 14, item 7): least squares reaches >= 12 correct digits of the exact
solution of the float64 data it is given, checked against a 50-digit mpmath solve, on NIST's
hardest polynomial designs (Filip: degree 10, x in a narrow range; Wampler: degree 5, x = 0..20)."""
import warnings

import mpmath
import numpy as np
import pytest

import gradfit
from nist_strd import FILIP, WAMPLER4_Y, WAMPLER5_Y, WAMPLER_X, polynomial_design


def mp_least_squares(X, y):
    """[w..., b] solving the normal equations of the float64 values in 50-digit arithmetic."""
    with mpmath.workdps(50):
        A = mpmath.matrix(np.c_[X, np.ones(len(X))].tolist())
        sol = mpmath.lu_solve(A.T * A, A.T * mpmath.matrix(y.tolist()))
        return np.array([float(v) for v in sol])


def correct_digits(ours, exact):
    err = np.max(np.abs(ours - exact) / np.abs(exact))
    return np.inf if err == 0 else -np.log10(err)


WAMPLER1_Y = np.polyval(np.ones(6), WAMPLER_X)  # exact integers: y = 1 + x + ... + x^5

CASES = {"filip": (polynomial_design(FILIP[:, 1], 10), FILIP[:, 0]),        # was 7.4-7.9 digits
         "wampler4": (polynomial_design(WAMPLER_X, 5), WAMPLER4_Y),          # was 9.9 digits
         "wampler5": (polynomial_design(WAMPLER_X, 5), WAMPLER5_Y),
         "wampler1": (polynomial_design(WAMPLER_X, 5), WAMPLER1_Y)}


@pytest.mark.parametrize("name", sorted(CASES))
def test_twelve_digits_of_the_float64_problem(name):
    X, y = CASES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Filip's design is nearly singular: that warning is expected
        m = gradfit.fit(X, y)
    ours = np.r_[m.coef_, m.intercept_]
    assert correct_digits(ours, mp_least_squares(X, y)) >= 12, m.info["method"]
    assert m.converged_ and m.gap_ == 0.0


def test_exact_integer_data_is_recovered():
    m = gradfit.fit(*CASES["wampler1"])
    np.testing.assert_allclose(np.r_[m.intercept_, m.coef_], np.ones(6), rtol=1e-13)


def test_well_conditioned_data_takes_one_solve():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 4))
    m = gradfit.fit(X, X @ [1.0, 2.0, 3.0, 4.0] + rng.normal(size=500))
    assert m.info["method"] == "cholesky" and m.info["refinement_passes"] == 0
