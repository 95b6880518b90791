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

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, model_validator

from grokspec.learners.base import LearnerSpecBase
from grokspec.spec.base import field_error

if TYPE_CHECKING:
    from torch import nn

    from grokspec.datasets.base import Dataset
    from grokspec.spec.experiment import Experiment


PREDICT_ROWS = 1024  # rows per posterior prediction: bounds the cross-covariance's memory


class GPSpec(LearnerSpecBase):
    """Gaussian process (Miller et al. 2023): exact GP regression, or sparse variational GP
    classification. Token inputs are read as concatenated one-hot codes of the tokens."""

    kind: Literal["gp"] = "gp"
    default_runner: ClassVar[str] = "gaussian_process"
    #: rows per posterior prediction (the model predicts in chunks; the estimate counts it)
    predict_rows: ClassVar[int] = PREDICT_ROWS
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
        from grokspec.learners.models.gp import ExactRegressionGP, VariationalClassifierGP

        self.check_dataset(dataset)
        if dataset.task == "regression":
            return ExactRegressionGP(self, dataset)
        return VariationalClassifierGP(self, dataset)


def __getattr__(name: str) -> Any:
    """The torch modules live in :mod:`grokspec.learners.models.gp`; importing one from
    here (``from grokspec.learners.gp import ExactRegressionGP``) still works and imports torch
    only then."""
    if name in _MODELS:
        from grokspec.learners.models import gp as models

        return getattr(models, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_MODELS = frozenset({
    "ExactRegressionGP", "GaussianProcess", "MAX_LENGTHSCALE_DIMS",
    "VariationalClassifierGP", "_ExactModel", "_VariationalModel", "make_kernel"
})
