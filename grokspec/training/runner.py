"""Runners: what differs between training regimes, found by entry point.

A runner supplies only what the one loop (:mod:`grokspec.training.loop`) cannot know: how to
build the learner, the loss of one optimisation step, and how to evaluate. Evaluation cadence,
the NaN check, Grokfast, checkpoints, early stopping, progress and logging belong to the loop,
so every runner behaves alike and a feature is written once.

A runner declares the optional training features it honours in ``features``; validation
rejects a spec that uses any other (see :func:`check_features`), so no field is silently
ignored. Third parties register a class with this interface in the ``grokspec.runners``
entry-point group (see pyproject.toml); the built-in runners are ``grokspec.runners.*`` (the
top-level ``runners/`` folder). Runner modules keep torch imports inside their methods, so
reading ``features`` at validation stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:
    import torch
    from torch import nn

    from grokspec.datasets.base import Dataset
    from grokspec.spec.experiment import Experiment
    from grokspec.spec.train import TrainSpec
    from grokspec.training.batches import Batch

GROUP = "grokspec.runners"

#: Optional features of the loop, by name -> what in a spec (or on the command line) asks for it.
FEATURES: Mapping[str, str] = {
    "grokfast": "train.grokfast",
    "early_stop": "train.stop",
    "checkpoint": "tracking.checkpoint_every",
    "resume": "--resume",
    "vectorize": "sweep.vectorize",
}


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


def used_features(experiment: Experiment) -> dict[str, str]:
    """Feature name -> the spec field that asks for it, for the features this spec uses."""
    used = {}
    if experiment.train.grokfast is not None and experiment.train.grokfast.lamb != 0.0:
        used["grokfast"] = FEATURES["grokfast"]
    if experiment.train.stop is not None:
        used["early_stop"] = FEATURES["early_stop"]
    if experiment.tracking.checkpoint_every is not None:
        used["checkpoint"] = FEATURES["checkpoint"]
    return used


def unsupported(runner_cls: Any, wanted: Mapping[str, str]) -> dict[str, str]:
    """The subset of ``wanted`` (feature -> field) that ``runner_cls`` does not honour."""
    have = getattr(runner_cls, "features", frozenset())
    return {f: field for f, field in wanted.items() if f not in have}


def feature_error(name: str, runner_cls: Any, feature: str) -> str:
    have = sorted(getattr(runner_cls, "features", frozenset()))
    return (
        f"runner '{name}' does not apply {FEATURES[feature]} ({feature}); it honours: "
        f"{', '.join(have) or 'none of the optional features'} "
        "(remove the field or pick another runner/learner)"
    )


def available_runners() -> dict[str, Any]:
    """Name -> entry point of every installed runner."""
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def runner_class(name: str) -> Any:
    """The runner class registered as ``name`` (LookupError naming the installed ones)."""
    eps = available_runners()
    if name not in eps:
        raise LookupError(
            f"no runner named '{name}' in entry-point group '{GROUP}' "
            f"(installed: {', '.join(sorted(eps)) or 'none'}; is grokspec installed with pip?)"
        )
    cls = eps[name].load()
    missing = [m for m in ("build", "loss", "evaluate") if not callable(getattr(cls, m, None))]
    if missing:
        raise LookupError(
            f"runner '{name}' ({cls.__module__}.{cls.__qualname__}) lacks {', '.join(missing)}: "
            "a runner supplies build(experiment, dataset), loss(model, batch) and "
            "evaluate(...), and the one training loop does the rest (docs/architecture.md)"
        )
    return cls


def load_runner(name: str) -> Runner:
    return runner_class(name)()


def runner_name(experiment: Experiment) -> str:
    return experiment.runner or type(experiment.learner).default_runner
