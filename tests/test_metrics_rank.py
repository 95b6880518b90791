"""Feature rank (Fan et al. 2024) on matrices and layers of known rank."""

from __future__ import annotations

import pytest
import torch

from grokspec.metrics import names
from grokspec.metrics.progress.feature_rank import FeatureRank, preactivation_layers
from grokspec.metrics.rank import numerical_rank
from tests.helpers import experiment
from tests.metrics_helpers import TINY_TRANSFORMER, with_learner


def low_rank(n: int, d: int, r: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, r, generator=g) @ torch.randn(r, d, generator=g)


@pytest.mark.parametrize("r", [1, 3, 17, 40])
def test_rank_of_known_rank_matrices(r: int) -> None:
    assert numerical_rank(low_rank(200, 40, r)) == min(r, 40)


def test_tolerance_separates_signal_from_small_noise() -> None:
    g = torch.Generator().manual_seed(1)
    h = low_rank(300, 50, 5) + 1e-6 * torch.randn(300, 50, generator=g)
    assert numerical_rank(h, tol=1e-3) == 5
    assert numerical_rank(h, tol=1e-9) == 50


def test_mean_is_removed_and_degenerate_inputs() -> None:
    h = low_rank(100, 20, 4) + 7.0  # a shared offset adds no rank to a covariance
    assert numerical_rank(h) == 4
    assert numerical_rank(torch.ones(10, 5)) == 0
    with pytest.raises(ValueError):
        numerical_rank(torch.ones(3))


def test_measure_reports_the_rank_of_each_hidden_layer() -> None:
    # grokspec's centred-pre-activation definition (Fan et al.'s, the default, reads the
    # post-activations: tests/test_paper_definitions_measures.py).
    exp = experiment(
        learner={"depth": 2, "width": 32}, analysis={"rank_definition": "centred_preactivation"}
    )
    data = exp.dataset.build(exp.seed)
    model = exp.learner.build(data)
    assert set(preactivation_layers(model)) == {"net.0", "net.2"}
    with torch.no_grad():  # first layer of rank 3, second of rank 5
        model.net[0].weight.copy_(low_rank(32, model.net[0].in_features, 3, seed=2))
        model.net[2].weight.copy_(low_rank(32, 32, 5, seed=3))
    out = FeatureRank(exp.analysis, data, torch.device("cpu"))(0, model)
    assert out[names.FEATURE_RANK.format(layer="net.0")] == 3.0
    assert out[names.FEATURE_RANK.format(layer="net.2")] == 5.0
    with torch.no_grad():  # rank-1 first layer: x^2 of a rank-1 feature is rank 1 again,
        model.net[0].weight.copy_(low_rank(32, model.net[0].in_features, 1, seed=2))
        model.net[0].bias.zero_()  # so the second layer's input bounds its rank to 1
    out = FeatureRank(exp.analysis, data, torch.device("cpu"))(0, model)
    assert out[names.FEATURE_RANK.format(layer="net.0")] == 1.0
    assert out[names.FEATURE_RANK.format(layer="net.2")] == 1.0


def test_transformer_mlp_inputs_are_found() -> None:
    exp = with_learner({**TINY_TRANSFORMER, "d_mlp": 24, "layers": 2})
    data = exp.dataset.build(exp.seed)
    model = exp.learner.build(data)
    assert set(preactivation_layers(model)) == {"blocks.0.hook_mlp_pre", "blocks.1.hook_mlp_pre"}
    out = FeatureRank(exp.analysis, data, torch.device("cpu"))(0, model)
    assert 1 <= out["progress/feature_rank/blocks.1.hook_mlp_pre"] <= 24


def test_feature_rank_reads_its_own_batch_whatever_else_shares_the_capture() -> None:
    """Regression (found this session): with the Fourier measure on, the shared capture
    records the first layer's post-activations on every p^2 pair, and feature rank counted
    the rank of all of them (train and test rows, 9409 at p=97) instead of its rank_batch
    training inputs. The rank must not depend on which other measures run."""
    from grokspec.metrics.measures import build_measures, capturing
    from grokspec.training.evaluation import standard_metrics

    def ranks(metrics: list[str]) -> dict[str, float]:
        exp = experiment(learner={"width": 64}, analysis={
            "metrics": metrics, "rank_batch": 40, "intervals": {"feature_rank": 0}})
        data = exp.dataset.build(exp.seed)
        torch.manual_seed(0)
        model = exp.learner.build(data)
        measures, _ = build_measures(exp, data, torch.device("cpu"))
        tensors = {k: getattr(data, k) for k in ("x_train", "y_train", "x_test", "y_test")}
        with capturing(model, measures):  # the loop's evaluation, recorded
            standard_metrics(model, data, exp.train, tensors)
        out: dict[str, float] = {}
        for m in measures:
            out.update(m(0, model))
        return {k: v for k, v in out.items() if k.startswith("progress/feature_rank")}

    alone = ranks(["feature_rank"])
    assert alone and all(v <= 40 for v in alone.values())
    assert ranks(["fourier", "feature_rank"]) == alone  # the capture Fourier filled first
