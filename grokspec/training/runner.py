"""Runners: what differs between training regimes, found by entry point.

A runner supplies only what the one loop (:mod:`grokspec.training.loop`) cannot know: how to
build the learner, the loss of one optimisation step, and how to evaluate. Evaluation cadence,
the NaN check, Grokfast, checkpoints, early stopping, progress and logging belong to the loop,
so every runner behaves alike and a feature is written once.

A runner declares the optional training features it honours in ``features``; validation
rejects a spec that uses any other, so no field is silently
ignored. Third parties register a class with this interface in the ``grokspec.runners``
entry-point group (see pyproject.toml); the built-in runners are ``grokspec.runners.*`` (the
top-level ``runners/`` folder). Runner modules keep torch imports inside their methods, so
reading ``features`` at validation stays cheap. The feature table and the entry-point lookup
live in :mod:`grokspec.spec.features`, where validation reads them without reaching up into
training/.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Protocol

from grokspec.spec.features import runner_class

if TYPE_CHECKING:
    import torch
    from torch import nn

    from grokspec.datasets.base import Dataset
    from grokspec.spec.experiment import Experiment
    from grokspec.spec.train import TrainSpec
    from grokspec.training.batches import Batch

class Runner(Protocol):
    """The interface of a runner (see the module docstring)."""

    #: Which of :data:`FEATURES` this runner honours.
    features: ClassVar[frozenset[str]]

    def build(self, experiment: Experiment, dataset: Dataset) -> nn.Module:
        """The learner, freshly initialised (the loop seeds torch before calling this)."""
        ...

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        """The scalar the optimizer minimises on one batch (a pure function of the model's
        parameters when the runner honours ``vectorize``: it then runs under ``vmap``)."""
        ...

    def evaluate(
        self, model: nn.Module, dataset: Dataset, train: TrainSpec,
        tensors: dict[str, torch.Tensor],
    ) -> dict[str, float]:
        """The uniform metrics (:mod:`grokspec.metrics.names`) on the train and test sets."""
        ...


def load_runner(name: str) -> Runner:
    return runner_class(name)()
