"""Grokfast (Lee et al. 2024): the filter math on hand-made gradients, and a real speed-up."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from grokspec.spec.loading import SpecError
from grokspec.spec.train import GrokfastSpec
from grokspec.training.grokfast import GradFilter
from tests.helpers import experiment


def _param(*grads: list[float]) -> tuple[nn.Parameter, list[torch.Tensor]]:
    p = nn.Parameter(torch.zeros(len(grads[0])))
    return p, [torch.tensor(g) for g in grads]


def _filtered(spec: GrokfastSpec, p: nn.Parameter, grads: list[torch.Tensor]) -> list[torch.Tensor]:
    f, out = GradFilter(spec, [p]), []
    for g in grads:
        p.grad = g.clone()
        f()
        out.append(p.grad.clone())
    return out


def test_ema_filter_matches_hand_computation() -> None:
    p, grads = _param([1.0, -2.0], [3.0, 0.0], [0.0, 4.0])
    out = _filtered(GrokfastSpec(filter="ema", alpha=0.5, lamb=2.0), p, grads)
    # mu_1 = g_1; mu_2 = 0.5 mu_1 + 0.5 g_2 = [2, -1]; mu_3 = 0.5 mu_2 + 0.5 g_3 = [1, 1.5]
    assert torch.allclose(out[0], torch.tensor([1.0, -2.0]) * 3)
    assert torch.allclose(out[1], torch.tensor([3.0, 0.0]) + 2 * torch.tensor([2.0, -1.0]))
    assert torch.allclose(out[2], torch.tensor([0.0, 4.0]) + 2 * torch.tensor([1.0, 1.5]))


def test_ma_filter_waits_for_a_full_window_then_adds_the_window_mean() -> None:
    p, grads = _param([1.0], [2.0], [3.0], [5.0], [7.0], [11.0], [13.0])
    out = _filtered(GrokfastSpec(filter="ma", window=3, lamb=0.5), p, grads)
    assert [float(g) for g in out[:2]] == [1.0, 2.0]  # window not yet full: unchanged
    means = [(1 + 2 + 3) / 3, (2 + 3 + 5) / 3, (3 + 5 + 7) / 3, (5 + 7 + 11) / 3, (7 + 11 + 13) / 3]
    for got, g, m in zip(out[2:], [3.0, 5.0, 7.0, 11.0, 13.0], means, strict=True):
        assert float(got) == pytest.approx(g + 0.5 * m)


def test_parameters_without_gradients_are_skipped_and_keep_their_state() -> None:
    a, b = nn.Parameter(torch.zeros(1)), nn.Parameter(torch.zeros(1))
    f = GradFilter(GrokfastSpec(filter="ema", alpha=0.5, lamb=1.0), [a, b])
    a.grad, b.grad = torch.tensor([2.0]), torch.tensor([4.0])
    f()
    a.grad, b.grad = torch.tensor([0.0]), None  # b unused this step (e.g. an idle expert)
    f()
    assert b.grad is None
    assert float(a.grad) == pytest.approx(0.0 + 1.0 * (0.5 * 2.0))
    b.grad = torch.tensor([0.0])
    f()  # b's average still holds only its first gradient: 0.5 * 4 + 0.5 * 0
    assert float(b.grad) == pytest.approx(2.0)


def test_unset_or_zero_lamb_leaves_gradients_alone() -> None:
    p = nn.Parameter(torch.zeros(2))
    for spec in (None, GrokfastSpec(lamb=0.0)):
        p.grad = torch.tensor([1.0, 2.0])
        GradFilter(spec, [p])()
        assert p.grad.tolist() == [1.0, 2.0]


def test_spec_rejects_a_field_its_filter_does_not_use() -> None:
    with pytest.raises(SpecError, match="window"):
        experiment(train={"grokfast": {"filter": "ema", "window": 10}})
    with pytest.raises(SpecError, match="alpha"):
        experiment(train={"grokfast": {"filter": "ma", "alpha": 0.9}})
    assert experiment(train={"grokfast": {}}).train.grokfast == GrokfastSpec(alpha=0.98, lamb=2.0)


def test_grokfast_groks_in_fewer_steps_than_the_same_spec_without_it(mlflow_uri: str) -> None:
    """A real run: x+y mod 31, minibatches of 64, Grokfast-MA (window 100, lamb 5). Measured
    on this task: 0.99 test accuracy at step ~2250 with Grokfast, ~3100 without (Grokfast-EMA
    at its default barely differs here; see docs/reproductions.md, lee2024). The baseline only
    runs as far as Grokfast needed, and must not have got there."""
    from grokspec.run import run_experiment

    train = {"steps": 4000, "eval_every": 50, "batch_size": 64, "optimizer": {"lr": 2e-3},
             "stop": {"test_acc": 0.99, "patience_evals": 1}}
    fast = run_experiment(experiment(
        train={**train, "grokfast": {"filter": "ma", "window": 100, "lamb": 5.0}},
        analysis={"metrics": []},
    ))
    steps = fast.summary["test_fit_step"]
    assert steps is not None and steps < 4000
    base = run_experiment(experiment(train={**train, "steps": steps}, analysis={"metrics": []}))
    assert base.summary["test_fit_step"] is None, (steps, base.summary["final"])
    assert base.summary["final"]["test/acc"] < 0.99
