"""The built-in learners at test size, shared by the contract and plugin-check tests."""

from __future__ import annotations

from typing import Any

from tests.metrics_helpers import TINY_TRANSFORMER, with_learner

P = 11
GP_TRAIN = {"optimizer": {"kind": "adam", "lr": 0.1, "weight_decay": 0.0}}
LEARNERS: dict[str, dict[str, Any]] = {
    "mlp": {"kind": "mlp", "width": 16, "depth": 2},
    "mlp_embedding": {"kind": "mlp", "width": 16, "input_encoding": "embedding", "embed_dim": 8},
    "mlp_embedding_sum": {"kind": "mlp", "width": 16, "input_encoding": "embedding_sum",
                          "embed_dim": 2},
    "transformer": TINY_TRANSFORMER,
    "moe_transformer": {**TINY_TRANSFORMER, "kind": "moe_transformer", "layers": 2},
    "linear": {"kind": "linear"},
    "bayesian_mlp": {"kind": "bayesian_mlp", "width": 16},
    "gp": {"kind": "gp"},
}


def experiment_for(key: str) -> Any:
    """TINY_GROK with learner ``key`` on x+y mod P."""
    train = GP_TRAIN if key == "gp" else {}
    return with_learner(LEARNERS[key], dataset={"kind": "modular", "p": P}, train=train)
