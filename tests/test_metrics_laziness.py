"""Parameter movement and the empirical NTK (Kumar et al. 2024) against known answers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from grokspec.metrics import names
from grokspec.metrics.laziness import (
    empirical_ntk,
    kernel_alignment,
    kernel_change,
    param_movement,
    projection_matrix,
    targets_matrix,
)
from grokspec.metrics.progress.ntk import NTKMeasure
from grokspec.metrics.progress.param_movement import ParamMovement
from tests.helpers import experiment


def test_param_movement_known_value() -> None:
    theta0 = [torch.tensor([3.0, 0.0]), torch.tensor([[4.0]])]  # norm 5
    theta = [torch.tensor([3.0, 3.0]), torch.tensor([[0.0]])]  # moved by (0, 3, -4): norm 5
    assert param_movement(theta0, theta) == pytest.approx(1.0)
    assert param_movement(theta0, theta0) == 0.0


def test_kernel_change_and_alignment_known_values() -> None:
    k0 = torch.eye(3)
    assert kernel_change(k0, 2 * k0) == pytest.approx(1.0)
    y = torch.tensor([0, 0, 1, 1])
    yc = targets_matrix(y, 2)
    yc = yc - yc.mean(0)
    assert kernel_alignment(yc @ yc.T, targets_matrix(y, 2)) == pytest.approx(1.0)
    assert kernel_alignment(-(yc @ yc.T), targets_matrix(y, 2)) == pytest.approx(-1.0)
    # A kernel that only sees the within-class difference is orthogonal to the targets.
    v = torch.tensor([[1.0], [-1.0], [0.0], [0.0]], dtype=torch.float64)
    assert kernel_alignment(v @ v.T, targets_matrix(y, 2)) == pytest.approx(0.0, abs=1e-12)
    # Scalar regression targets: y^T K y / (||K||_F ||y||^2) with y centred.
    yr = torch.tensor([1.0, -1.0, 2.0, -2.0])
    k = torch.diag(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    expected = float(yr @ k @ yr) / (float(torch.linalg.matrix_norm(k)) * float(yr @ yr))
    assert kernel_alignment(k, targets_matrix(yr, None)) == pytest.approx(expected)


class Affine(nn.Module):
    def __init__(self, d: int, c: int) -> None:
        super().__init__()
        self.lin = nn.Linear(d, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x)


def test_ntk_of_an_affine_model_is_c_times_gram_plus_one() -> None:
    torch.manual_seed(0)
    model = Affine(5, 3).double()
    x = torch.randn(6, 5, dtype=torch.float64)
    k = empirical_ntk(model, x)
    assert torch.allclose(k, 3 * (x @ x.T + 1))
    # Projected outputs V f: the kernel scales by trace(V^T V) for an affine model.
    v = projection_matrix(3, 2, seed=4)
    kp = empirical_ntk(model, x, v)
    assert torch.allclose(kp, float((v**2).sum()) * (x @ x.T + 1))


def test_projection_is_unbiased_for_the_trace_kernel() -> None:
    v = projection_matrix(10, 20_000, seed=0)
    assert torch.allclose(v.T @ v, torch.eye(10, dtype=torch.float64), atol=0.05)


def test_measures_on_a_training_mlp() -> None:
    exp = experiment(analysis={"ntk_batch": 8, "ntk_projections": 4})
    data = exp.dataset.build(exp.seed)
    torch.manual_seed(exp.seed)
    model = exp.learner.build(data)
    ntk = NTKMeasure(exp.analysis, data, torch.device("cpu"))
    move = ParamMovement(exp, data)
    first = {**ntk(0, model), **move(0, model)}
    assert first[names.NTK_CHANGE] == 0.0 and first[names.PARAM_MOVEMENT] == 0.0
    assert -1.0 <= first[names.NTK_ALIGNMENT] <= 1.0
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1.5)  # every parameter 50% larger: movement exactly 0.5
    later = {**ntk(10, model), **move(10, model)}
    assert later[names.PARAM_MOVEMENT] == pytest.approx(0.5, rel=1e-6)
    assert later[names.NTK_CHANGE] > 0.1


def test_movement_after_resume_rebuilds_theta0_from_the_seed() -> None:
    exp = experiment()
    data = exp.dataset.build(exp.seed)
    torch.manual_seed(exp.seed)
    model = exp.learner.build(data)
    state = torch.get_rng_state()
    # First evaluation at step 500 (a resumed run): theta_0 is the seed's initial model.
    assert ParamMovement(exp, data)(500, model)[names.PARAM_MOVEMENT] == pytest.approx(0.0)
    assert torch.equal(torch.get_rng_state(), state)  # training's RNG untouched


def test_ntk_is_skipped_above_the_parameter_cap() -> None:
    exp = experiment(analysis={"ntk_max_params": 100})
    data = exp.dataset.build(exp.seed)
    ntk = NTKMeasure(exp.analysis, data, torch.device("cpu"))
    assert ntk(0, exp.learner.build(data)) == {}
    assert ntk.skip is not None and "ntk_max_params" in ntk.skip
