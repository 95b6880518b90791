"""The early-warning signal on constructed histories with a known firing step."""

from __future__ import annotations

import math

import pytest

from grokspec.metrics import names
from grokspec.metrics.warning import (
    evaluate_warning,
    first_warning_step,
    warning_from_history,
    warning_scores,
)

STEPS = list(range(0, 3001, 100))


def history(test_loss, test_acc=None, train_acc=None):  # noqa: ANN001, ANN201
    test_acc = test_acc or [0.0] * len(STEPS)
    train_acc = train_acc or [0.0] + [1.0] * (len(STEPS) - 1)
    return STEPS, train_acc, test_acc, test_loss


def grokking_loss(t: int) -> float:
    """Rises to 8 at the fit, flat to step 200, then falls by e per 500 steps."""
    return 4.0 if t == 0 else 8.0 * math.exp(-max(t - 200, 0) / 500)


def test_fires_once_the_loss_has_fallen_min_drop_below_its_recent_peak() -> None:
    scores = warning_scores(*history([grokking_loss(t) for t in STEPS]), min_drop=0.3)
    # drop(300) = 0.2 (score 2/3), drop(400) = 0.4 >= 0.3: fires at 400.
    assert scores[3] == pytest.approx(0.2 / 0.3)
    assert first_warning_step(STEPS, scores) == 400


def test_rising_or_slowly_creeping_test_loss_never_fires() -> None:
    rising = [4.0 + t / 100 for t in STEPS]
    assert max(warning_scores(*history(rising))) == 0.0
    # Falls 10% per doubling of steps: ln(1/0.9) = 0.105 < 0.3 per window factor 2.
    creeping = [10.0 * (max(t, 100) / 100) ** math.log2(0.9) for t in STEPS]
    assert first_warning_step(STEPS, warning_scores(*history(creeping))) is None


def test_armed_only_between_train_fit_and_test_fit() -> None:
    loss = [grokking_loss(t) for t in STEPS]
    unfitted = warning_scores(*history(loss, train_acc=[0.5] * len(STEPS)))
    assert max(unfitted) == 0.0
    grokked = warning_scores(*history(loss, test_acc=[1.0] * len(STEPS)))
    assert max(grokked) == 0.0


def test_monitor_reads_the_last_evaluation() -> None:
    steps, train, test, loss = history([grokking_loss(t) for t in STEPS])
    h = [
        {"step": s, names.TRAIN_ACC: a, names.TEST_ACC: b, names.TEST_LOSS: c}
        for s, a, b, c in zip(steps, train, test, loss, strict=True)
    ]
    assert warning_from_history(h[:4]) == {
        names.WARNING_SCORE: pytest.approx(0.2 / 0.3),
        names.WARNING_FIRED: 0.0,
    }
    assert warning_from_history(h[:5])[names.WARNING_FIRED] == 1.0
    assert warning_from_history([*h[:5], {"step": 501, names.TRAIN_LOSS: 0.1}]) == {}


def test_evaluation_counts_leads_misses_and_false_alarms() -> None:
    result = evaluate_warning(
        {"a": (400, 1500), "b": (None, 900), "c": (300, None), "d": (None, None), "e": (2000, 1800)}
    )
    assert result["grokked_runs"] == 3 and result["missed"] == 1
    assert result["warned_before_fit"] == 1  # e fired after its fit
    assert result["non_grokking_runs"] == 2 and result["false_alarms"] == 1
    assert result["median_lead_steps"] == 1100 and result["min_lead_steps"] == -200
