"""What a paper's claim check works with: the runs of its spec, read back, and small helpers.

A check (one function per paper in :mod:`grokspec.papers.claims`) gets every run of the paper's
spec (one per sweep point) as :class:`RunRecord` and returns a :class:`Verdict`. The verdict
is decided by the check's code, next to the claim's text, never edited by hand.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from matplotlib.figure import Figure

from grokspec.metrics import names
from grokspec.spec.experiment import Experiment

VerdictLabel = Literal["reproduced", "partly", "not reproduced", "no data", "not run"]


@dataclass
class RunRecord:
    """One finished (or failed) run of a paper spec, with its metric history."""

    label: str  # the sweep point label, or the spec name
    variant: str | None
    values: dict[str, Any]  # sweep axis values (dotted path -> value)
    experiment: Experiment
    run_id: str
    status: str
    history: list[dict[str, float]]
    summary: dict[str, Any]
    wall_s: float

    def value(self, key: str) -> Any:
        """A sweep axis value by its last path component (``weight_decay``) or full path."""
        for k, v in self.values.items():
            if k == key or k.split(".")[-1] == key:
                return v
        raise KeyError(key)

    def series(self, metric: str) -> tuple[list[int], list[float]]:
        pts = [(int(h["step"]), float(h[metric])) for h in self.history if metric in h]
        return [s for s, _ in pts], [v for _, v in pts]

    def first_step(self, metric: str, at_least: float) -> int | None:
        """First evaluation step where ``metric`` >= ``at_least`` (None: never)."""
        for s, v in zip(*self.series(metric), strict=True):
            if v >= at_least:
                return s
        return None

    def at(self, metric: str, step: int | None) -> float | None:
        """The metric at the last evaluation at or before ``step``."""
        if step is None:
            return None
        best = None
        for s, v in zip(*self.series(metric), strict=True):
            if s <= step:
                best = v
        return best

    def final(self, metric: str) -> float | None:
        _, vals = self.series(metric)
        return vals[-1] if vals else None

    @property
    def train_fit(self) -> int | None:
        return self.summary.get("train_fit_step")

    @property
    def test_fit(self) -> int | None:
        return self.summary.get("test_fit_step")

    @property
    def phase(self) -> str:
        return str(self.summary.get("phase", "?"))


@dataclass
class Verdict:
    """The outcome of a claim check: a label, why, the numbers, and a figure."""

    label: VerdictLabel
    why: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    figure: Figure | None = None


@dataclass(frozen=True)
class Claim:
    """A paper's headline claim, the rule that decides it, and how to run it at full size."""

    paper: str  # spec file stem, e.g. power2022
    citation: str
    claim: str
    rule: str  # the decision rule in words (the check implements exactly this)
    full_size: str  # the documented --set overrides for the paper's own size
    check: Callable[[list[RunRecord]], Verdict]
    notes: str = ""  # history of the rule or the spec the reader should know (shown as is)


def verdict_from(parts: Sequence[tuple[str, bool]]) -> tuple[VerdictLabel, str]:
    """All parts hold: reproduced; some: partly; none: not reproduced. ``why`` lists them."""
    held = [ok for _, ok in parts]
    why = "; ".join(f"{'PASS' if ok else 'FAIL'}: {text}" for text, ok in parts)
    if all(held):
        return "reproduced", why
    return ("partly" if any(held) else "not reproduced"), why


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Spearman rank correlation (average ranks for ties); None with < 2 points."""
    if len(xs) < 2:
        return None

    def ranks(v: Sequence[float]) -> list[float]:
        order = sorted(range(len(v)), key=lambda i: v[i])
        r = [0.0] * len(v)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and v[order[j + 1]] == v[order[i]]:
                j += 1
            for k in range(i, j + 1):
                r[order[k]] = (i + j) / 2
            i = j + 1
        return r

    rx, ry = ranks(xs), ranks(ys)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    sx = math.sqrt(sum((a - mx) ** 2 for a in rx))
    sy = math.sqrt(sum((b - my) ** 2 for b in ry))
    # Rounded so that a rule's boundary (e.g. <= -0.5) is met by a correlation that is
    # exactly -0.5 in ranks, not missed by float error (-0.49999999999999994).
    return round(cov / (sx * sy), 9) if sx and sy else None


def censored(step: int | None, rec: RunRecord) -> float:
    """A fit step, with "never" counted as beyond the run's last step (right-censored)."""
    return float(step) if step is not None else float(rec.summary.get("final_step", 0) or 0) + 1


def fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def curves(
    records: Sequence[RunRecord],
    metrics: Sequence[str] = (names.TRAIN_ACC, names.TEST_ACC),
    title: str = "",
    label: Callable[[RunRecord], str] = lambda r: r.label,
    logx: bool = True,
    ylabel: str = "accuracy",
) -> Figure:
    """Accuracy (or other) curves of several runs in one small panel per metric."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.2), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        for rec in records:
            xs, ys = rec.series(metric)
            if xs:
                ax.plot([max(x, 1) for x in xs], ys, label=label(rec), lw=1.2)
        if logx:
            ax.set_xscale("log")
        ax.set_title(metric, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0][-1].legend(fontsize=6, loc="best")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
