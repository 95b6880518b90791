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


def grok_events(
    steps: Sequence[int],
    train_acc: Sequence[float],
    test_acc: Sequence[float],
    threshold: float = 0.99,
) -> dict[str, int | None]:
    """Train-fit step, test-fit step and their difference (the grokking delay)."""
    train_fit = first_step_at_or_above(steps, train_acc, threshold)
    test_fit = first_step_at_or_above(steps, test_acc, threshold)
    delay = test_fit - train_fit if train_fit is not None and test_fit is not None else None
    return {"train_fit_step": train_fit, "test_fit_step": test_fit, "delay": delay}
