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

import math
from typing import TYPE_CHECKING, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from grokspec.datasets.base import Dataset
from grokspec.learners.base import LearnerSpecBase
from grokspec.learners.contract import PARAMETERS, PENALTY, TOKEN_EMBEDDINGS, Probed
from grokspec.learners.encoding import encode, feature_dim, output_dim, vocab_of
from grokspec.learners.mlp import ACTIVATIONS
from grokspec.spec.base import field_error

if TYPE_CHECKING:
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
        return BayesianMLP(self, dataset)


def _inv_softplus(y: float) -> float:
    return y + math.log(-math.expm1(-y))


class BayesLinear(nn.Module):
    """Linear layer with a factorised Gaussian posterior over weights and biases."""

    def __init__(self, d_in: int, d_out: int, prior_std: float, init_std: float) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(d_in)  # the support of nn.Linear's default init
        self.w_mu = nn.Parameter(torch.empty(d_out, d_in).uniform_(-bound, bound))
        self.b_mu = nn.Parameter(torch.empty(d_out).uniform_(-bound, bound))
        rho = _inv_softplus(init_std)
        self.w_rho = nn.Parameter(torch.full((d_out, d_in), rho))
        self.b_rho = nn.Parameter(torch.full((d_out,), rho))
        self.prior_std = prior_std

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        mean = F.linear(x, self.w_mu, self.b_mu)
        var = F.linear(x * x, F.softplus(self.w_rho) ** 2, F.softplus(self.b_rho) ** 2)
        eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return mean + var.sqrt() * eps

    def kl(self) -> torch.Tensor:
        """KL(q || N(0, prior_std^2)), summed over every weight and bias (closed form)."""
        total = torch.zeros((), device=self.w_mu.device, dtype=self.w_mu.dtype)
        p = self.prior_std
        for mu, rho in ((self.w_mu, self.w_rho), (self.b_mu, self.b_rho)):
            s = F.softplus(rho)
            kl = math.log(p) - torch.log(s) + (s * s + mu * mu) / (2 * p * p) - 0.5
            total = total + kl.sum()
        return total


class BayesianMLP(Probed, nn.Module):
    """Hidden pre-activations are sampled (local reparameterisation), not a module's output,
    so this model offers no probe points; its token embeddings are the posterior means."""

    def __init__(self, spec: BayesianMLPSpec, dataset: Dataset) -> None:
        super().__init__()
        self.vocab = vocab_of(dataset)
        self.provides = frozenset({PARAMETERS, PENALTY}) | (
            frozenset({TOKEN_EMBEDDINGS}) if self.vocab is not None else frozenset()
        )
        self.classification = dataset.task == "classification"
        self.squeeze = not self.classification and dataset.y_train.ndim == 1
        dims = [feature_dim(dataset)] + [spec.width] * spec.depth + [output_dim(dataset)]
        self.layers = nn.ModuleList(
            BayesLinear(a, b, spec.prior_std, spec.initial_posterior_std)
            for a, b in zip(dims[:-1], dims[1:], strict=True)
        )
        self.act = ACTIVATIONS[spec.activation]()
        self.samples = spec.samples
        self.kl_scale = spec.kl_weight / dataset.n_train
        # Seed of the evaluation noise, drawn from the (seeded) global generator at build.
        self.eval_seed = int(torch.randint(2**31 - 1, (1,)))

    def _sample(self, h: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            h = layer(h, generator)
            if i < len(self.layers) - 1:
                h = self.act(h)
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Training: one sampled output. Eval: the ``samples``-pass posterior predictive
        (log of the mean class probabilities, or the mean regression output)."""
        h = encode(x, self.vocab, self.layers[0].w_mu.dtype)
        if self.training:
            out = self._sample(h, None)
        else:
            g = torch.Generator(device=h.device).manual_seed(self.eval_seed)
            outs = torch.stack([self._sample(h, g) for _ in range(self.samples)])
            if self.classification:
                out = torch.logsumexp(outs.log_softmax(-1), dim=0) - math.log(self.samples)
            else:
                out = outs.mean(0)
        return out.squeeze(-1) if self.squeeze else out

    def token_embeddings(self) -> list[torch.Tensor]:
        """One-hot inputs: the first layer's posterior-mean (vocab, width) block per position."""
        if self.vocab is None:
            return []
        return list(self.layers[0].w_mu.T.split(self.vocab, dim=0))

    def kl(self) -> torch.Tensor:
        return torch.stack([layer.kl() for layer in self.layers]).sum()

    def penalty(self) -> torch.Tensor:
        """The ELBO's complexity term per training example (added to the mean data loss)."""
        return self.kl_scale * self.kl()

    @torch.no_grad()
    def weight_norm(self) -> float:
        """L2 norm of the posterior means: the weights of the mean network."""
        means = [p for name, p in self.named_parameters() if name.endswith("_mu")]
        return math.sqrt(sum(float((p.double() ** 2).sum()) for p in means))

    @torch.no_grad()
    def extra_metrics(self) -> dict[str, float]:
        return {"bayes/kl": float(self.kl())}
