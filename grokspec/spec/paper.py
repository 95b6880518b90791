"""A paper's setting as data: the ``paper:`` block of a spec named after a paper.

A spec that says "the Grokfast setting" in a comment can drift from it unseen (a merge default,
a variant, a ``--set``). The ``paper:`` block states the paper's value of each spec field with
its source; :func:`compare` reads the *resolved* spec of every point (after ``extends``,
variants, grid and ``--set``) against it, field by field. The report prints that table (paper
value | run value | same?) instead of prose, and ``tests/test_paper_settings.py`` fails when a
shipped paper spec runs anything but its paper's values outside its declared deviations.

The block is metadata: it is not a param, not part of the spec hash, and never changes
training.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import Field, model_validator

from grokspec.spec.base import StrictModel


class Deviation(StrictModel):
    """Where the run knowingly differs from the paper, and why."""

    field: str | None = Field(
        default=None,
        description="The spec field (dotted) that differs; omit for a difference no field "
        "expresses (then say it in `paper` and `run`).",
    )
    paper: Any = Field(description="The paper's value or practice.")
    run: Any = Field(default=None, description="What grokspec runs instead (default: the "
                     "resolved value of `field`).")
    reason: str = Field(min_length=1, description="Why the run differs.")


class PaperSpec(StrictModel):
    """The paper's setting, checked against every point of the spec."""

    source: str = Field(min_length=1, description="Where the values come from (paper section, "
                        "the authors' code and commit).")
    setting: dict[str, Any] = Field(
        default_factory=dict,
        description="Dotted spec field -> the paper's value, for every point.",
    )
    points: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Sweep variant name (or point label) -> more dotted fields -> the paper's "
        "value at that point (e.g. each Grokfast arm's filter).",
    )
    deviations: list[Deviation] = Field(
        default_factory=list,
        description="Declared differences from the paper, each with its reason.",
    )

    @model_validator(mode="after")
    def _deviations_not_settings(self) -> PaperSpec:
        fields = {d.field for d in self.deviations if d.field}
        both = sorted(fields & set(self.setting))
        if both:
            raise ValueError(f"{', '.join(both)}: listed both as the paper's setting and as a "
                             "deviation (keep one)")
        return self


@dataclass(frozen=True)
class Row:
    """One line of the paper-vs-run table."""

    field: str
    paper: Any
    run: Any
    status: str  # "same", "DIFFERS", "deviation"
    reason: str = ""


_MISSING = object()


def resolve(data: dict[str, Any], dotted: str) -> Any:
    """The value at ``a.b.c`` in the resolved spec; ``_MISSING`` when there is no such field
    (``None`` when a section is unset, e.g. no ``train.grokfast``)."""
    node: Any = data
    for part in dotted.split("."):
        if node is None:
            return None
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _same(paper: Any, run: Any) -> bool:
    if isinstance(paper, (list, tuple)) and isinstance(run, (list, tuple)):
        return len(paper) == len(run) and all(_same(a, b) for a, b in zip(paper, run,
                                                                            strict=True))
    if isinstance(paper, bool) or isinstance(run, bool):
        return paper is run or paper == run and type(paper) is type(run)
    if isinstance(paper, (int, float)) and isinstance(run, (int, float)):
        return float(paper) == float(run)
    return paper == run


def expected(paper: PaperSpec, names: tuple[str, ...]) -> dict[str, Any]:
    """The paper's values for a point known by ``names`` (its variant, its label)."""
    out = dict(paper.setting)
    for key in names:
        out.update(paper.points.get(key, {}))
    return out


def compare(paper: PaperSpec, resolved: dict[str, Any], names: tuple[str, ...] = ()) -> list[Row]:
    """Paper value vs the resolved value of every field the paper block names, then each
    declared deviation."""
    rows = []
    for key, want in expected(paper, names).items():
        got = resolve(resolved, key)
        if got is _MISSING:
            rows.append(Row(key, want, "(no such field)", "DIFFERS"))
            continue
        rows.append(Row(key, want, got, "same" if _same(want, got) else "DIFFERS"))
    for dev in paper.deviations:
        run = dev.run
        if dev.field is not None and run is None:
            got = resolve(resolved, dev.field)
            run = "(no such field)" if got is _MISSING else got
        reason = " ".join(dev.reason.split())
        rows.append(Row(dev.field or "-", dev.paper, run, "deviation", reason))
    return rows


def unknown_fields(paper: PaperSpec, resolved: dict[str, Any]) -> list[str]:
    """Dotted names in ``setting`` and ``deviations`` that are no field of the spec (a typo
    would make the check vacuous). ``points`` entries are checked per point by
    :func:`compare` (a field of one variant's learner need not exist in another's)."""
    keys = [*paper.setting, *(d.field for d in paper.deviations if d.field)]
    return sorted({k for k in keys if resolve(resolved, k) is _MISSING})
