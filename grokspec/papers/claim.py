"""What a paper's claim is checked with: run records, the pre-registered rule, the verdict.

A claim (one module per paper under :mod:`grokspec.papers`) gets every run of its spec (one
per sweep point) as a :class:`RunRecord` and returns a :class:`Verdict`. Its thresholds are
a plain dict written next to the claim text (:attr:`Claim.thresholds`), fixed before the runs
were read. A threshold changed after a read is an :class:`Amendment`: the report re-decides
the verdict under the old and the new value on the same records and prints both, so a rule
cannot be bent to a result silently.

Records are plain data (spec, metric history at evaluations, summary): they come from MLflow
or from the committed records file (:mod:`grokspec.papers.records`) alike, which is what lets
``grokspec report --from-records`` re-decide every verdict without training.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from grokspec.metrics import names
from grokspec.spec.experiment import Experiment

VerdictLabel = Literal["reproduced", "partly", "not reproduced", "no data", "not run"]
Thresholds = Mapping[str, Any]


class RuleInputError(ValueError):
    """The runs cannot be judged by the rule as registered (too few sweep points for a trend,
    a missing axis): bad input, reported as one line naming the spec file and field."""

    def __init__(self, field_path: str, message: str) -> None:
        super().__init__(f"{field_path}: {message}")
        self.field_path = field_path
        self.message = message


@dataclass
class RunRecord:
    """One run of a paper spec: its point, its metric history at evaluations, its summary."""

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

    def keys(self, prefix: str) -> list[str]:
        """Metric names in the history that start with ``prefix`` (sorted)."""
        return sorted({k for h in self.history for k in h if k.startswith(prefix)})

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
    def last_step(self) -> int:
        """The last evaluated step (the run's end, for censoring)."""
        steps = [int(h["step"]) for h in self.history if "step" in h]
        return max(steps) if steps else int(self.summary.get("final_step", 0) or 0)

    def fit(self, metric: str, threshold: float) -> int | None:
        """First step at which train or test accuracy (``metric``) reaches ``threshold``."""
        return self.first_step(metric, threshold)

    def phase(self, rule: str) -> str:
        """The run's phase under the named phase rule, decided from the history (not read from
        the summary, so a rule change re-labels recorded runs)."""
        from grokspec.papers.phases import phase_of_record

        return phase_of_record(self, rule)


@dataclass
class Verdict:
    """The outcome of a claim check: a label, why, the numbers, and a figure."""

    label: VerdictLabel
    why: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    figure: Any = None  # a matplotlib Figure (imported lazily)


@dataclass(frozen=True)
class Amendment:
    """Thresholds changed after the claim's runs were read: the date, the old values (key ->
    value before the change) and why. The report decides the verdict under the thresholds
    before and after, on the same records."""

    date: str
    old: Mapping[str, Any]
    reason: str


Check = Callable[[list[RunRecord], Thresholds, bool], Verdict]


@dataclass(frozen=True)
class Claim:
    """A paper's headline claim, its pre-registered rule and thresholds, and its controls."""

    paper: str  # spec file stem, e.g. power2022
    citation: str
    claim: str
    rule: str  # the decision rule in words; {key} placeholders are filled from thresholds
    thresholds: Thresholds
    check: Check  # (records, thresholds, figure?) -> Verdict
    full_size: str  # how to run the paper's own size
    #: () -> (negative control records, positive control records): synthetic runs in which
    #: the effect is absent (the rule must say "not reproduced") and present ("reproduced")
    controls: Callable[[], tuple[list[RunRecord], list[RunRecord]]]
    amendments: tuple[Amendment, ...] = ()
    notes: str = ""
    #: (points of the spec as [(axis values, Experiment)], thresholds) -> None; raises
    #: RuleInputError when the spec cannot be judged by the rule (checked before any run)
    precheck: Callable[[list[tuple[dict[str, Any], Experiment]], Thresholds], None] | None = None

    def rule_text(self, thresholds: Thresholds | None = None) -> str:
        return self.rule.format(**(thresholds or self.thresholds))

    def decide(
        self, records: list[RunRecord], thresholds: Thresholds | None = None,
        figure: bool = False,
    ) -> Verdict:
        """The rule on each seed's runs, the seeds combined by :func:`combine_seeds`."""
        th = dict(thresholds or self.thresholds)
        by_seed: dict[int, list[RunRecord]] = {}
        for r in records:
            by_seed.setdefault(r.experiment.seed, []).append(r)
        if len(by_seed) <= 1:
            return self.check(records, th, figure)
        return combine_seeds({s: self.check(rs, th, figure) for s, rs in sorted(by_seed.items())},
                             {s: len(rs) for s, rs in by_seed.items()})

    def amended(self) -> list[tuple[Amendment, dict[str, Any], dict[str, Any]]]:
        """Each amendment (oldest first) with the thresholds in force before and after it."""
        out, after = [], dict(self.thresholds)
        for a in reversed(self.amendments):
            before = {**after, **a.old}
            out.append((a, before, after))
            after = before
        return list(reversed(out))


#: How a claim's seeds combine (registered 2026-12-03, issue 18, before the runs at seeds 1
#: and 2 were read): the rule decides each seed's sweep on its own; a seed whose sweep is
#: incomplete (fewer points than the fullest seed) does not vote; the verdict is the median
#: of the complete seeds' verdicts (reproduced > partly > not reproduced), the lower one of
#: the middle two for an even count.
SEED_RULE = ("Seeds: the rule decides each seed's runs alone; seeds missing points do not "
             "vote; the verdict is the median of the seeds' verdicts (the lower middle one "
             "for an even count).")
_ORDER: tuple[VerdictLabel, ...] = ("not reproduced", "partly", "reproduced")


def combine_seeds(verdicts: Mapping[int, Verdict], points: Mapping[int, int]) -> Verdict:
    """:data:`SEED_RULE`: the median verdict over the complete seeds; rows carry their seed."""
    full = max(points.values())
    voting = [s for s in verdicts if points[s] == full and verdicts[s].label in _ORDER]
    rows = [{"seed": s, **row} for s, v in verdicts.items() for row in v.rows]
    per_seed = "; ".join(
        f"seed {s}: {v.label}" + ("" if s in voting else f" ({points[s]} of {full} points: "
                                  "does not vote)") for s, v in verdicts.items())
    if not voting:
        return Verdict("no data", f"no seed has all {full} points ({per_seed})", rows)
    ranks = sorted(_ORDER.index(verdicts[s].label) for s in voting)
    label = _ORDER[ranks[(len(ranks) - 1) // 2]]
    first = next(s for s in voting if verdicts[s].label == label)
    why = (f"median over {len(voting)} seed(s) [{per_seed}]; seed {first}, which has that "
           f"verdict: {verdicts[first].why}")
    shown = verdicts[voting[0]].figure
    for v in verdicts.values():  # one figure is shown; the other seeds' are let go
        if v.figure is not None and v.figure is not shown:
            import matplotlib.pyplot as plt

            plt.close(v.figure)
    return Verdict(label, why, rows, shown)


def fit_at(th: Thresholds, record: RunRecord) -> float:
    """The one accuracy threshold a claim reads fit steps, delays, table columns and read
    points at (issue 17 item 5): its phase rule's own (Liu et al.'s 0.9 for ``liu2022``,
    ``train.fit_threshold`` for grokspec's rules), so a phase of "grokking" and the delay
    printed beside it are read at the same threshold. ``fit_at: train.fit_threshold`` is the
    rule before 2026-12-03 (kept for the amendments)."""
    if th.get("fit_at", "phase_rule") == "train.fit_threshold":
        return record.experiment.train.fit_threshold
    from grokspec.metrics.phases import LIU2022_FIT_ACCURACY

    return LIU2022_FIT_ACCURACY if th.get("phase_rule") == "liu2022" else (
        record.experiment.train.fit_threshold)


#: The amendment every claim that mixed thresholds carries (issue 17 item 5).
FIT_AT_REASON = (
    "issue 17 item 5: one fit threshold per claim. Fit steps, delays and read points were "
    "read at train.fit_threshold (0.99) while the phase came from Liu et al.'s rule at 0.9, so "
    "a run could be labelled grokking next to 'never fit'; they are now read at the phase "
    "rule's threshold")


def verdict_from(parts: Sequence[tuple[str, bool]]) -> tuple[VerdictLabel, str]:
    """All parts hold: reproduced; some: partly; none: not reproduced. ``why`` lists them."""
    held = [ok for _, ok in parts]
    why = "; ".join(f"{'PASS' if ok else 'FAIL'}: {text}" for text, ok in parts)
    if all(held):
        return "reproduced", why
    return ("partly" if any(held) else "not reproduced"), why


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Spearman rank correlation (average ranks for ties); None with < 2 points or a constant
    side. Not rounded: a boundary is met or missed as computed."""
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
    sx = sum((a - mx) ** 2 for a in rx) ** 0.5
    sy = sum((b - my) ** 2 for b in ry) ** 0.5
    return cov / (sx * sy) if sx and sy else None


@dataclass(frozen=True)
class Trend:
    """A monotone trend test: enough points, rank correlation AND an effect size."""

    n: int
    rho: float | None
    fold: float | None  # y at the high-x end / y at the low-x end (means of the end pairs)
    holds: bool
    text: str


def trend(
    xs: Sequence[float], ys: Sequence[float], direction: Literal["up", "down"],
    min_points: int, min_rho: float, min_fold: float,
) -> Trend:
    """Does ``y`` rise (``up``) or fall (``down``) with ``x``?

    Holds only with ``>= min_points`` points, a Spearman correlation of at least ``min_rho``
    in the stated direction, and an effect size: the mean y of the two highest-x points over
    that of the two lowest-x points (with 2-3 points: the end points) is ``>= min_fold``
    (rising) or ``<= 1/min_fold`` (falling). A rank correlation alone cannot do: with 3
    points, rho >= 0.5 holds for half of all orderings, and 139.0 -> 138.9 is a perfectly
    monotone fall.
    """
    pts = sorted(zip(xs, ys, strict=True))
    n = len(pts)
    rho = spearman([p[0] for p in pts], [p[1] for p in pts]) if n >= 2 else None
    fold = None
    if n >= 4:
        lo = (pts[0][1] + pts[1][1]) / 2
        hi = (pts[-1][1] + pts[-2][1]) / 2
        fold = hi / lo if lo > 0 else None
    elif n >= 2:  # too few points for end pairs: the end points themselves
        fold = pts[-1][1] / pts[0][1] if pts[0][1] > 0 else None
    if direction == "up":
        rho_ok = rho is not None and rho >= min_rho
        fold_ok = min_fold <= 1.0 or (fold is not None and fold >= min_fold)
    else:
        rho_ok = rho is not None and rho <= -min_rho
        fold_ok = min_fold <= 1.0 or (fold is not None and fold <= 1.0 / min_fold)
    holds = n >= min_points and rho_ok and fold_ok
    sign = "+" if direction == "up" else "-"
    text = (f"n={n} (need >= {min_points}), Spearman {_r(rho)} (need {sign}{min_rho:g} or "
            f"beyond), end-to-end fold {_f(fold)} (need {'>=' if direction == 'up' else '<='} "
            f"{min_fold if direction == 'up' else 1.0 / min_fold:g}x)")
    return Trend(n, rho, fold, holds, text)


def require_points(field_path: str, n: int, min_points: int) -> None:
    """A trend over fewer points than the rule needs is bad input, not a verdict."""
    if n < min_points:
        raise RuleInputError(
            field_path, f"{n} point(s); the trend rule needs >= {min_points} (add values)"
        )


def censored(step: int | None, rec: RunRecord) -> float:
    """A fit step, with "never" counted as just beyond the run's last step (a lower bound)."""
    return float(step) if step is not None else float(rec.last_step) + 1


def steps_to(rec: RunRecord, threshold: float, metric: str = names.TEST_ACC) -> str:
    """"1234", or "> N" when the run never got there (censored at its last step)."""
    s = rec.first_step(metric, threshold)
    return str(s) if s is not None else f"> {rec.last_step}"


def _r(v: float | None) -> str:
    return "-" if v is None else f"{v:+.2f}"


def _f(v: float | None) -> str:
    return "-" if v is None else f"{v:.3g}x"


def fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def median(v: Sequence[float]) -> float:
    s = sorted(v)
    if not s:
        return float("nan")
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2
