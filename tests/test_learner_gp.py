"""Gaussian-process learner (Miller et al. 2023): metric contract, grokking, validation."""

from __future__ import annotations

import pytest
import torch

from grokspec.run import run_experiment
from grokspec.spec.loading import SpecError
from tests.learner_checks import assert_metric_contract, experiment, smoke_spec

ADAM = {"kind": "adam", "lr": 0.1, "weight_decay": 0.0}


def sine(**learner: object) -> dict:
    """Miller et al.'s sine (100 noisy training points), tiny initial lengthscale."""
    return {
        "seed": 0,
        "dataset": {"kind": "regression_sine"},
        "learner": {"kind": "gp", "initial_lengthscale": 1e-3, **learner},
        "train": {"optimizer": ADAM, "steps": 120, "eval_every": 5},
    }


def parity(n_bits: int = 20, steps: int = 100, **learner: object) -> dict:
    """Concealed 3-bit parity: 200 training strings, the rest of 600 for testing."""
    return {
        "seed": 0,
        "dataset": {"kind": "parity", "n_bits": n_bits, "k": 3, "n_examples": 600,
                    "train_size": 200},
        "learner": {"kind": "gp", **learner},
        "train": {"optimizer": ADAM, "steps": steps, "eval_every": 5,
                  "stop": {"test_acc": 0.99, "patience_evals": 3}},
    }


def test_gp_sine_fits_train_long_before_test(client) -> None:
    """Tiny lengthscale: the posterior interpolates the noisy training points at once and
    only later, as the lengthscale grows, fits the noise-free test function."""
    result = run_experiment(experiment(sine()), device="cpu")
    extras = {"gp/objective", "gp/outputscale", "gp/noise", "gp/lengthscale/0"}
    assert_metric_contract(client, result, extras)
    s = result.summary
    assert s["train_fit_step"] == 0
    assert s["test_fit_step"] is not None and s["test_fit_step"] >= 30, s
    logged = client.get_run(result.run_id).data.metrics
    assert logged["grok/delay"] == s["test_fit_step"]
    ls = client.get_metric_history(result.run_id, "gp/lengthscale/0")
    assert ls[0].value == pytest.approx(1e-3) and ls[-1].value > 0.1  # grew >100x


def test_gp_groks_concealed_parity(client) -> None:
    """The variational classifier memorises, then switches the spurious bits off and
    generalises: high test accuracy, after train accuracy, in a few seconds."""
    exp = experiment(parity())
    result = run_experiment(exp, device="cpu")
    s = result.summary
    assert s["final"]["test/acc"] >= 0.99
    assert s["train_fit_step"] is not None and s["train_fit_step"] < s["test_fit_step"]
    # The mechanism: relevant bits end with the shortest lengthscales.
    relevant = exp.dataset.build(exp.seed).info["relevant_bits"]
    final = result.history[-1]
    ls = torch.tensor([final[f"gp/lengthscale/{d}"] for d in range(20)])
    spurious = [d for d in range(20) if d not in relevant]
    assert float(ls[relevant].max()) < float(ls[spurious].min())


def test_gp_many_dims_log_a_lengthscale_summary(client) -> None:
    result = run_experiment(experiment(parity(n_bits=70, steps=10)), device="cpu")
    summary = {f"gp/lengthscale/{s}" for s in ("min", "median", "max")}
    assert_metric_contract(client, result, {"gp/objective", "gp/outputscale", *summary})


def test_gp_multiclass_softmax_on_tokens(client) -> None:
    """More than two classes (x+y mod 7, one-hot tokens): one latent function per class."""
    data = {
        "seed": 0,
        "dataset": {"kind": "modular", "p": 7, "train_fraction": 0.6},
        "learner": {"kind": "gp", "predictive_samples": 64},
        "train": {"optimizer": ADAM, "steps": 40, "eval_every": 20},
    }
    result = run_experiment(experiment(data), device="cpu")
    dims = {f"gp/lengthscale/{d}" for d in range(14)}
    assert_metric_contract(client, result, {"gp/objective", "gp/outputscale", *dims})
    first, last = result.history[0], result.history[-1]
    assert last["train/loss"] < first["train/loss"] and last["train/acc"] > 0.5


