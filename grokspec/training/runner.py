"""Runners: execution plugins, one per training regime, found by entry point.

A runner is any class with ``run(ctx: RunContext) -> None`` registered in the
``grokspec.runners`` entry-point group (see pyproject.toml). Third parties add their own the
same way. Everything a runner must not re-implement (metric logging, the NaN check, early
stopping, the progress bar) lives in :class:`RunContext`, so every runner behaves alike.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Protocol

import torch

from grokspec.datasets.base import Dataset
from grokspec.metrics import names
from grokspec.spec.experiment import Experiment

GROUP = "grokspec.runners"


class Diverged(RuntimeError):
    """Training produced a non-finite loss."""

    def __init__(self, step: int) -> None:
        self.step = step
        super().__init__(f"diverged at step {step}: loss is not finite")


class Runner(Protocol):
    def run(self, ctx: RunContext) -> None: ...


@dataclass
class RunContext:
    """What a runner gets: the experiment, its dataset, a device and one ``on_eval`` hook."""

    experiment: Experiment
    dataset: Dataset
    device: torch.device
    log: Callable[[dict[str, float], int], None] = lambda metrics, step: None
    progress: Callable[[int, dict[str, float]], None] = lambda step, metrics: None
    history: list[dict[str, float]] = field(default_factory=list)
    artifacts: dict[str, Any] = field(default_factory=dict)
    #: Progress measures run at each evaluation on the model (off the training hot path):
    #: each takes (step, model) and returns extra metrics to log under their own names.
    measures: list[Callable[[int, Any], dict[str, float]]] = field(default_factory=list)
    #: History monitors run after each evaluation is recorded, on the whole metric history
    #: (e.g. the early-warning signal): each returns extra metrics for the current step.
    monitors: list[Callable[[list[dict[str, float]]], dict[str, float]]] = field(
        default_factory=list
    )
    #: Continue from the experiment's last checkpoint, if any (``grokspec run --resume``).
    resume: bool = False
    _held: int = 0

    def check_loss(self, step: int, loss: float) -> None:
        """Raise :class:`Diverged` if a training loss is NaN or infinite."""
        if not math.isfinite(loss):
            raise Diverged(step)

    def on_eval(self, step: int, metrics: dict[str, float], model: Any = None) -> bool:
        """Record one evaluation. Returns True when the run should stop (grokked and held).

        ``model`` (the learner's model, any type) is handed to the progress measures.
        Raises :class:`Diverged` if the training loss is not finite.
        """
        self.check_loss(step, metrics.get(names.TRAIN_LOSS, 0.0))
        if model is not None:
            metrics = dict(metrics)
            for measure in self.measures:
                metrics.update(measure(step, model))
        self.history.append({"step": step, **metrics})
        if self.monitors:
            metrics = dict(metrics)
            for monitor in self.monitors:
                extra = monitor(self.history)
                metrics.update(extra)
                self.history[-1].update(extra)
        self.log(metrics, step)
        self.progress(step, metrics)
        stop = self.experiment.train.stop
        if stop is None or names.TEST_ACC not in metrics:
            return False
        self._held = self._held + 1 if metrics[names.TEST_ACC] >= stop.test_acc else 0
        return self._held >= stop.patience_evals


def available_runners() -> dict[str, Any]:
    """Name -> entry point of every installed runner."""
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def load_runner(name: str) -> Runner:
    eps = available_runners()
    if name not in eps:
        raise LookupError(
            f"no runner named '{name}' in entry-point group '{GROUP}' "
            f"(installed: {', '.join(sorted(eps)) or 'none'}; is grokspec installed with pip?)"
        )
    return eps[name].load()()


def runner_name(experiment: Experiment) -> str:
    return experiment.runner or type(experiment.learner).default_runner
