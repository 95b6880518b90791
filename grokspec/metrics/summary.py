"""Everything read off a finished run's metric history: events, phase, stages, warning lead.

One function, :func:`analyse`, so that ``grokspec run`` (at the end of a run) and
``grokspec compare`` (reading a run back) compute the same numbers the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from grokspec.metrics import names
from grokspec.metrics.events import events_at_thresholds, grok_events
from grokspec.metrics.phases import phase_of
from grokspec.metrics.stages import detect_stages
from grokspec.metrics.warning import first_warning_step


def analyse(
    history: Sequence[Mapping[str, float]],
    threshold: float,
    analysis: Any,
) -> dict[str, Any]:
    """Grok events (main and extra thresholds), phase, stages and early-warning lead.

    ``analysis`` is the spec's :class:`grokspec.metrics.spec.AnalysisSpec`. The phase is
    assigned by the rule ``analysis.phase_rule`` names (:func:`grokspec.metrics.phases.phase_of`);
    ``summary["phase_rule"]`` records that rule and ``summary["phase_detail"]`` the fit steps and
    thresholds it read (Liu et al.'s rule fits at 0.9, not at ``threshold``).
    """
    evals = [h for h in history if names.TRAIN_ACC in h and names.TEST_ACC in h]
    steps = [int(h["step"]) for h in evals]
    train = [h[names.TRAIN_ACC] for h in evals]
    test = [h[names.TEST_ACC] for h in evals]
    ev = grok_events(steps, train, test, threshold)
    at = events_at_thresholds(steps, train, test, analysis.extra_thresholds)
    rule = getattr(analysis, "phase_rule", "liu2022")
    phase, phase_detail = phase_of(rule, steps, train, test, threshold, analysis.phase)
    st = analysis.stages
    stages = detect_stages(steps, test, st.min_jump, st.window, st.smooth)
    warned = [h for h in history if names.WARNING_SCORE in h]
    warning_step = first_warning_step(
        [int(h["step"]) for h in warned], [h[names.WARNING_SCORE] for h in warned]
    )
    fit = ev["test_fit_step"]
    lead = fit - warning_step if fit is not None and warning_step is not None else None
    return {
        **ev,
        "phase": phase,
        "phase_rule": rule,
        "phase_detail": phase_detail,
        "at": {f"{t:g}": e for t, e in at.items()},
        "stages": stages,
        "warning_step": warning_step,
        "warning_lead": lead,
    }


def phase_fit(summary: Mapping[str, Any]) -> tuple[float | None, int | None, int | None]:
    """(accuracy threshold, train fit step, test fit step) as the run's phase rule read them:
    what a summary prints next to the phase, so the label and the steps agree (Liu's rule
    fits at 0.9 while ``train.fit_threshold`` is often 0.99)."""
    detail = summary.get("phase_detail") or {}
    return detail.get("fit_accuracy"), detail.get("train_fit_step"), detail.get("test_fit_step")


def summary_metrics(summary: Mapping[str, Any]) -> dict[str, float]:
    """The ``grok/*`` summary metrics of an :func:`analyse` result (events that happened)."""
    out: dict[str, Any] = {
        names.GROK_TRAIN_FIT_STEP: summary.get("train_fit_step"),
        names.GROK_TEST_FIT_STEP: summary.get("test_fit_step"),
        names.GROK_DELAY: summary.get("delay"),
        names.GROK_DELAY_RATIO: summary.get("delay_ratio"),
        names.GROK_STAGES: len(summary.get("stages", [])),
        names.GROK_WARNING_STEP: summary.get("warning_step"),
        names.GROK_WARNING_LEAD: summary.get("warning_lead"),
    }
    for t, ev in summary.get("at", {}).items():
        for key, value in ev.items():
            out[names.grok_at(float(t), key)] = value
    return {k: float(v) for k, v in out.items() if v is not None}