def test_gp_is_deterministic_on_cpu(mlflow_uri) -> None:
    runs = [run_experiment(experiment(parity(steps=10)), device="cpu") for _ in range(2)]
    assert runs[0].history == runs[1].history


def test_gp_rejects_what_would_not_fit_in_memory() -> None:
    data = {"dataset": {"kind": "modular", "p": 97, "train_fraction": 0.5},
            "learner": {"kind": "gp"}, "train": {"optimizer": ADAM}}
    with pytest.raises(SpecError) as err:
        experiment(data)
    assert "learner.memory_budget_gb" in str(err.value) and "GiB" in str(err.value)
    # Fewer inducing points and minibatches fit the budget.
    experiment({**data, "learner": {"kind": "gp", "inducing_points": 64},
                "train": {"optimizer": ADAM, "batch_size": 128}})


def test_gp_regression_needs_full_batch_and_classification_cross_entropy() -> None:
    with pytest.raises(SpecError, match="train.batch_size"):
        experiment({**sine(), "train": {"optimizer": ADAM, "batch_size": 32}})
    with pytest.raises(SpecError, match="train.loss"):
        experiment({**parity(), "train": {"optimizer": ADAM, "loss": "mse"}})
    with pytest.raises(SpecError, match="min_noise"):
        experiment(sine(initial_noise=1e-8))


def test_miller_gp_sine_spec_smoke(client) -> None:
    smoke_spec("miller_gp_sine.yaml")


def test_miller_gp_parity_spec_smoke(client) -> None:
    smoke_spec("miller_gp_parity.yaml")


def test_gp_memory_is_checked_on_the_built_dataset_before_any_run(client) -> None:
    """Digits' 10 classes are only known once built: validation assumes 2, the check on the
    built dataset (10 latent functions) rejects before an MLflow run exists."""
    data = {"dataset": {"kind": "digits", "train_size": 1000},
            "learner": {"kind": "gp", "inducing_points": 1000, "memory_budget_gb": 0.2},
            "train": {"optimizer": ADAM, "batch_size": 64}}
    exp = experiment(data)  # 2 latents: ~0.05 GiB, within budget
    with pytest.raises(ValueError, match="memory_budget_gb"):
        run_experiment(exp, device="cpu")
    assert not client.search_runs([e.experiment_id for e in client.search_experiments()])


@pytest.mark.parametrize("task", ["regression", "classification"])
def test_gp_survives_a_singular_kernel(task: str) -> None:
    """Duplicated inputs and a huge lengthscale make the kernel matrix rank two (for the
    classifier: K_zz of the inducing points, with no noise term); a spec with the default
    numerics (float64, jitter, noise floor) still trains and evaluates at every step."""
    from grokspec.datasets.base import Dataset
    from grokspec.training.loop import fit

    base = sine(initial_lengthscale=10.0, initial_noise=1e-6) if task == "regression" else (
        parity(initial_lengthscale=10.0))
    exp = experiment({**base, "train": {"optimizer": ADAM, "steps": 30, "eval_every": 10}})
    x = torch.zeros(200, 1)
    x[100:] = 1e-4  # two clusters of identical points
    y = torch.randn(200) if task == "regression" else (torch.arange(200) % 2)
    data = Dataset(x_train=x, y_train=y, x_test=x[:10], y_test=y[:10], task=task,
                   input_kind="features", n_classes=None if task == "regression" else 2,
                   info={"acc_tolerance": 0.1})
    member = fit(exp, "cpu", dataset=data, measures=False)
    assert member.error is None
    assert [h["step"] for h in member.history] == [0, 10, 20, 30]
    assert all(torch.isfinite(torch.tensor(h["train/loss"])) for h in member.history)
