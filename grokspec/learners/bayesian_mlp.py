"""Mean-field Gaussian Bayesian MLP, trained on the ELBO (Blundell et al. 2015; Miller et al. 2023).

Every weight and bias has an independent Gaussian posterior ``N(mu, softplus(rho)^2)`` and a
zero-mean Gaussian prior ``N(0, prior_std^2)``. Training minimises the negative ELBO per
training example::

    E_q[ NLL(batch) ] + kl_weight * KL(q || prior) / n_train

with one Monte-Carlo sample per step drawn by the *local reparameterisation trick* (Kingma et
al. 2015: sample each layer's pre-activations, whose Gaussian law follows from the weights',
rather than the weights; same expectation, much lower gradient variance). Miller et al. read
the KL term as the model's complexity: it is logged as ``bayes/kl`` (nats, whole network) and
falls while the net trades memorisation for the simpler, generalising solution.

The data term is the experiment's loss (cross-entropy or MSE for regression); the KL term is
added through the gradient runner's ``penalty()`` hook, so this learner needs no runner of its
own. Prediction (evaluation) averages ``samples`` stochastic forward passes: the predictive
class probabilities are the mean of the sampled softmaxes (the model returns their log, so the
logged cross-entropy is the predictive's negative log-likelihood), a regression prediction
is the mean output. The evaluation noise comes from a generator re-seeded at every evaluation:
metrics are deterministic, and evaluating more or less often does not change training.

Hand-written rather than Blitz / torchbnn (both unmaintained) or Pyro SVI (a second
probabilistic framework for one layer type, and its guide would hide the local
reparameterisation): the layer is ~30 lines and the whole ELBO is visible here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from grokspec.learners.base import LearnerSpecBase
from grokspec.learners.contract import PARAMETERS, PENALTY, TOKEN_EMBEDDINGS
from grokspec.spec.base import field_error

if TYPE_CHECKING:
    from torch import nn

    from grokspec.datasets.base import Dataset
    from grokspec.spec.experiment import Experiment


class BayesianMLPSpec(LearnerSpecBase):
    """Bayes-by-backprop MLP (Miller et al. 2023): ``depth`` hidden layers of ``width`` units,
    mean-field Gaussian weights, trained on the ELBO. Token inputs are read as concatenated
    one-hot codes."""

    kind: Literal["bayesian_mlp"] = "bayesian_mlp"
    provides: ClassVar[frozenset[str]] = frozenset({TOKEN_EMBEDDINGS, PARAMETERS, PENALTY})
    depth: int = Field(default=1, ge=1, le=16, description="Number of hidden layers.")
    width: int = Field(default=256, ge=1, description="Units per hidden layer.")
    activation: Literal["relu", "gelu", "tanh", "silu", "quadratic"] = Field(
        default="relu", description="Hidden activation; `quadratic` is x^2."
    )
    prior_std: float = Field(
        default=1.0,
        gt=0.0,
        description="Standard deviation of the zero-mean Gaussian prior on every weight and "
        "bias. Smaller = a stronger pull towards simple (small-weight) functions.",
    )
    initial_posterior_std: float = Field(
        default=1e-3,
        gt=0.0,
        description="Initial standard deviation of every weight's posterior (the means start "
        "at PyTorch's default init). Small values start the net nearly deterministic, so it "
        "can fit the training set before the KL term widens the posterior.",
    )
    kl_weight: float = Field(
        default=1.0,
        ge=0.0,
        description="Multiplier on KL/n_train in the per-example ELBO: 1 is the true ELBO, "
        "below 1 a tempered posterior (weaker complexity penalty), 0 plain noisy training.",
    )
    samples: int = Field(
        default=16,
        ge=1,
        le=1024,
        description="Forward passes averaged by the posterior predictive at evaluation.",
    )

    def check_experiment(self, experiment: Experiment) -> None:
        if experiment.dataset.task == "classification" and experiment.train.loss != "cross_entropy":
            raise field_error(
                "train.loss",
                "bayesian_mlp predicts by averaging sampled class probabilities and is "
                "trained on the ELBO's log-likelihood: use train.loss: cross_entropy",
            )

    def build(self, dataset: Dataset) -> nn.Module:
        from grokspec.learners.models.bayesian_mlp import BayesianMLP

        return BayesianMLP(self, dataset)


def __getattr__(name: str) -> Any:
    """The torch modules live in :mod:`grokspec.learners.models.bayesian_mlp`; importing one from
    here (``from grokspec.learners.bayesian_mlp import BayesLinear``) still works and imports torch
    only then."""
    if name in _MODELS:
        from grokspec.learners.models import bayesian_mlp as models

        return getattr(models, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_MODELS = frozenset({
    "BayesLinear", "BayesianMLP", "_inv_softplus"
})
