"""Each loss: derivative and curvature against finite differences, limits and identities."""
import pytest
import torch

from gradfit.problem import derivatives as F
from gradfit.problem.losses import Absolute, Huber, Quantile, Squared, get_loss, loss_from_spec

R = torch.tensor([-3.0, -1.2, -0.4, 0.3, 0.9, 2.5], dtype=torch.float64)
LOSSES = [Squared(), Absolute(), Huber(1.0), Huber(0.5), Quantile(0.3), Quantile(0.8)]


@pytest.mark.parametrize("loss", LOSSES, ids=lambda l: str(l.spec()))
def test_derivative_matches_finite_differences(loss):
    h = 1e-6
    numeric = (loss.value(R + h) - loss.value(R - h)) / (2 * h)
    assert torch.allclose(loss.derivative(R), numeric, atol=1e-6)


@pytest.mark.parametrize("loss", LOSSES, ids=lambda l: str(l.spec()))
def test_curvature_matches_finite_differences(loss):
    h = 1e-5
    numeric = (loss.derivative(R + h) - loss.derivative(R - h)) / (2 * h)
    assert torch.allclose(loss.curvature(R), numeric, atol=1e-5)


@pytest.mark.parametrize("loss", LOSSES, ids=lambda l: str(l.spec()))
def test_derivative_matches_autograd(loss):
    r = R.clone().requires_grad_(True)
    loss.value(r).sum().backward()
    assert torch.allclose(r.grad, loss.derivative(R))


def test_huber_with_huge_delta_is_half_squared():
    assert torch.allclose(Huber(1e6).value(R), 0.5 * Squared().value(R))
    assert torch.allclose(Huber(1e6).derivative(R), 0.5 * Squared().derivative(R))


def test_huber_matches_torch_huberloss():
    y = torch.zeros_like(R)
    for delta in (0.5, 1.35):
        ref = torch.nn.HuberLoss(reduction="none", delta=delta)(R, y)
        assert torch.allclose(Huber(delta).value(R), ref)


def test_quantile_half_is_half_absolute():
    assert torch.allclose(Quantile(0.5).value(R), 0.5 * Absolute().value(R))
    assert float(Quantile(0.5).derivative(torch.zeros(1, dtype=torch.float64))) == 0.0


def test_curvature_bounds():
    assert Squared().curvature_bound == 2.0 and Huber(2.0).curvature_bound == 1.0
    assert Absolute().curvature_bound is None and not Absolute().smooth and not Quantile(0.2).smooth


def test_soft_threshold_is_the_prox_of_abs():
    z = torch.linspace(-2, 2, 41, dtype=torch.float64)
    grid = torch.linspace(-3, 3, 60001, dtype=torch.float64)
    brute = torch.stack([grid[(0.7 * grid.abs() + 0.5 * (grid - zi) ** 2).argmin()] for zi in z])
    assert torch.allclose(F.soft_threshold(z, 0.7), brute, atol=2e-4)


@pytest.mark.parametrize("spec", [{"name": "squared"}, {"name": "huber", "delta": 0.7, "scale": "absolute"},
                                  {"name": "huber", "delta": 1.35, "scale": "joint"},
                                  {"name": "huber", "delta": 1.345, "scale": "mad"},
                                  {"name": "quantile", "tau": 0.9}, {"name": "absolute"}])
def test_spec_round_trip(spec):
    assert loss_from_spec(spec).spec() == spec


def test_a_huber_file_from_before_the_scale_modes_loads_with_its_old_meaning():
    assert loss_from_spec({"name": "huber", "delta": 0.7}).scale == "absolute"
    assert get_loss("huber").scale == "joint"  # what the name means now: scikit-learn's epsilon


def test_bad_loss_settings_are_refused():
    with pytest.raises(ValueError, match="unknown loss"):
        get_loss("cubic")
    with pytest.raises(ValueError, match="delta"):
        Huber(0.0)
    with pytest.raises(ValueError, match="quantile"):
        Quantile(1.0)


@pytest.mark.parametrize("loss", [Squared(), Huber(0.8), Absolute(), Quantile(0.3)], ids=lambda l: l.name)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("intercept", [True, False])
def test_objective_gradient_matches_finite_differences(loss, weighted, intercept):
    from gradfit.data.arrays import as_batches
    from gradfit.problem.objective import Objective
    from gradfit.problem.penalties import Penalty
    gen = torch.Generator().manual_seed(3)
    X = torch.randn(50, 3, generator=gen, dtype=torch.float64)
    y = torch.randn(50, generator=gen, dtype=torch.float64)
    w = torch.rand(50, generator=gen, dtype=torch.float64) + 0.5 if weighted else None
    obj = Objective(loss, Penalty(0.3, 0.0), as_batches(X, y, w, batch_size=16), fit_intercept=intercept)
    theta = torch.tensor([0.3, -0.2, 0.5, 0.1], dtype=torch.float64)
    value, grad = obj.value_and_grad(theta)
    h = 1e-7  # the kinks of |r| are hit with probability 0 at this theta
    eye = torch.eye(4, dtype=torch.float64)
    num = torch.stack([(obj.value(theta + h * e) - obj.value(theta - h * e)) / (2 * h) for e in eye])
    if not intercept:
        num[-1] = 0.0
    assert torch.allclose(grad, num, atol=1e-6)
    s = torch.ones(50, dtype=torch.float64) if w is None else w
    r = y - X @ theta[:-1] - theta[-1]  # predict() adds theta[-1]; without intercept it stays 0 in fits
    expected = (s * loss.value(r)).sum() / s.sum() + 0.15 * (theta[:-1] ** 2).sum()
    assert torch.isclose(value, expected)
