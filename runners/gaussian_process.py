"""Gaussian-process runner: gradient steps on a GP's marginal likelihood or ELBO (gpytorch).

One step is one optimizer update of the GP's hyperparameters (kernel, mean, noise) and, for
the variational classifier, its variational parameters; the loop around it is the same one
every learner uses (:mod:`grokspec.training.loop`), so Grokfast, checkpoints and early
stopping mean the same here. Evaluation is the standard one: the model's forward returns the
posterior predictive (see :mod:`grokspec.learners.gp` for what loss and weight norm mean for
a GP), and its ``extra_metrics()`` adds ``gp/*``. Seeds of a GP are not vectorized: gpytorch
models do not run under ``vmap``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import torch
    from torch import nn

    from grokspec.training.batches import Batch


class GaussianProcessRunner:
    features: ClassVar[frozenset[str]] = frozenset(
        {"grokfast", "early_stop", "checkpoint", "resume"}
    )

    def build(self, experiment: Any, dataset: Any) -> nn.Module:
        from grokspec.learners.gp import GPSpec

        spec = experiment.learner
        if not isinstance(spec, GPSpec):
            raise TypeError(f"the gaussian_process runner trains kind: gp, not '{spec.kind}'")
        spec.check_memory(dataset, experiment.train.batch_size)
        return spec.build(dataset)

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        return model.objective(batch.idx)  # the ELBO selects its minibatch by index

    def evaluate(self, model: nn.Module, dataset: Any, train: Any,
                 tensors: dict[str, torch.Tensor]) -> dict[str, float]:
        from grokspec.training.evaluation import standard_metrics

        return standard_metrics(model, dataset, train, tensors)
