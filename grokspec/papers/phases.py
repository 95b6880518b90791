"""Phase labels of recorded runs, by rule name, for the claims.

The phase a claim reads is decided from the recorded accuracy history with a named rule, not
read from the run's summary: that way a rule change re-labels recorded runs, and an amendment
can show the verdict under the old and the new rule on the same records.

Rules: ``liu2022`` and ``grokspec`` are :func:`grokspec.metrics.phases.phase_of` (the
definitions live there). ``grokspec-min-delay-100`` is grokspec's rule as it stood before
commit 8b65551 (2026-11-26): step ratio >= 3 and a delay of at least 100 steps; it is kept
only so the report can show what that amendment changed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from grokspec.metrics import names
from grokspec.metrics.phases import phase_label, phase_of

if TYPE_CHECKING:
    from grokspec.papers.claim import RunRecord

HISTORICAL = ("grokspec-min-delay-100",)


def phase_rules() -> tuple[str, ...]:
    from grokspec.metrics.phases import PHASE_RULES

    return (*PHASE_RULES, *HISTORICAL)


def phase_of_record(rec: RunRecord, rule: str) -> str:
    """The phase of ``rec`` under ``rule`` (see the module docstring for the rules)."""
    evals = [h for h in rec.history if names.TRAIN_ACC in h and names.TEST_ACC in h]
    steps = [int(h["step"]) for h in evals]
    train = [float(h[names.TRAIN_ACC]) for h in evals]
    test = [float(h[names.TEST_ACC]) for h in evals]
    thr = rec.experiment.train.fit_threshold
    if rule == "grokspec-min-delay-100":
        tr = next((s for s, a in zip(steps, train, strict=True) if a >= thr), None)
        te = next((s for s, a in zip(steps, test, strict=True) if a >= thr), None)
        label = phase_label(tr, te, 3.0, 0, None)
        if label == "grokking" and te is not None and tr is not None and te - tr < 100:
            return "comprehension"
        return label
    if rule not in phase_rules():
        raise ValueError(f"unknown phase rule {rule!r} (valid: {list(phase_rules())})")
    label, _ = phase_of(rule, steps, train, test, thr, rec.experiment.analysis.phase)  # type: ignore[arg-type]
    return label
