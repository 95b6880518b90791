"""Mixture-of-experts transformer: routing, load balancing, metric contract."""

from __future__ import annotations

import pytest
import torch

from grokspec.learners.transformer import Transformer, TransformerSpec
from grokspec.run import run_experiment
from grokspec.spec.loading import SpecError
from tests.learner_checks import assert_metric_contract, experiment, smoke_spec

SMALL = {"kind": "moe_transformer", "d_model": 32, "heads": 2, "d_mlp": 32}


def built(**learner: object):
    exp = experiment({"dataset": {"kind": "modular", "p": 11, "train_fraction": 0.5},
                      "learner": {**SMALL, **learner}})
    data = exp.dataset.build(exp.seed)
    torch.manual_seed(0)
    return exp.learner.build(data), data


def test_moe_trains_under_the_metric_contract(client) -> None:
    data = {
        "dataset": {"kind": "modular", "p": 11, "train_fraction": 0.5},
        "learner": {**SMALL, "layers": 2, "top_k": 2},
        "train": {"optimizer": {"kind": "adamw", "lr": 3e-3, "weight_decay": 0.1},
                  "steps": 150, "eval_every": 50},
    }
    result = run_experiment(experiment(data), device="cpu")
    assert_metric_contract(client, result, set())
    assert result.history[-1]["train/acc"] > 0.9 > result.history[0]["train/acc"]


def test_routing_per_layer_and_position() -> None:
    model, data = built(layers=2, experts=4, top_k=2)
    x = data.x_train[:5]
    model.eval()
    before = model(x)
    routing = model.routing(x)
    assert torch.equal(model(x), before) and not model.training  # routing has no side effect
    assert len(routing) == 2
    for ids, gates, mixed in routing:
        assert ids.shape == gates.shape == (5, 3, 2)  # (batch, operands + "=", top_k)
        assert mixed.shape == (5, 3, 32)  # the gated expert output per position
        assert ids.min() >= 0 and ids.max() < 4
        assert (ids[..., 0] != ids[..., 1]).all()  # two distinct experts per token
        assert (gates > 0).all() and (gates.sum(-1) <= 1 + 1e-6).all()
        assert (gates[..., 0] >= gates[..., 1]).all()  # ordered by router probability


def test_moe_output_is_the_gated_sum_of_chosen_experts() -> None:
    model, data = built(experts=3, top_k=2)
    block = model.blocks[0]
    a = torch.randn(4, 3, 32)
    out = block.mlp(a)
    ids, gates, mixed = block.last_routing
    want = torch.zeros_like(a)
    for b in range(4):
        for t in range(3):
            for slot in range(2):
                e = int(ids[b, t, slot])
                want[b, t] += gates[b, t, slot] * block.experts[e](a[b, t])
    assert torch.allclose(out, want, atol=1e-6)
    assert torch.equal(mixed, out.detach())  # what the routing reports is what the block adds


def test_one_expert_is_the_plain_transformer() -> None:
    """experts=1, top_k=1: the gate is 1 and the block is the transformer's own MLP."""
    moe, data = built(experts=1, balance_loss=0.0)
    spec = TransformerSpec(d_model=32, heads=2, d_mlp=32)
    plain = Transformer(spec, 11, 2, 11)
    state = {k.replace("experts.0.", ""): v for k, v in moe.state_dict().items()
             if "router" not in k}
    plain.load_state_dict(state)
    x = data.x_test[:16]
    assert torch.allclose(moe(x), plain(x), atol=1e-5)


def test_balance_loss_is_one_when_routing_is_uniform() -> None:
    """Switch loss E * sum_e f_e P_e: with a zero router P_e = 1/E, so it is exactly 1."""
    model, data = built(experts=4, balance_loss=0.5)
    torch.nn.init.zeros_(model.blocks[0].router.weight)
    model(data.x_train[:8])
    assert float(model.penalty()) == pytest.approx(0.5)


def test_top_k_must_fit_the_experts() -> None:
    with pytest.raises(SpecError, match="top_k"):
        built(experts=2, top_k=3)


def test_moe_modadd_spec_smoke(client) -> None:
    smoke_spec("moe_modadd.yaml")
