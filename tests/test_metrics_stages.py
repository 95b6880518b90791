"""Multi-stage detection on constructed test-accuracy curves with known jumps."""

from __future__ import annotations

import math

from grokspec.metrics.stages import detect_stages, running_median


def sigmoid_curve(steps: list[int], jumps: list[tuple[int, float, float]]) -> list[float]:
    """Sum of logistic rises: (centre step, height, width in steps)."""
    return [
        0.01 + sum(h / (1 + math.exp(-(s - c) / w)) for c, h, w in jumps) for s in steps
    ]


STEPS = list(range(0, 40_001, 100))


def test_one_grokking_jump_is_one_stage_at_its_midpoint() -> None:
    acc = sigmoid_curve(STEPS, [(3000, 0.98, 150)])
    stages = detect_stages(STEPS, acc)
    assert len(stages) == 1
    assert abs(stages[0]["step"] - 3000) <= 100
    assert stages[0]["from_acc"] < 0.05 and stages[0]["to_acc"] > 0.98


def test_two_jumps_separated_by_a_plateau_are_two_stages() -> None:
    acc = sigmoid_curve(STEPS, [(2000, 0.4, 100), (20_000, 0.55, 500)])
    stages = detect_stages(STEPS, acc)
    assert [round(s["step"], -3) for s in stages] == [2000, 20_000]
    assert stages[1]["from_acc"] > 0.35


def test_noise_spikes_and_flat_curves_are_no_stage() -> None:
    acc = [0.02] * len(STEPS)
    for i in range(5, len(acc), 37):
        acc[i] = 0.5  # single-evaluation spikes: removed by the running median
    assert detect_stages(STEPS, acc) == []
    assert detect_stages(STEPS, [0.3] * len(STEPS)) == []
    assert detect_stages([], []) == []


def test_rise_below_min_jump_is_ignored_and_min_jump_is_configurable() -> None:
    acc = sigmoid_curve(STEPS, [(3000, 0.08, 100)])
    assert detect_stages(STEPS, acc) == []
    assert len(detect_stages(STEPS, acc, min_jump=0.05)) == 1


def test_close_rises_merge_within_the_window_factor() -> None:
    acc = sigmoid_curve(STEPS, [(3000, 0.4, 50), (4000, 0.5, 50)])
    assert len(detect_stages(STEPS, acc, window=2.0)) == 1
    assert len(detect_stages(STEPS, acc, window=1.2)) == 2


def test_running_median() -> None:
    assert running_median([0, 9, 0, 0, 5, 5], 3) == [4.5, 0, 0, 0, 5, 5]
