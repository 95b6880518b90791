"""Deep MLPs (Fan et al. 2024): 12 layers, MSE on one-hot targets, large init, float64."""

from __future__ import annotations

import torch

from grokspec.run import run_experiment
from tests.learner_checks import assert_metric_contract, experiment, smoke_spec


def test_twelve_layer_mse_mlp_fits_digits(client) -> None:
    """Large init (x3 per layer: outputs ~100x too big at step 0) and MSE on one-hot targets:
    a 12-layer float64 net still trains, and the contract holds."""
    data = {
        "seed": 0,
        "dataset": {"kind": "digits", "train_size": 100},
        "learner": {"kind": "mlp", "depth": 12, "width": 64, "init_scale": 3.0,
                    "dtype": "float64"},
        "train": {"loss": "mse", "optimizer": {"kind": "adamw", "lr": 1e-3, "weight_decay": 1.0},
                  "steps": 300, "eval_every": 50},
    }
    exp = experiment(data)
    result = run_experiment(exp, device="cpu")
    assert_metric_contract(client, result, set())
    first, last = result.history[0], result.history[-1]
    assert first["train/loss"] > 10 and last["train/loss"] < 0.05
    assert last["train/acc"] >= 0.95 and last["test/acc"] > 0.5
    model = result.artifacts["model"]
    assert all(p.dtype == torch.float64 for p in model.parameters())
    assert sum(isinstance(m, torch.nn.Linear) for m in model.modules()) == 13


def test_fan_deep_mlp_spec_smoke(client) -> None:
    smoke_spec("fan_deep_mlp.yaml")
