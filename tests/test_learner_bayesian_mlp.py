"""Mean-field Bayesian MLP (Bayes by backprop; Miller et al. 2023)."""

from __future__ import annotations

import pytest
import torch

from grokspec.run import run_experiment
from grokspec.spec.loading import SpecError
from tests.learner_checks import assert_metric_contract, experiment, smoke_spec

ADAM = {"kind": "adam", "lr": 3e-3, "weight_decay": 0.0}


def parity(steps: int = 1500, eval_every: int = 50, **learner: object) -> dict:
    """3-bit parity concealed in 16 bits, 400 training strings."""
    return {
        "seed": 0,
        "dataset": {"kind": "parity", "n_bits": 16, "k": 3, "n_examples": 1000,
                    "train_size": 400},
        "learner": {"kind": "bayesian_mlp", "width": 128, **learner},
        "train": {"optimizer": ADAM, "steps": steps, "eval_every": eval_every,
                  "stop": {"test_acc": 0.99, "patience_evals": 3}},
    }


def test_bayesian_mlp_groks_concealed_parity(client) -> None:
    """Trained on the ELBO it fits the training strings first and then really generalises;
    its KL (the complexity term) falls all along."""
    result = run_experiment(experiment(parity()), device="cpu")
    assert_metric_contract(client, result, {"bayes/kl"})
    s = result.summary
    assert s["final"]["test/acc"] >= 0.99
    assert s["train_fit_step"] < s["test_fit_step"], s
    kl = [m.value for m in client.get_metric_history(result.run_id, "bayes/kl")]
    assert kl[-1] < kl[0]


def test_evaluation_neither_is_random_nor_changes_training(mlflow_uri) -> None:
    """The predictive's noise is re-seeded per evaluation: evaluating 5x as often leaves the
    training trajectory and every shared evaluation identical."""
    often = run_experiment(experiment(parity(steps=100, eval_every=10)), device="cpu")
    rarely = run_experiment(experiment(parity(steps=100, eval_every=50)), device="cpu")
    by_step = {h["step"]: h for h in often.history}
    for h in rarely.history:
        assert by_step[h["step"]] == h


def test_predictive_averages_samples() -> None:
    """Eval output = log of the mean of the sampled softmaxes; training draws one sample."""
    exp = experiment(parity(samples=4, initial_posterior_std=0.5))
    data = exp.dataset.build(exp.seed)
    torch.manual_seed(0)
    model = exp.learner.build(data)
    x = data.x_test[:8]
    model.train()
    assert not torch.equal(model(x), model(x))  # stochastic in training
    model.eval()
    out = model(x)
    assert torch.equal(out, model(x))  # deterministic predictive
    assert torch.allclose(out.exp().sum(-1), torch.ones(8))
    g = torch.Generator().manual_seed(model.eval_seed)
    h = x.float()
    probs = torch.stack([model._sample(h, g).softmax(-1) for _ in range(4)]).mean(0)
    assert torch.allclose(out, probs.log(), atol=1e-5)


def test_kl_matches_closed_form_and_weight_norm_is_the_means() -> None:
    exp = experiment(parity(prior_std=0.5, initial_posterior_std=0.1, depth=2))
    data = exp.dataset.build(exp.seed)
    model = exp.learner.build(data)
    q_mu = torch.cat([p.flatten() for n, p in model.named_parameters() if n.endswith("_mu")])
    q = torch.distributions.Normal(q_mu, 0.1)
    expected = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 0.5)).sum()
    assert float(model.kl()) == pytest.approx(float(expected), rel=1e-4)
    assert model.weight_norm() == pytest.approx(float(q_mu.double().norm()), rel=1e-6)
    assert float(model.penalty()) == pytest.approx(float(expected) / data.n_train, rel=1e-4)


def test_bayesian_mlp_regression_runs(client) -> None:
    data = {"dataset": {"kind": "regression_sine"}, "learner": {"kind": "bayesian_mlp"},
            "train": {"optimizer": ADAM, "steps": 20, "eval_every": 10}}
    result = run_experiment(experiment(data), device="cpu")
    assert_metric_contract(client, result, {"bayes/kl"})


def test_bayesian_mlp_rejects_mse_for_classification() -> None:
    with pytest.raises(SpecError, match="train.loss"):
        experiment({**parity(), "train": {"optimizer": ADAM, "loss": "mse"}})


def test_bayesian_parity_spec_smoke(client) -> None:
    smoke_spec("bayesian_parity.yaml")
