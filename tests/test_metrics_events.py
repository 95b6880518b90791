"""Grok events, delay ratio, phases and the summary metrics read off a history."""

from __future__ import annotations

import pytest

from grokspec.metrics import names
from grokspec.metrics.events import delay_ratio, events_at_thresholds, grok_events
from grokspec.metrics.phases import phase_label
from grokspec.metrics.spec import AnalysisSpec
from grokspec.metrics.summary import analyse, summary_metrics

STEPS = [0, 100, 200, 300, 400, 500, 600]
TRAIN = [0.0, 0.6, 1.0, 1.0, 1.0, 1.0, 1.0]
TEST = [0.0, 0.0, 0.1, 0.55, 0.96, 0.995, 1.0]


def test_events_and_ratio_at_each_threshold() -> None:
    ev = grok_events(STEPS, TRAIN, TEST, 0.99)
    assert ev == {"train_fit_step": 200, "test_fit_step": 500, "delay": 300, "delay_ratio": 2.5}
    at = events_at_thresholds(STEPS, TRAIN, TEST, [0.5, 0.95])
    assert at[0.5]["train_fit_step"] == 100 and at[0.5]["test_fit_step"] == 300
    assert at[0.95]["test_fit_step"] == 400 and at[0.95]["delay_ratio"] == 2.0


def test_ratio_undefined_without_both_events_and_finite_at_step_zero() -> None:
    assert delay_ratio(None, 5) is None and delay_ratio(5, None) is None
    assert delay_ratio(0, 300) == 300.0  # fitted at initialisation counts as one step
    assert grok_events(STEPS, TRAIN, [0.0] * 7)["delay_ratio"] is None


@pytest.mark.parametrize(
    ("train_fit", "test_fit", "evals", "label"),
    [
        (None, None, None, "confusion"),
        (100, None, None, "memorization"),
        (100, 200, 4, "comprehension"),  # ratio 2 < 3
        (100, 1000, 9, "grokking"),  # ratio 10 over 9 evaluations
        (25, 100, 3, "comprehension"),  # ratio 4 but only 3 evaluations apart
        (5, 55, 10, "grokking"),  # a GP evaluated every 5 steps: short in steps, not in evals
        (None, 300, None, "comprehension"),  # generalises without fitting (label noise)
    ],
)
def test_phase_labels(
    train_fit: int | None, test_fit: int | None, evals: int | None, label: str
) -> None:
    assert phase_label(train_fit, test_fit, 3.0, 4, evals) == label


def test_phase_thresholds_are_spec_fields() -> None:
    assert phase_label(100, 250, 2.0, 4, 6) == "grokking"
    assert phase_label(100, 250, 3.0, 4, 6) == "comprehension"
    assert phase_label(100, 1000, 3.0, 10, 9) == "comprehension"


def test_analyse_and_summary_metric_names() -> None:
    history = [
        {"step": s, names.TRAIN_ACC: a, names.TEST_ACC: b, names.WARNING_SCORE: w}
        for s, a, b, w in zip(STEPS, TRAIN, TEST, [0, 0, 0.5, 1.0, 1.0, 0, 0], strict=True)
    ]
    phase = {"grokking_min_ratio": 2.0, "grokking_min_evals": 3}
    s = analyse(history, 0.99, AnalysisSpec(phase_rule="grokspec", phase=phase))
    assert s["phase"] == "grokking" and s["warning_step"] == 300 and s["warning_lead"] == 200
    m = summary_metrics(s)
    assert m[names.GROK_DELAY_RATIO] == 2.5
    assert m["grok/at_0.5/test_fit_step"] == 300.0
    assert m["grok/at_0.95/delay"] == 200.0
    assert m[names.GROK_STAGES] == len(s["stages"]) >= 1
    assert m[names.GROK_WARNING_LEAD] == 200.0
