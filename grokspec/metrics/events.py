"""Grokking events read off a metric history: when train fit, when test fit, the delay."""

from __future__ import annotations

from collections.abc import Sequence


def first_step_at_or_above(
    steps: Sequence[int], values: Sequence[float], threshold: float
) -> int | None:
    """First evaluation step whose value is >= ``threshold`` (None if never).

    The *first* crossing is what Power et al. read off their curves; a run that dips back
    below afterwards still counts from its first crossing.
    """
    for step, value in zip(steps, values, strict=True):
        if value >= threshold:
            return int(step)
    return None


def delay_ratio(train_fit: int | None, test_fit: int | None) -> float | None:
    """``test_fit / train_fit``: how many times longer generalising took than fitting.

    Scale-free, so runs with different step counts compare (Omnigrok plots delays on a log
    axis for the same reason). A train fit at step 0 (fits at initialisation) counts as 1 step
    so the ratio stays finite. None when either event never happened.
    """
    if train_fit is None or test_fit is None:
        return None
    return test_fit / max(train_fit, 1)


def grok_events(
    steps: Sequence[int],
    train_acc: Sequence[float],
    test_acc: Sequence[float],
    threshold: float = 0.99,
) -> dict[str, int | float | None]:
    """Train-fit step, test-fit step, their difference (the grokking delay) and ratio."""
    train_fit = first_step_at_or_above(steps, train_acc, threshold)
    test_fit = first_step_at_or_above(steps, test_acc, threshold)
    delay = test_fit - train_fit if train_fit is not None and test_fit is not None else None
    return {
        "train_fit_step": train_fit,
        "test_fit_step": test_fit,
        "delay": delay,
        "delay_ratio": delay_ratio(train_fit, test_fit),
    }


def events_at_thresholds(
    steps: Sequence[int],
    train_acc: Sequence[float],
    test_acc: Sequence[float],
    thresholds: Sequence[float],
) -> dict[float, dict[str, int | float | None]]:
    """:func:`grok_events` at each threshold (partial grokking shows at 0.5 before 0.99)."""
    return {t: grok_events(steps, train_acc, test_acc, t) for t in thresholds}
