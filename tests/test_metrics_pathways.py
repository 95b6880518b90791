"""Routing-pathway metrics (Li et al. 2025) on constructed pathways and a real MoE model."""

from __future__ import annotations

import pytest
import torch

from grokspec.learners.contract import ContractError
from grokspec.metrics import names
from grokspec.metrics.pathways import (
    edit_distance,
    normalised_edit_distance,
    pathway_consistency,
    pathway_distance,
    pathways_from_routing,
)
from grokspec.metrics.progress.pathways import PathwayMeasure
from tests.metrics_helpers import with_learner


def test_edit_distance_known_values() -> None:
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("", "abc") == 3 and edit_distance("abc", "abc") == 0
    assert normalised_edit_distance([(0,), (1,)], [(0,), (2,)]) == 0.5


def test_pathway_distance_averages_same_class_pairs_only() -> None:
    paths = [((0,), (1,)), ((0,), (2,)), ((3,), (3,)), ((0,), (1,))]
    labels = torch.tensor([0, 0, 1, 0])
    # class 0 pairs: (0,1) -> 0.5, (0,3) -> 0.0, (1,3) -> 0.5 ; class 1 has no pair
    assert pathway_distance(paths, labels) == pytest.approx(1 / 3)
    assert pathway_distance(paths[:1], labels[:1]) == 0.0


def test_consistency_is_mean_cosine_of_consecutive_layers() -> None:
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    assert pathway_consistency([a, 3 * a]) == pytest.approx(1.0)
    assert pathway_consistency([a, -a, a]) == pytest.approx(-1.0)
    b = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    assert pathway_consistency([a, b]) == pytest.approx(0.5)  # cosines 0 and 1
    with pytest.raises(ValueError):
        pathway_consistency([a])


def test_pathways_order_layers_then_positions_and_ignore_pick_order() -> None:
    l0 = torch.tensor([[[1, 0], [2, 3]]])  # (batch 1, positions 2, top_k 2)
    l1 = torch.tensor([[[0, 3], [1, 2]]])
    assert pathways_from_routing([l0, l1]) == [((0, 1), (2, 3), (0, 3), (1, 2))]


def moe(layers: int = 2):
    exp = with_learner(
        {"kind": "moe_transformer", "d_model": 16, "heads": 2, "d_mlp": 8, "layers": layers,
         "experts": 4, "top_k": 1},
        analysis={"pathway_batch": 64},
    )
    data = exp.dataset.build(exp.seed)
    torch.manual_seed(0)
    return exp, data, exp.learner.build(data)


def test_measure_on_a_moe_model_with_known_routing_and_outputs() -> None:
    exp, data, model = moe()
    measure = PathwayMeasure(exp.analysis, data, torch.device("cpu"))
    random_init = measure(0, model)
    assert 0.0 < random_init[names.PATHWAY_DISTANCE] <= 1.0
    c = torch.randn(16)
    with torch.no_grad():
        for i, blk in enumerate(model.blocks):
            blk.router.weight.zero_()  # uniform router: every token takes the same expert
            for ex in blk.experts:  # every expert outputs +c (layer 0) or -c (layer 1)
                ex.mlp_in.weight.zero_()
                ex.mlp_in.bias.zero_()
                ex.mlp_out.weight.zero_()
                ex.mlp_out.bias.copy_(c if i == 0 else -c)
    out = measure(1, model)
    assert out[names.PATHWAY_DISTANCE] == 0.0
    assert out[names.PATHWAY_CONSISTENCY] == pytest.approx(-1.0, abs=1e-6)


def test_one_layer_moe_has_no_consistency_and_other_models_nothing() -> None:
    exp, data, model = moe(layers=1)
    out = PathwayMeasure(exp.analysis, data, torch.device("cpu"))(0, model)
    assert names.PATHWAY_DISTANCE in out and names.PATHWAY_CONSISTENCY not in out
    with pytest.raises(ContractError, match="'pathways' cannot read Linear: .*routing"):
        PathwayMeasure(exp.analysis, data, torch.device("cpu"))(0, torch.nn.Linear(2, 2))
