"""Multi-stage generalisation (Fan et al. 2024, "Deep Grokking"): distinct test-accuracy jumps.

Deep MLPs can grok twice: test accuracy jumps, sits on a plateau, then jumps again. A stage
detector must count those jumps and not the evaluation noise around them. The rule used
here, stated exactly so a reader can reproduce a count:

1. ``s`` = test accuracy smoothed by a centred running median over ``smooth`` evaluations
   (removes single-evaluation spikes), ``E`` = running maximum of ``s`` (the best level
   reached so far; a later dip does not undo a jump).
2. At each evaluation step ``t``, ``rise(t) = E(t) - E(t / window)``, where ``E(t / window)``
   is ``E`` at the last evaluation at or before ``t / window`` (the first evaluation when there
   is none). Grokking jumps are fast on a log-step axis, so the comparison window is a
   constant *factor* in steps, not a constant number of steps.
3. Evaluations with ``rise >= min_jump`` are "in a jump"; each maximal run of consecutive
   such evaluations is one stage. A plateau longer than a factor ``window`` in steps between
   two rises therefore separates them; shorter pauses merge them into one stage.
4. A stage is reported with ``step`` = the first evaluation in it at which ``E`` reaches the
   midpoint between its level before the stage (``from_acc``) and its level at the end of
   the stage (``to_acc``), plus the first and last evaluation steps of the stage.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from statistics import median


def running_median(values: Sequence[float], window: int) -> list[float]:
    """Centred running median; the window shrinks at the ends (window 1: unchanged)."""
    half = max(window, 1) // 2
    n = len(values)
    return [median(values[max(0, i - half) : min(n, i + half + 1)]) for i in range(n)]


def detect_stages(
    steps: Sequence[int],
    test_acc: Sequence[float],
    min_jump: float = 0.1,
    window: float = 2.0,
    smooth: int = 3,
) -> list[dict[str, float]]:
    """The distinct jumps of ``test_acc`` (see the module docstring for the exact rule).

    Returns one dict per stage, in order: ``step``, ``start_step``, ``end_step``,
    ``from_acc``, ``to_acc``.
    """
    if len(steps) != len(test_acc):
        raise ValueError("steps and test_acc must have the same length")
    if not steps:
        return []
    s = running_median(list(test_acc), smooth)
    level: list[float] = []
    for v in s:
        level.append(max(v, level[-1]) if level else v)

    def level_before(t: float) -> float:
        i = bisect.bisect_right(steps, t) - 1
        return level[max(i, 0)]

    rising = [level[i] - level_before(steps[i] / window) >= min_jump for i in range(len(steps))]
    stages: list[dict[str, float]] = []
    i = 0
    while i < len(steps):
        if not rising[i]:
            i += 1
            continue
        j = i
        while j + 1 < len(steps) and rising[j + 1]:
            j += 1
        lo, hi = level_before(steps[i] / window), level[j]
        mid = lo + (hi - lo) / 2
        at = next(k for k in range(i, j + 1) if level[k] >= mid)
        stages.append(
            {
                "step": int(steps[at]),
                "start_step": int(steps[i]),
                "end_step": int(steps[j]),
                "from_acc": float(lo),
                "to_acc": float(hi),
            }
        )
        i = j + 1
    return stages
