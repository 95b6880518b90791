"""Gradient runner: a torch optimizer over a torch model (transformer, MLP, linear, ...).

It supplies what the one loop (:mod:`grokspec.training.loop`) cannot know: build the model
from the spec, the loss of one batch, and the standard evaluation. Everything else (the
optimizer step, Grokfast, the NaN check, checkpoints, early stopping, vectorized seeds) is the
loop's. Torch is imported inside the methods so that reading ``features`` at validation is
cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import torch
    from torch import nn

    from grokspec.training.batches import Batch


class GradientRunner:
    features: ClassVar[frozenset[str]] = frozenset(
        {"grokfast", "early_stop", "checkpoint", "resume", "vectorize",
         "train_metrics_from_batches"}
    )

    def build(self, experiment: Any, dataset: Any) -> nn.Module:
        return experiment.learner.build(dataset)

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        from grokspec.training.evaluation import loss_fn

        loss = loss_fn(model(batch.x), batch.y, batch.dataset, batch.train)
        from grokspec.learners.contract import penalty_term

        # A model's own extra loss term, declared through the learner contract and computed
        # after its forward pass: the Bayesian net's KL (ELBO), the MoE's load balancing.
        penalty = penalty_term(model)
        return loss if penalty is None else loss + penalty

    def evaluate(self, model: nn.Module, dataset: Any, train: Any,
                 tensors: dict[str, torch.Tensor]) -> dict[str, float]:
        from grokspec.training.evaluation import standard_metrics

        return standard_metrics(model, dataset, train, tensors)
