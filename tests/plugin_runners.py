"""Runners a third party might ship, registered by entry point in tests/test_runner_plugins.py.

They implement the runner interface of :mod:`grokspec.training.runner` (build, loss,
evaluate); the one loop does the rest.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from grokspec.learners.contract import PARAMETERS
from grokspec.metrics import names


class _Majority(nn.Module):
    """Logits that always favour the most frequent training label (plus a bias it learns).

    It declares what the progress measures may read (the learner contract): only its
    gradient-trained parameters, so the default weight-norm measure applies."""

    provides: ClassVar[frozenset[str]] = frozenset({PARAMETERS})

    def __init__(self, label: int, n_classes: int) -> None:
        super().__init__()
        self.register_buffer("logits", torch.nn.functional.one_hot(
            torch.tensor(label), n_classes).float() * 10)
        self.bias = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(x.shape[0], -1) + self.bias


class MajorityRunner:
    """Predicts the most frequent training label: a baseline that does not generalize."""

    features: ClassVar[frozenset[str]] = frozenset()
    used = 0

    def build(self, experiment: Any, dataset: Any) -> nn.Module:
        MajorityRunner.used += 1
        return _Majority(int(torch.mode(dataset.y_train).values), dataset.n_classes)

    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(model(batch.x), batch.y)

    def evaluate(self, model: nn.Module, dataset: Any, train: Any, tensors: dict) -> dict:
        from grokspec.training.evaluation import standard_metrics

        return standard_metrics(model, dataset, train, tensors)


class InterruptedRunner(MajorityRunner):
    """Trains a few steps, then behaves as if the user pressed Ctrl-C."""

    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls > 30:
            raise KeyboardInterrupt
        return super().loss(model, batch)


class OldStyleRunner:
    """A runner written against the old interface (its own loop in ``run``)."""

    def run(self, ctx: Any) -> None:
        ctx.on_eval(0, {names.TRAIN_ACC: 0.0})
