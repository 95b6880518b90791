"""The torch modules of :mod:`grokspec.learners.gp` (its spec is there: validating a
spec must not import torch)."""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING

import gpytorch
import torch
import torch.nn.functional as F
from torch import nn

from grokspec.datasets.base import Dataset
from grokspec.learners.encoding import encode, vocab_of

if TYPE_CHECKING:
    from grokspec.learners.gp import GPSpec


MAX_LENGTHSCALE_DIMS = 64  # beyond this, log a summary instead of one metric per dimension


def make_kernel(spec: GPSpec, dims: int) -> gpytorch.kernels.ScaleKernel:
    ard = dims if spec.ard else None
    if spec.kernel == "rbf":
        base: gpytorch.kernels.Kernel = gpytorch.kernels.RBFKernel(ard_num_dims=ard)
    else:
        nu = {"matern12": 0.5, "matern32": 1.5, "matern52": 2.5}[spec.kernel]
        base = gpytorch.kernels.MaternKernel(nu=nu, ard_num_dims=ard)
    base.lengthscale = spec.initial_lengthscale
    kernel = gpytorch.kernels.ScaleKernel(base)
    kernel.outputscale = spec.initial_outputscale
    return kernel


class GaussianProcess(nn.Module):
    """What the GP runner needs: ``objective(idx)`` to minimise, and a forward that returns
    the predictive in a network's output format (log class probabilities, or the mean), so
    :func:`grokspec.training.evaluation.standard_metrics` evaluates it like any torch model."""

    kernel: gpytorch.kernels.ScaleKernel

    def __init__(self, spec: GPSpec, dataset: Dataset) -> None:
        super().__init__()
        self.spec = spec
        self.vocab = vocab_of(dataset)
        self.dtype_ = torch.float64 if spec.dtype == "float64" else torch.float32
        self.register_buffer("x_train", encode(dataset.x_train, self.vocab, self.dtype_))

    @contextlib.contextmanager
    def settings(self) -> Iterator[None]:
        j = self.spec.jitter
        with contextlib.ExitStack() as stack:
            stack.enter_context(gpytorch.settings.max_cholesky_size(2**62))
            stack.enter_context(gpytorch.settings.cholesky_jitter(float_value=j, double_value=j))
            stack.enter_context(
                gpytorch.settings.variational_cholesky_jitter(float_value=j, double_value=j)
            )
            yield

    def train(self, mode: bool = True) -> GaussianProcess:
        """Only flags the wrapper: :meth:`objective` and :meth:`forward` put the gpytorch
        model in the mode they need, so evaluating train then test data (which toggles
        modes in :func:`grokspec.training.evaluation.evaluate`) reuses one posterior cache."""
        self.training = mode
        return self

    def objective(self, idx: torch.Tensor | None = None) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def _predict(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior predictive at raw inputs ``x``, in chunks of ``spec.predict_rows`` rows."""
        xe = encode(x, self.vocab, self.dtype_)
        with self.settings():
            self.gp.eval()
            rows = self.spec.predict_rows
            return torch.cat([self._predict(xe[i : i + rows])
                              for i in range(0, xe.shape[0], rows)])

    def lengthscales(self) -> torch.Tensor:
        return self.kernel.base_kernel.lengthscale.detach().reshape(-1)

    def extra_metrics(self) -> dict[str, float]:
        out = {"gp/outputscale": float(self.kernel.outputscale.detach())}
        with torch.no_grad():
            out["gp/objective"] = float(self.objective())
        ls = self.lengthscales().double().cpu()
        if ls.numel() <= MAX_LENGTHSCALE_DIMS:
            out.update({f"gp/lengthscale/{i}": float(v) for i, v in enumerate(ls)})
        else:
            out.update(
                {
                    "gp/lengthscale/min": float(ls.min()),
                    "gp/lengthscale/median": float(ls.median()),
                    "gp/lengthscale/max": float(ls.max()),
                }
            )
        return out


class _ExactModel(gpytorch.models.ExactGP):
    def __init__(self, x, y, likelihood, kernel) -> None:  # noqa: ANN001 - gpytorch types
        super().__init__(x, y, likelihood)
        self.mean_module = gpytorch.means.ConstantMean()
        self.covar_module = kernel

    def forward(self, x: torch.Tensor) -> gpytorch.distributions.MultivariateNormal:
        return gpytorch.distributions.MultivariateNormal(self.mean_module(x), self.covar_module(x))


class ExactRegressionGP(GaussianProcess):
    def __init__(self, spec: GPSpec, dataset: Dataset) -> None:
        super().__init__(spec, dataset)
        self.register_buffer("y_train", dataset.y_train.to(self.dtype_))
        likelihood = gpytorch.likelihoods.GaussianLikelihood(
            noise_constraint=gpytorch.constraints.GreaterThan(spec.min_noise)
        )
        likelihood.noise = spec.initial_noise
        self.kernel = make_kernel(spec, self.x_train.shape[1])
        self.gp = _ExactModel(self.x_train, self.y_train, likelihood, self.kernel)
        self.mll = gpytorch.mlls.ExactMarginalLogLikelihood(likelihood, self.gp)
        self.to(self.dtype_)

    def _apply(self, fn, *args, **kwargs):  # noqa: ANN001, ANN202 - nn.Module's signature
        # ExactGP keeps its training data as plain attributes, which .to() would not move.
        super()._apply(fn, *args, **kwargs)
        self.gp.set_train_data(self.x_train, self.y_train, strict=False)
        return self

    def objective(self, idx: torch.Tensor | None = None) -> torch.Tensor:
        """Negative log marginal likelihood per training example (always the full set)."""
        with self.settings():
            self.gp.train()
            return -self.mll(self.gp(self.x_train), self.y_train)

    def _predict(self, x: torch.Tensor) -> torch.Tensor:
        """Posterior predictive mean at encoded inputs ``x``."""
        with gpytorch.settings.skip_posterior_variances(), warnings.catch_warnings():
            # Predicting at the training inputs is intended (train/acc, train/loss).
            warnings.simplefilter("ignore", gpytorch.utils.warnings.GPInputWarning)
            return self.gp(x).mean

    @torch.no_grad()
    def weight_norm(self) -> float:
        """RKHS norm of the posterior mean minus the constant mean (see module docstring)."""
        with self.settings():
            self.gp.eval()
            if self.gp.prediction_strategy is None:
                self.gp(self.x_train[:1])  # builds the prediction cache
            alpha = self.gp.prediction_strategy.mean_cache
            resid = self.y_train - self.gp.mean_module.constant
            sq = alpha @ resid - self.gp.likelihood.noise.squeeze() * (alpha @ alpha)
        return math.sqrt(max(float(sq), 0.0))

    def extra_metrics(self) -> dict[str, float]:
        return {**super().extra_metrics(), "gp/noise": float(self.gp.likelihood.noise.detach())}


class _VariationalModel(gpytorch.models.ApproximateGP):
    def __init__(self, inducing: torch.Tensor, latents: int, kernel, learn: bool) -> None:  # noqa: ANN001
        batch = torch.Size([latents]) if latents > 1 else torch.Size([])
        dist = gpytorch.variational.CholeskyVariationalDistribution(
            inducing.shape[0], batch_shape=batch
        )
        strategy: gpytorch.variational._VariationalStrategy = (
            gpytorch.variational.VariationalStrategy(
                self, inducing, dist, learn_inducing_locations=learn
            )
        )
        if latents > 1:
            strategy = gpytorch.variational.IndependentMultitaskVariationalStrategy(
                strategy, num_tasks=latents
            )
        super().__init__(strategy)
        self.mean_module = gpytorch.means.ConstantMean(batch_shape=batch)
        self.covar_module = kernel

    def forward(self, x: torch.Tensor) -> gpytorch.distributions.MultivariateNormal:
        return gpytorch.distributions.MultivariateNormal(self.mean_module(x), self.covar_module(x))


class VariationalClassifierGP(GaussianProcess):
    def __init__(self, spec: GPSpec, dataset: Dataset) -> None:
        super().__init__(spec, dataset)
        assert dataset.n_classes is not None
        self.n_classes = dataset.n_classes
        self.register_buffer("y_train", dataset.y_train.clone())
        self.binary = self.n_classes <= 2
        latents = 1 if self.binary else self.n_classes
        m = min(spec.inducing_points, dataset.n_train)
        pick = torch.randperm(dataset.n_train)[:m]  # global RNG, seeded by the runner
        self.kernel = make_kernel(spec, self.x_train.shape[1])
        inducing = self.x_train[pick].clone()
        self.gp = _VariationalModel(inducing, latents, self.kernel, spec.learn_inducing)
        self.likelihood: gpytorch.likelihoods.Likelihood = (
            gpytorch.likelihoods.BernoulliLikelihood()
            if self.binary
            else gpytorch.likelihoods.SoftmaxLikelihood(
                num_classes=self.n_classes, mixing_weights=False
            )
        )
        self.elbo = gpytorch.mlls.VariationalELBO(
            self.likelihood, self.gp, num_data=dataset.n_train
        )
        self.samples = spec.predictive_samples
        self.eval_seed = int(torch.randint(2**31 - 1, (1,)))
        self.to(self.dtype_)

    def _targets(self, y: torch.Tensor) -> torch.Tensor:
        return y.to(self.dtype_) if self.binary else y

    def objective(self, idx: torch.Tensor | None = None) -> torch.Tensor:
        """Negative ELBO per training example, on the batch ``idx`` (None: all)."""
        x, y = self.x_train, self.y_train
        if idx is not None:
            x, y = x[idx], y[idx]
        with self.settings():
            self.gp.train()  # drops the cached Cholesky of K_zz: the kernel is about to change
            return -self.elbo(self.gp(x), self._targets(y))

    def _predict(self, x: torch.Tensor) -> torch.Tensor:
        """Log posterior-predictive class probabilities at encoded ``x``, shape (N, classes):
        exact probit marginal for two classes, else the mean softmax over latent samples."""
        f = self.gp(x)
        mean, std = f.mean, f.variance.sqrt()
        if self.binary:
            p1 = torch.special.ndtr(mean / torch.sqrt(1 + std * std)).clamp(1e-12, 1 - 1e-12)
            return torch.stack([torch.log1p(-p1), torch.log(p1)], dim=-1)
        g = torch.Generator(device=mean.device).manual_seed(self.eval_seed)
        probs = torch.zeros_like(mean)
        for _ in range(self.samples):  # one sample at a time: memory N x classes
            eps = torch.randn(mean.shape, generator=g, device=mean.device, dtype=mean.dtype)
            probs += F.softmax(mean + std * eps, dim=-1)
        return torch.log((probs / self.samples).clamp_min(1e-300))

    @torch.no_grad()
    def weight_norm(self) -> float:
        """RKHS norm of the posterior mean function: the whitened variational mean's norm."""
        strategy = self.gp.variational_strategy
        base = getattr(strategy, "base_variational_strategy", strategy)
        return float(base._variational_distribution.variational_mean.double().norm())
