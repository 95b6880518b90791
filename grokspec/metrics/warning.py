"""An early-warning signal for grokking, from the metric history alone.

Every grokking run seen while building this (one-hot MLPs and transformers on modular
arithmetic) shares one shape: after the training set is fitted, test loss first *rises*
(the memorising solution grows confident on wrong answers), then turns and falls steadily,
hundreds to thousands of steps before test accuracy moves. Weight norm also decays then, but
it decays in memorising runs too, so it is not used. The rule, stated exactly:

- The signal is armed only while train accuracy is at or above the fit threshold and test
  accuracy is below it (train fitted, test not yet: the grokking plateau).
- ``drop(t) = ln max{L(s) : t / window <= s <= t} - ln L(t)``, with ``L`` the test loss at
  evaluation steps: how far (in log) the test loss now sits below its highest value over the
  last factor ``window`` of training. The window is a factor in steps, so the rule is the
  same for 2,000-step and 100,000-step runs.
- ``warning/score = clip(drop / min_drop, 0, 1)`` (0 while not armed) and
  ``warning/fired = 1`` when ``drop >= min_drop``.

A memorising run whose test loss creeps down slowly does not reach ``min_drop`` within one
factor of ``window``; a run heading for a grok does. How well this holds is measured, not
assumed: ``bench/early_warning.py`` (lead times and false alarms, in docs/analytics.md).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence

from grokspec.metrics import names


def warning_score_at(
    i: int,
    steps: Sequence[int],
    train_acc: Sequence[float],
    test_acc: Sequence[float],
    test_loss: Sequence[float],
    threshold: float = 0.99,
    window: float = 2.0,
    min_drop: float = 0.3,
) -> float:
    """The warning score at evaluation ``i`` (see the module docstring); O(window) work."""
    loss = test_loss[i]
    armed = train_acc[i] >= threshold and test_acc[i] < threshold
    if not armed or not (loss > 0 and math.isfinite(loss)):
        return 0.0
    lo = bisect.bisect_left(steps, steps[i] / window, 0, i)
    peak = max(v for v in test_loss[lo : i + 1] if math.isfinite(v))
    drop = math.log(peak) - math.log(loss)
    return min(max(drop / min_drop, 0.0), 1.0)


def warning_scores(
    steps: Sequence[int],
    train_acc: Sequence[float],
    test_acc: Sequence[float],
    test_loss: Sequence[float],
    threshold: float = 0.99,
    window: float = 2.0,
    min_drop: float = 0.3,
) -> list[float]:
    """The warning score at every evaluation (see the module docstring)."""
    return [
        warning_score_at(i, steps, train_acc, test_acc, test_loss, threshold, window, min_drop)
        for i in range(len(steps))
    ]


def warning_from_history(
    history: Sequence[Mapping[str, float]],
    threshold: float = 0.99,
    window: float = 2.0,
    min_drop: float = 0.3,
) -> dict[str, float]:
    """``warning/score`` and ``warning/fired`` at the last evaluation of ``history``.

    Used as a history monitor at every evaluation; evaluations without the four metrics it
    reads (e.g. a runner that logs no test loss) give no warning metrics.
    """
    keys = (names.TRAIN_ACC, names.TEST_ACC, names.TEST_LOSS)
    if not history or not all(k in history[-1] for k in keys):
        return {}
    evals = [h for h in history if all(k in h for k in keys)]
    score = warning_score_at(
        len(evals) - 1,
        [int(h["step"]) for h in evals],
        [h[names.TRAIN_ACC] for h in evals],
        [h[names.TEST_ACC] for h in evals],
        [h[names.TEST_LOSS] for h in evals],
        threshold,
        window,
        min_drop,
    )
    return {names.WARNING_SCORE: score, names.WARNING_FIRED: float(score >= 1.0)}


def first_warning_step(steps: Sequence[int], scores: Sequence[float]) -> int | None:
    """First evaluation step at which the warning fired (score 1)."""
    for s, v in zip(steps, scores, strict=True):
        if v >= 1.0:
            return int(s)
    return None


def evaluate_warning(
    runs: Mapping[str, tuple[int | None, int | None]],
) -> dict[str, float | int | None]:
    """Lead time and false alarms over runs: name -> (first warning step, test fit step).

    A run whose test accuracy never fits (memorisation within its budget) and whose warning
    fired is a false alarm. Lead = test fit step - warning step on runs that grokked.
    """
    leads = [fit - warn for warn, fit in runs.values() if warn is not None and fit is not None]
    grokked = [r for r in runs.values() if r[1] is not None]
    never = [r for r in runs.values() if r[1] is None]
    false = [r for r in never if r[0] is not None]
    missed = [r for r in grokked if r[0] is None]
    return {
        "grokked_runs": len(grokked),
        "warned_before_fit": sum(1 for lead in leads if lead > 0),
        "missed": len(missed),
        "median_lead_steps": sorted(leads)[len(leads) // 2] if leads else None,
        "min_lead_steps": min(leads) if leads else None,
        "non_grokking_runs": len(never),
        "false_alarms": len(false),
    }
