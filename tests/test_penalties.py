"""Penalties: gradient and prox against brute force, subdifferential distance, the registry of names."""
import pytest
import torch

from gradfit.problem.penalties import Penalty, get_penalty, penalty_from_spec

W = torch.tensor([-1.5, -0.2, 0.0, 0.4, 2.0], dtype=torch.float64)


@pytest.mark.parametrize("alpha,ratio", [(0.3, 0.0), (0.5, 0.5), (1.0, 1.0), (0.0, 0.0)])
def test_value_formula(alpha, ratio):
    p = Penalty(alpha, ratio)
    expected = alpha * (ratio * W.abs().sum() + (1 - ratio) / 2 * (W * W).sum())
    assert torch.isclose(p.value(W), expected)


def test_gradient_of_smooth_part_matches_finite_differences():
    p = Penalty(0.7, 0.0)
    h = 1e-6
    num = torch.stack([(p.value(W + h * e) - p.value(W - h * e)) / (2 * h)
                       for e in torch.eye(len(W), dtype=torch.float64)])
    assert torch.allclose(p.gradient(W), num, atol=1e-8)


@pytest.mark.parametrize("ratio", [0.5, 1.0])
def test_prox_minimizes_its_problem(ratio):
    p, step = Penalty(0.8, ratio), 0.6
    z = torch.tensor([-1.0, -0.3, 0.1, 0.45, 2.0], dtype=torch.float64)
    out = p.prox(z, step)
    grid = torch.linspace(-3, 3, 60001, dtype=torch.float64)
    for zi, oi in zip(z, out):
        brute = grid[(step * p.l1 * grid.abs() + 0.5 * (grid - zi) ** 2).argmin()]
        assert abs(float(oi - brute)) < 2e-4


def test_subdiff_distance_zero_exactly_at_a_lasso_optimum():
    p = Penalty(1.0, 1.0)
    w = torch.tensor([0.0, 2.0, -1.0], dtype=torch.float64)
    g_opt = torch.tensor([0.5, -1.0, 1.0], dtype=torch.float64)  # -g in l1*d|w|
    assert float(p.subdiff_distance(w, g_opt).abs().max()) == 0.0
    g_bad = torch.tensor([1.5, -0.5, 1.0], dtype=torch.float64)
    assert torch.allclose(p.subdiff_distance(w, g_bad), torch.tensor([0.5, 0.5, 0.0], dtype=torch.float64))


def test_names_and_specs():
    assert get_penalty("ridge", 0.1).name == "l2" and get_penalty("lasso", 0.1).name == "l1"
    assert get_penalty("enet", 0.1, 0.3).name == "elasticnet" and get_penalty("l2", 0.0).name == "none"
    p = Penalty(0.2, 0.4)
    assert penalty_from_spec(p.spec()) == p
    with pytest.raises(ValueError, match="unknown penalty"):
        get_penalty("l3", 1.0)
    with pytest.raises(ValueError, match="alpha"):
        Penalty(-1.0)
