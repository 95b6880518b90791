"""The learning phase of one run, after Liu et al. 2022 ("Towards Understanding Grokking").

Liu et al. place every run of a hyperparameter grid in one of four phases by when train and
validation accuracy reach a threshold within a fixed budget:

- ``comprehension``: test accuracy fits soon after (or with) train accuracy;
- ``grokking``: test accuracy fits, but much later than train accuracy;
- ``memorization``: train accuracy fits, test accuracy never does within the budget;
- ``confusion``: train accuracy never fits.

Liu et al. used absolute step counts for their budget (10^3 steps "soon", 10^4 budget).
grokspec uses the scale-free ``delay_ratio = test_fit_step / train_fit_step`` instead, so the
same rule works for a 2,000-step MLP and a 100,000-step transformer, plus an absolute minimum
delay so that a run that fits at its first evaluation and generalises two evaluations later
is not called grokking. A run whose test accuracy fits although its train accuracy never does
(label noise can cause this) generalised without memorising: ``comprehension``.
"""

from __future__ import annotations

from typing import Literal

Phase = Literal["comprehension", "grokking", "memorization", "confusion"]
PHASES: tuple[Phase, ...] = ("comprehension", "grokking", "memorization", "confusion")


def phase_label(
    train_fit_step: int | None,
    test_fit_step: int | None,
    grokking_min_ratio: float = 3.0,
    grokking_min_delay: int = 100,
) -> Phase:
    """Phase of a run from its fit events (at one accuracy threshold).

    ``grokking`` needs both ``test_fit / max(train_fit, 1) >= grokking_min_ratio`` and
    ``test_fit - train_fit >= grokking_min_delay``; a test fit that misses either is
    ``comprehension``.
    """
    if test_fit_step is None:
        return "confusion" if train_fit_step is None else "memorization"
    if train_fit_step is None:
        return "comprehension"
    ratio = test_fit_step / max(train_fit_step, 1)
    delay = test_fit_step - train_fit_step
    if ratio >= grokking_min_ratio and delay >= grokking_min_delay:
        return "grokking"
    return "comprehension"
