"""Synthetic run records for the claims' negative and positive controls.

A rule that cannot fail is no evidence. Every claim module builds two sets of records from
its own spec's points with made-up histories: one in which the paper's effect is absent (the
rule must say "not reproduced") and one in which it is present ("reproduced"). The tests run
both for every claim; the report prints what each control gave.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from grokspec.metrics import names
from grokspec.papers.claim import RunRecord

SPECS = Path(__file__).resolve().parents[2] / "specs" / "papers"

Curve = Callable[[int], float]


def ramp(end: int | None, start: int | None = None, lo: float = 0.05, hi: float = 1.0) -> Curve:
    """lo until ``start``, linear up to hi at ``end`` (then flat); None: flat at lo."""
    def f(step: int) -> float:
        if end is None:
            return lo
        s0 = max(0, end - 200) if start is None else start
        if step >= end:
            return hi
        if step <= s0:
            return lo
        return lo + (hi - lo) * (step - s0) / max(end - s0, 1)
    return f


def const(v: float) -> Curve:
    return lambda step: v


def history(steps: int, every: int, curves: Mapping[str, Curve]) -> list[dict[str, float]]:
    """A metric history evaluated at 0, every, 2*every, ... steps."""
    return [{"step": float(s), **{k: float(c(s)) for k, c in curves.items()}}
            for s in range(0, steps + 1, every)]


def accuracy(train_fit: int | None, test_fit: int | None, test_plateau: float = 0.05,
             **extra: Curve) -> dict[str, Curve]:
    """Train/test accuracy curves that reach 1.0 at the given steps (None: never)."""
    return {names.TRAIN_ACC: ramp(train_fit, lo=0.1),
            names.TEST_ACC: ramp(test_fit, lo=test_plateau), **extra}


def points(paper: str) -> list[tuple[str, str | None, dict[str, Any], Any]]:
    """The (label, variant, axis values, experiment) of every point of the paper's spec
    (``specs/papers/<paper>.yaml`` of the checkout, or of ``$GROKSPEC_PAPER_SPECS``)."""
    import os

    from grokspec.papers.report import targets

    folder = Path(os.environ.get("GROKSPEC_PAPER_SPECS", SPECS))
    return [(t.label, t.variant, t.values, t.experiment)
            for t in targets(folder / f"{paper}.yaml", ())[0]]


def record(label: str, variant: str | None, values: dict[str, Any], experiment: Any,
           hist: list[dict[str, float]]) -> RunRecord:
    return RunRecord(label=label, variant=variant, values=dict(values), experiment=experiment,
                     run_id=f"synthetic-{label}", status="FINISHED", history=hist,
                     summary={"final_step": int(hist[-1]["step"]) if hist else 0}, wall_s=0.0)


def build(paper: str, make: Callable[[str | None, dict[str, Any], Any], dict[str, Curve]],
          steps: int, every: int) -> list[RunRecord]:
    """Records for every point of the paper's spec, with histories from ``make``."""
    return [record(lab, var, vals, exp, history(steps, every, make(var, vals, exp)))
            for lab, var, vals, exp in points(paper)]
