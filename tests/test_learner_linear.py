"""Linear / logistic learner (Levi et al. 2023; Miller et al. 2023)."""

from __future__ import annotations

import torch

from grokspec.run import run_experiment
from tests.learner_checks import assert_metric_contract, experiment, smoke_spec

SGD = {"kind": "sgd", "lr": 0.05, "weight_decay": 0.0}


def test_linear_student_groks_a_linear_teacher(client) -> None:
    """Levi et al.: train outputs get within tolerance before test outputs do."""
    data = {
        "seed": 0,
        "dataset": {"kind": "linear_teacher", "dim": 50, "n_examples": 600, "train_size": 100},
        "learner": {"kind": "linear"},
        "train": {"optimizer": SGD, "steps": 600, "eval_every": 10,
                  "stop": {"test_acc": 0.99, "patience_evals": 3}},
    }
    result = run_experiment(experiment(data), device="cpu")
    assert_metric_contract(client, result, set())
    s = result.summary
    assert s["final"]["test/acc"] >= 0.99
    assert s["train_fit_step"] is not None and s["delay"] >= 30, s


def test_logistic_regression_cannot_generalise_modular_addition(client) -> None:
    """A negative control: one-hot operands, softmax regression, x+y mod 11. It can fit some
    of the table but never the held-out sums (the answer is not linear in the operands)."""
    data = {
        "dataset": {"kind": "modular", "p": 11, "train_fraction": 0.5},
        "learner": {"kind": "linear"},
        "train": {"optimizer": {"kind": "adam", "lr": 0.05, "weight_decay": 0.0},
                  "steps": 300, "eval_every": 50},
    }
    result = run_experiment(experiment(data), device="cpu")
    assert_metric_contract(client, result, set())
    assert result.summary["final"]["test/acc"] < 0.3


def test_zero_init_and_vector_targets() -> None:
    exp = experiment({
        "dataset": {"kind": "linear_teacher", "dim": 4, "n_examples": 20, "train_size": 10},
        "learner": {"kind": "linear", "init_scale": 0.0, "dtype": "float64"},
    })
    data = exp.dataset.build(exp.seed)
    model = exp.learner.build(data)
    assert all(float(p.abs().sum()) == 0.0 for p in model.parameters())
    assert model(data.x_test).shape == (data.n_test,) and model(data.x_test).dtype == torch.float64
    data.y_train = torch.stack([data.y_train, -data.y_train], dim=1)  # two targets per example
    assert exp.learner.build(data)(data.x_test).shape == (data.n_test, 2)


def test_linear_teacher_spec_smoke(client) -> None:
    smoke_spec("linear_teacher.yaml")
