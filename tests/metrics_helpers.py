"""Builders for the analytics tests: the tiny experiment with another learner swapped in."""

from __future__ import annotations

from typing import Any

from grokspec.spec.experiment import Experiment
from grokspec.spec.loading import validate_data
from tests.helpers import TINY_GROK, deep_update

TINY_TRANSFORMER: dict[str, Any] = {
    "kind": "transformer", "d_model": 32, "heads": 4, "d_mlp": 64, "layers": 1
}


def with_learner(
    learner: dict[str, Any], dataset: dict[str, Any] | None = None, **over: Any
) -> Experiment:
    """TINY_GROK with ``learner`` (and ``dataset``, if given) replaced whole, not merged,
    and other nested overrides."""
    data = deep_update(TINY_GROK, over)
    data["learner"] = learner
    if dataset is not None:
        data["dataset"] = dataset
    return validate_data(data)


def measured(measure: Any, model: Any, step: int = 0) -> dict[str, float]:
    """One evaluation of ``measure`` with what it decides at the run's end folded in (as the
    loop does for a run whose last evaluation is this one): the restricted and excluded
    losses of key_frequencies_at: final."""
    out = dict(measure(step, model))
    finish = getattr(measure, "finish", None)
    if finish is not None:
        out.update(finish(model, step).get(step, {}))
    return out
