"""The learning phase of one run: comprehension, grokking, memorization or confusion.

The four phase names are Liu et al.'s (2022, "Towards Understanding Grokking: An Effective
Theory of Representation Learning"). Two rules assign them, selected by name with
``analysis.phase_rule`` (the ``grok.phase`` tag records the phase, ``grok.phase_rule`` the
rule that made it):

``liu2022`` (the default): Liu et al.'s rule exactly as their public code applies it
    (github.com/ejmichaud/grokking-squared, commit 0229df9). Its thresholds live here, with
    the rule, and do not follow the spec: see :func:`liu2022_phase`.

``grokspec``: grokspec's own, scale-free rule (a step *ratio* and a minimum number of
    evaluations, at ``train.fit_threshold``): see :func:`phase_label`. It was written so that
    the same rule could label a 2,000-step MLP and a 100,000-step transformer; it is not
    Liu et al.'s, and carries grokspec's name.

Both are pure functions of fit events or of an accuracy history; :func:`phase_of` applies
the rule a spec names to a history.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from grokspec.metrics.events import first_step_at_or_above

Phase = Literal["comprehension", "grokking", "memorization", "confusion"]
PHASES: tuple[Phase, ...] = ("comprehension", "grokking", "memorization", "confusion")

PhaseRule = Literal["liu2022", "grokspec"]
PHASE_RULES: tuple[PhaseRule, ...] = ("liu2022", "grokspec")

#: Liu et al. 2022's thresholds, read from their code (see :func:`liu2022_phase`).
LIU2022_FIT_ACCURACY = 0.9
LIU2022_BUDGET_STEPS = 100_000
LIU2022_DELAY_STEPS = 1_000


def liu2022_phase(
    train_fit_step: int | None,
    test_fit_step: int | None,
    budget: int = LIU2022_BUDGET_STEPS,
    delay: int = LIU2022_DELAY_STEPS,
) -> Phase:
    """Liu et al. 2022's phase of a run from its fit steps at accuracy 0.9.

    Source, github.com/ejmichaud/grokking-squared at 0229df9:

    - ``phase_diagram_plot/phase_diagram.ipynb``, ``train()``: a run "reaches" train (test)
      accuracy at the first step whose accuracy is ``>= 0.9``; a run that never does gets
      the last step index of its budget (``iter_train = epoch``), budget ``epochs = 1e5``
      full-batch steps, accuracy measured after every step.
    - ``phase_diagram_plot/simple_phase_diagram.ipynb``: ``compute_budget = 1e5``,
      ``threshold = 1e3`` ("comprehension -> val-train<threshold; otherwise grokking") and

      * comprehension: both reached before ``budget - 1`` and ``test - train < 1e3``;
      * grokking: both reached before ``budget - 1`` and ``test - train > 1e3``;
      * memorization: train reached, test not (``== budget - 1``);
      * confusion: neither reached;

      a run matching none of the four (a delay of exactly 1e3, or test reached while train
      never is) gets the array's zero, which the palette colours comprehension.

    Their step index is the loop counter (accuracy after ``epoch + 1`` updates); grokspec's
    ``step`` counts updates, so "reached before ``budget - 1``" is ``step < budget`` here
    and the delay is the same in both. ``None`` means never reached within the run. The
    rule reads fit steps at the evaluations grokspec made: with ``eval_every`` > 1 each fit
    step is late by less than ``eval_every`` (Liu et al. evaluated every step).

    Relation to ``train.fit_threshold``: none. This rule always fits at accuracy 0.9 and
    uses absolute step counts (a delay of more than 1,000 optimizer steps is grokking,
    whatever the run's length); ``train.fit_threshold`` sets the ``grok/*`` events and the
    ``grokspec`` rule only.
    """
    train_ok = train_fit_step is not None and train_fit_step < budget
    test_ok = test_fit_step is not None and test_fit_step < budget
    if train_ok and test_ok:
        assert train_fit_step is not None and test_fit_step is not None
        return "grokking" if test_fit_step - train_fit_step > delay else "comprehension"
    if train_ok:
        return "memorization"
    if not test_ok:
        return "confusion"
    return "comprehension"  # test fits, train never does: none of Liu's masks, so label 0


def phase_label(
    train_fit_step: int | None,
    test_fit_step: int | None,
    grokking_min_ratio: float = 3.0,
    grokking_min_evals: int = 4,
    evals_between: int | None = None,
) -> Phase:
    """grokspec's own phase rule (``phase_rule: grokspec``), from fit events at one threshold.

    ``grokking`` needs both ``test_fit / max(train_fit, 1) >= grokking_min_ratio`` and a delay
    spanning at least ``grokking_min_evals`` evaluations (``evals_between``: evaluations after
    the train fit up to and including the test fit; None = not checked); a test fit that
    misses either is ``comprehension``. A ratio instead of Liu et al.'s absolute 10^3 steps
    makes the rule scale-free; counting evaluations makes the minimum the resolution of the
    measurement itself. A run whose test accuracy fits although its train accuracy never does
    (label noise can cause this) generalised without memorising: ``comprehension``.
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


def phase_of(
    rule: PhaseRule,
    steps: Sequence[int],
    train_acc: Sequence[float],
    test_acc: Sequence[float],
    fit_threshold: float,
    phase_spec: Any = None,
) -> tuple[Phase, dict[str, Any]]:
    """The phase of an accuracy history under ``rule``, and what the rule read off it.

    ``fit_threshold`` (``train.fit_threshold``) and ``phase_spec`` (``analysis.phase``, the
    thresholds of the ``grokspec`` rule) are used by the ``grokspec`` rule only; ``liu2022``
    uses its own constants. The detail dict holds the rule, its accuracy threshold and the fit
    steps it used, so a reader can check the label by hand.
    """
    if rule == "liu2022":
        tr = first_step_at_or_above(steps, train_acc, LIU2022_FIT_ACCURACY)
        te = first_step_at_or_above(steps, test_acc, LIU2022_FIT_ACCURACY)
        detail = {"rule": rule, "fit_accuracy": LIU2022_FIT_ACCURACY,
                  "budget_steps": LIU2022_BUDGET_STEPS, "delay_steps": LIU2022_DELAY_STEPS,
                  "train_fit_step": tr, "test_fit_step": te}
        return liu2022_phase(tr, te), detail
    if rule == "grokspec":
        tr = first_step_at_or_above(steps, train_acc, fit_threshold)
        te = first_step_at_or_above(steps, test_acc, fit_threshold)
        ratio = getattr(phase_spec, "grokking_min_ratio", 3.0)
        min_evals = getattr(phase_spec, "grokking_min_evals", 4)
        between = (
            sum(1 for s in steps if tr < s <= te) if tr is not None and te is not None else None
        )
        detail = {"rule": rule, "fit_accuracy": fit_threshold, "grokking_min_ratio": ratio,
                  "grokking_min_evals": min_evals, "train_fit_step": tr, "test_fit_step": te,
                  "evals_between": between}
        return phase_label(tr, te, ratio, min_evals, between), detail
    raise ValueError(f"unknown phase rule {rule!r} (valid: {list(PHASE_RULES)})")
