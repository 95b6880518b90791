"""Gaussian processes that grok (Miller et al. 2023), on gpytorch.

Miller et al. show delayed generalisation without a neural net: a GP whose kernel
hyperparameters are fitted by gradient steps on the marginal likelihood first interpolates
the training set and generalises only later. With a tiny initial lengthscale (they use 1e-3,
Adam at lr 0.1) the kernel is nearly the identity, so the posterior mean passes through every
training target but is flat (the prior mean) between them; as the lengthscale grows, test
error collapses. With ARD (one lengthscale per input dimension) on a task with spurious
inputs, the lengthscales of the irrelevant dimensions grow until those dimensions are
switched off - the mechanism to watch in ``gp/lengthscale/<dim>``.

* Regression: an exact GP (constant mean, ScaleKernel over an RBF or Matern kernel with ARD,
  Gaussian noise), one optimizer step = one step on the negative log marginal likelihood per
  training example (full batch: the exact marginal likelihood does not split into batches).
* Classification: a sparse variational GP (Hensman et al. 2015) with inducing points at
  training inputs, trained on the ELBO: Bernoulli (probit) likelihood for two classes, one
  latent function per class with a softmax likelihood otherwise, the kernel shared by all
  classes. Chosen over Dirichlet-likelihood classification (an exact GP per class on
  transformed labels) because its memory is inducing-points x batch, not n x n x classes
  (p=97 at half the table would need ~17 GB), it takes minibatches, and the ELBO is the
  classification likelihood itself rather than a regression surrogate.

Metrics, under the uniform names, are the *posterior predictive's*:
``loss`` is the mean squared error of the predictive mean (regression) or the predictive
negative log-likelihood of the true class (classification: the cross-entropy a network
logs); ``acc`` as for any learner. ``weights/l2_norm`` is the RKHS norm of the posterior mean
function (minus the constant mean), i.e. the L2 norm of the weights of that function in the
kernel's feature space: for the exact GP ``sqrt(a.(y - mu) - noise * |a|^2)`` with
``a = (K + noise I)^-1 (y - mu)``; for the whitened variational GP the norm of the variational
mean (summed over classes). Extras: ``gp/objective`` (the training objective per example on
the whole training set: negative log marginal likelihood or negative ELBO),
``gp/outputscale``, ``gp/noise`` (regression) and ``gp/lengthscale/<dim>`` for up to 64 input
dimensions (else ``gp/lengthscale/{min,median,max}``).

Token inputs are one-hot encoded and concatenated (:mod:`grokspec.learners.encoding`).
``train.optimizer`` drives the hyperparameters; its weight decay would act on gpytorch's raw
(unconstrained) parameters, so the GP specs set it to 0, as Miller et al. train plain Adam.
Numerics: float64 by default, Cholesky always (never CG/Lanczos, so results are exact and
deterministic), jitter ``jitter`` on every Cholesky, noise bounded below by ``min_noise``.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, ClassVar, Literal

import gpytorch
import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from grokspec.datasets.base import Dataset
from grokspec.learners.base import LearnerSpecBase
from grokspec.learners.encoding import encode, vocab_of
from grokspec.spec.base import field_error

if TYPE_CHECKING:
    from grokspec.spec.experiment import Experiment

MAX_LENGTHSCALE_DIMS = 64  # beyond this, log a summary instead of one metric per dimension
PREDICT_ROWS = 1024  # rows per posterior prediction: bounds the cross-covariance's memory


class GPSpec(LearnerSpecBase):
    """Gaussian process (Miller et al. 2023): exact GP regression, or sparse variational GP
    classification. Token inputs are read as concatenated one-hot codes of the tokens."""

    kind: Literal["gp"] = "gp"
    default_runner: ClassVar[str] = "gaussian_process"
    kernel: Literal["rbf", "matern12", "matern32", "matern52"] = Field(
        default="rbf", description="Base kernel inside a ScaleKernel (Matern nu = 1/2, 3/2, 5/2)."
    )
    ard: bool = Field(
        default=True, description="One lengthscale per input dimension (automatic relevance)."
    )
    initial_lengthscale: float = Field(
        default=1.0,
        gt=0.0,
        description="Initial lengthscale of every dimension. Miller et al. 2023 use 1e-3 "
        "(with Adam at lr 0.1) to make a GP grok: it interpolates first and generalises as "
        "the lengthscale grows. Keep it within ~30x of the typical distance between training "
        "inputs: further below, every kernel value underflows to 0 and no gradient moves it.",
    )
    initial_outputscale: float = Field(default=1.0, gt=0.0, description="Initial kernel variance.")
    initial_noise: float = Field(
        default=1e-2,
        gt=0.0,
        description="Regression: initial Gaussian noise variance. Small, so the posterior "
        "mean fits the training targets from the start.",
    )
    min_noise: float = Field(
        default=1e-6, gt=0.0, description="Regression: lower bound on the noise variance."
    )
    inducing_points: int = Field(
        default=512,
        ge=1,
        description="Classification: number of inducing points, placed at a random subset of "
        "the training inputs (all of them when the training set is no larger; the variational "
        "GP is then as expressive as an exact one).",
    )
    learn_inducing: bool = Field(
        default=False, description="Classification: also optimise the inducing locations."
    )
    predictive_samples: int = Field(
        default=256,
        ge=1,
        description="More than two classes: Monte-Carlo samples of the latent functions "
        "averaged by the softmax predictive (two classes use the exact probit predictive).",
    )
    dtype: Literal["float32", "float64"] = Field(
        default="float64", description="Precision of the kernel algebra (float64: stable Cholesky)."
    )
    jitter: float = Field(
        default=1e-6, gt=0.0, le=1e-1, description="Diagonal jitter added before each Cholesky."
    )
    memory_budget_gb: float = Field(
        default=4.0,
        gt=0.0,
        description="A spec whose estimated peak kernel memory exceeds this is rejected at "
        "validation (or, where the dataset's size is only known once built, before training). "
        "Estimate, in bytes of `dtype`: regression 3 n^2 + 1024 n (n training examples: the "
        "kernel matrix, its Cholesky factor and gradient, one 1024-row prediction chunk); "
        "classification 3 L (m^2 + m b) (L latent functions, m inducing points, b = the larger "
        "of the rows per step and the 1024-row prediction chunk).",
    )

    @model_validator(mode="after")
    def _noise_above_floor(self) -> GPSpec:
        if self.initial_noise < self.min_noise:
            raise field_error(
                "initial_noise",
                f"initial_noise={self.initial_noise} is below min_noise={self.min_noise} "
                "(raise initial_noise or lower min_noise)",
            )
        return self

    # ---------------------------------------------------------------- validation

    def memory_bytes(self, task: str, n_train: int, n_classes: int | None, batch: int | str) -> int:
        """Estimated peak kernel memory (see ``memory_budget_gb``)."""
        item = 8 if self.dtype == "float64" else 4
        if task == "regression":
            return item * (3 * n_train * n_train + PREDICT_ROWS * n_train)
        latents = 1 if (n_classes or 2) <= 2 else int(n_classes or 2)
        m = min(self.inducing_points, n_train)
        rows = n_train if batch == "full" else min(int(batch), n_train)
        return item * latents * 3 * (m * m + m * max(rows, PREDICT_ROWS))

    def _memory_problem(
        self, task: str, n_train: int, n_classes: int | None, batch: int | str
    ) -> str | None:
        need = self.memory_bytes(task, n_train, n_classes, batch) / 2**30
        if need <= self.memory_budget_gb:
            return None
        advice = (
            "use fewer training examples (dataset.train_size) or float32"
            if task == "regression"
            else "lower learner.inducing_points, set train.batch_size, or use fewer "
            "training examples"
        )
        return (
            f"the GP needs an estimated {need:.1f} GiB of kernel memory for {n_train} "
            f"training examples, over memory_budget_gb={self.memory_budget_gb}: {advice} "
            "(or raise memory_budget_gb if the machine has the memory)"
        )

    def check_experiment(self, experiment: Experiment) -> None:
        ds, train = experiment.dataset, experiment.train
        if ds.task == "regression" and train.batch_size != "full":
            raise field_error(
                "train.batch_size",
                "GP regression optimises the exact marginal likelihood, which needs the whole "
                "training set at every step: use train.batch_size: full",
            )
        if ds.task == "classification" and train.loss != "cross_entropy":
            raise field_error(
                "train.loss",
                "the GP is trained on its own likelihood (ELBO) and reports the predictive "
                "negative log-likelihood as its loss: use train.loss: cross_entropy",
            )
        pool = ds.pool_size()
        if pool is not None:  # sizes known without building: check memory now
            # Classes are known before building for modular data; otherwise the estimate
            # assumes two and the runner repeats the check on the built dataset.
            n_classes = getattr(ds, "p", None) if ds.kind == "modular" else None
            problem = self._memory_problem(ds.task, ds.n_train_for(pool), n_classes,
                                           train.batch_size)
            if problem:
                raise field_error("learner.memory_budget_gb", problem)

    def check_dataset(self, dataset: Dataset) -> None:
        if dataset.task == "regression" and dataset.y_train.ndim != 1:
            raise ValueError(
                "the GP regresses one target per example; this dataset has "
                f"{tuple(dataset.y_train.shape[1:])} targets per example (use kind: linear or mlp)"
            )
        # Before any run is opened: what cannot fit even one row per step (the runner checks
        # the spec's batch size on top, see check_memory).
        problem = self._memory_problem(dataset.task, dataset.n_train, dataset.n_classes, 1)
        if problem:
            raise ValueError(problem)

    def check_memory(self, dataset: Dataset, batch: int | str) -> None:
        """The memory check on the built dataset (exact sizes; run before training)."""
        problem = self._memory_problem(dataset.task, dataset.n_train, dataset.n_classes, batch)
        if problem:
            raise ValueError(problem)

    def build(self, dataset: Dataset) -> nn.Module:
        self.check_dataset(dataset)
        if dataset.task == "regression":
            return ExactRegressionGP(self, dataset)
        return VariationalClassifierGP(self, dataset)


# -------------------------------------------------------------------- models


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
        """The posterior predictive at raw inputs ``x``, in chunks of PREDICT_ROWS rows."""
        xe = encode(x, self.vocab, self.dtype_)
        with self.settings():
            self.gp.eval()
            return torch.cat([self._predict(xe[i : i + PREDICT_ROWS])
                              for i in range(0, xe.shape[0], PREDICT_ROWS)])

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
