"""``warning/score`` and ``warning/fired``: a running estimate, from the metric history alone,
that a grok is coming (:mod:`grokspec.metrics.warning`)."""

from __future__ import annotations

from typing import Any

from grokspec.metrics.registry import Context, MeasureDef, register


def build(ctx: Context) -> Any:
    from grokspec.metrics.warning import warning_from_history

    w, threshold = ctx.experiment.analysis.warning, ctx.experiment.train.fit_threshold
    return lambda history: warning_from_history(history, threshold, w.window, w.min_drop)


MEASURE = register(MeasureDef(
    name="early_warning", order=70, build=build, reads="history", neural_only=False,
    doc="from the metric history alone: `warning/score` in [0, 1] and `warning/fired` (0/1), "
    "a running estimate that a grok is coming.",
))
