"""The learning phase of one run, after Liu et al. 2022 ("Towards Understanding Grokking").

Liu et al. place every run of a hyperparameter grid in one of four phases by when train and
validation accuracy reach a threshold within a fixed budget:

- ``comprehension``: test accuracy fits soon after (or with) train accuracy;
- ``grokking``: test accuracy fits, but much later than train accuracy;
- ``memorization``: train accuracy fits, test accuracy never does within the budget;
- ``confusion``: train accuracy never fits.

Liu et al. used absolute step counts for their budget (10^3 steps "soon", 10^4 budget).
grokspec uses the scale-free ``delay_ratio = test_fit_step / train_fit_step`` instead, so the
same rule works for a 2,000-step MLP and a 100,000-step transformer, plus a minimum number of
evaluations between the two fits, so that a run that fits at its first evaluation and
generalises two evaluations later is not called grokking. A run whose test accuracy fits
although its train accuracy never does (label noise can cause this) generalised without
memorising: ``comprehension``.
"""

from __future__ import annotations

from typing import Literal

Phase = Literal["comprehension", "grokking", "memorization", "confusion"]
PHASES: tuple[Phase, ...] = ("comprehension", "grokking", "memorization", "confusion")


def phase_label(
    train_fit_step: int | None,
    test_fit_step: int | None,
    grokking_min_ratio: float = 3.0,
    grokking_min_evals: int = 4,
    evals_between: int | None = None,
) -> Phase:
    """Phase of a run from its fit events (at one accuracy threshold).

    ``grokking`` needs both ``test_fit / max(train_fit, 1) >= grokking_min_ratio`` and a delay
    spanning at least ``grokking_min_evals`` evaluations (``evals_between``: evaluations after
    the train fit up to and including the test fit; None = not checked); a test fit that
    misses either is ``comprehension``. Counting evaluations, not steps, makes the minimum
    the resolution of the measurement itself: a GP evaluated every 5 steps that groks 50
    steps after fitting is grokking, an MLP evaluated every 25 steps that fits at its first
    evaluation and generalises three evaluations later is not.
    """
    if test_fit_step is None:
        return "confusion" if train_fit_step is None else "memorization"
    if train_fit_step is None:
        return "comprehension"
    ratio = test_fit_step / max(train_fit_step, 1)
    long_enough = evals_between is None or evals_between >= grokking_min_evals
    if ratio >= grokking_min_ratio and long_enough:
        return "grokking"
    return "comprehension"
