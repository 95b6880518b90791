"""The torch modules of :mod:`grokspec.learners.bayesian_mlp` (its spec is there: validating a
spec must not import torch)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from grokspec.datasets.base import Dataset
from grokspec.learners.contract import PARAMETERS, PENALTY, TOKEN_EMBEDDINGS, Probed
from grokspec.learners.encoding import encode, feature_dim, output_dim, vocab_of
from grokspec.learners.models.mlp import ACTIVATIONS

if TYPE_CHECKING:
    from grokspec.learners.bayesian_mlp import BayesianMLPSpec
    pass


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
