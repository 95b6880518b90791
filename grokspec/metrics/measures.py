"""Progress measures wired to a run: built from the spec, called at each evaluation.

:func:`build_measures` turns ``analysis.metrics`` into callables ``(step, model) -> metrics``
(the loop's ``Member.measures``) and history monitors (``Member.monitors``), each made by its
registered definition (:mod:`grokspec.metrics.registry`, one module per measure in
:mod:`grokspec.metrics.progress`), and schedules them (``analysis.measure_every``,
``analysis.intervals``). Measures read a model *only* through the learner contract
(:mod:`grokspec.learners.contract`); a model that does not provide what a measure reads
raises :class:`ContractError` naming it; spec learners are checked at validation already
(:func:`grokspec.metrics.spec.check_measures`).

Activations come from the evaluation's own forward pass where the loop wraps its evaluation
in :func:`capturing` (:mod:`grokspec.metrics.capture`), else from one pass of the measure's.

Measures run in eval mode under ``torch.no_grad`` (the NTK needs gradients and takes them
functionally), never touch the global RNG, and restore the model's train/eval mode, so a run
with measures trains exactly as one without.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from grokspec.datasets.base import Dataset
from grokspec.learners.contract import ContractError
from grokspec.metrics.capture import EvalCapture
from grokspec.metrics.registry import Context, measures
from grokspec.metrics.spec import resolve_measures

Measure = Callable[[int, Any], dict[str, float]]
Monitor = Callable[[list[dict[str, float]]], dict[str, float]]

__all__ = ["ContractError", "build_measures", "capturing"]


# -------------------------------------------------------------------------------- builder


class MeasureList(list):
    """The measures of one run (a plain list of callables), with the :class:`EvalCapture`
    they share: the loop records the evaluation through it (:func:`capturing`)."""

    def __init__(self, measures: list[Measure], capture: EvalCapture) -> None:
        super().__init__(measures)
        self.capture = capture


@contextlib.contextmanager
def capturing(model: Any, measures: list[Measure]) -> Iterator[None]:
    """Around the loop's evaluation of ``model``: record what ``measures`` will read (the
    outputs, the probe points' activations) from that forward pass, so they need no pass of
    their own. A no-op for measures that read nothing, or a model that is not a module."""
    capture = measures.capture if isinstance(measures, MeasureList) else None
    if capture is None or not capture.active or not isinstance(model, nn.Module):
        yield
        return
    with capture.recording(model):
        yield


class Scheduled:
    """A measure run at every ``every``-th evaluation (``analysis.measure_every``), and only
    once ``min_steps`` training steps have passed since it last ran (``analysis.intervals``);
    the first evaluation always runs it. Deterministic: depends on the evaluation steps only.
    Passes on the measure's end-of-run step (``finish``) and its checkpointed state."""

    def __init__(self, measure: Measure, every: int, min_steps: int) -> None:
        self.measure, self.every, self.min_steps = measure, max(every, 1), min_steps
        self.evals = 0  # evaluations seen
        self.last: int | None = None  # the step it last ran at

    def __call__(self, step: int, model: Any) -> dict[str, float]:
        i = self.evals
        self.evals += 1
        if i % self.every or (self.last is not None and step - self.last < self.min_steps):
            return {}
        self.last = step
        return self.measure(step, model)

    def finish(self, model: Any, step: int) -> dict[int, dict[str, float]]:
        """Metrics the measure decides only once the run has ended, {step: metrics}."""
        fin = getattr(self.measure, "finish", None)
        return fin(model, step) if fin is not None else {}

    def state_dict(self) -> dict[str, Any]:
        own = getattr(self.measure, "state_dict", None)
        return {"evals": self.evals, "last": self.last,
                "measure": own() if callable(own) else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.evals, self.last = int(state["evals"]), state["last"]
        if state.get("measure") is not None:
            self.measure.load_state_dict(state["measure"])  # type: ignore[attr-defined]


def build_measures(
    experiment: Any, dataset: Dataset, device: torch.device
) -> tuple[list[Measure], list[Monitor]]:
    """The experiment's progress measures (model -> metrics) and history monitors."""
    analysis = experiment.analysis
    capture = EvalCapture()
    ctx = Context(experiment, dataset, device, capture)
    defs = measures()
    scheduled: list[Measure] = []
    monitors: list[Monitor] = []
    for name in resolve_measures(analysis, experiment.learner, experiment.dataset):
        defn = defs[name]
        built = defn.build(ctx)
        if defn.reads == "history":
            monitors.append(built)
        else:
            scheduled.append(Scheduled(built, analysis.measure_every, analysis.interval(name)))
    return MeasureList(scheduled, capture), monitors
