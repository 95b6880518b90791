"""Settings as data (issue 17 item 3): every point of every paper spec runs the paper's value
of each field its ``paper:`` block names, outside the declared deviations.

The specs are resolved exactly as they run (``extends``, variants, grid, seeds); a field that
a merge default, a variant or a typo changed shows up here as DIFFERS, not in a referee's
reading of a comment. The negative controls show the check can fail.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from grokspec.papers.registry import PAPERS
from grokspec.papers.report import targets
from grokspec.spec.loading import SpecError, load_spec
from grokspec.spec.paper import compare

ROOT = Path(__file__).resolve().parents[1]
PAPER_SPECS = sorted((ROOT / "specs" / "papers").glob("*.yaml")) + sorted(
    (ROOT / "specs" / "papers" / "paper-scale").glob("*.yaml"))


def points(path: Path, overrides: list[str] | None = None) -> list[tuple[tuple[str, ...], Any]]:
    """(names the point is known by, the Experiment) for every point of the spec, as the
    report reads them (grokspec.papers.report.targets)."""
    return [((t.variant or "", t.label), t.experiment) for t in targets(path, overrides or [])[0]]


def differs(path: Path, overrides: list[str] | None = None) -> list[str]:
    out = []
    for names, exp in points(path, overrides):
        assert exp.paper is not None, f"{path.name}: no paper: block"
        for row in compare(exp.paper, exp.resolved(), names):
            if row.status == "DIFFERS":
                out.append(f"{' '.join(names)}: {row.field}: paper {row.paper!r}, run {row.run!r}")
    return out


def test_every_paper_has_a_settings_table() -> None:
    assert {p.stem for p in PAPER_SPECS if p.parent.name == "papers"} == set(PAPERS)


@pytest.mark.parametrize("path", PAPER_SPECS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_point_runs_the_papers_values(path: Path) -> None:
    assert differs(path) == []


@pytest.mark.parametrize("path", PAPER_SPECS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_points_blocks_name_real_points(path: Path) -> None:
    """A ``points:`` key that is no variant or label would check nothing."""
    exp = points(path)[0][1]
    known = {n for names, _ in points(path) for n in names}
    assert set(exp.paper.points) <= known, sorted(set(exp.paper.points) - known)


def test_negative_control_a_set_that_changes_a_paper_field_is_caught() -> None:
    lee = ROOT / "specs" / "papers" / "lee2024.yaml"
    found = differs(lee, ["learner.position_init=scaled"])
    assert found and all("learner.position_init" in f for f in found)
    assert len(found) == len(points(lee))  # every point


def test_negative_control_a_variant_that_drifts_is_caught(tmp_path: Path) -> None:
    """The EMA arm's alpha changed in the variant: only that arm differs."""
    lee = ROOT / "specs" / "papers" / "lee2024.yaml"
    text = lee.read_text().replace("grokfast: {filter: ema, alpha: 0.98, lamb: 2.0}}\n    "
                                   "grokfast_ma", "grokfast: {filter: ema, alpha: 0.9, lamb: "
                                   "2.0}}\n    grokfast_ma")
    drift = tmp_path / "lee2024.yaml"
    drift.write_text(text)
    found = differs(drift)
    assert found and all(f.startswith("grokfast_ema") and "alpha" in f for f in found)


def test_a_misspelt_paper_field_is_rejected_at_its_line(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("name: s\ndataset: {kind: modular, p: 7}\nlearner: {kind: mlp, width: 8}\n"
                    "paper:\n  source: x\n  setting: {learner.widht: 8}\n")
    with pytest.raises(SpecError) as exc:
        load_spec(spec)
    assert "s.yaml:4:1: paper: learner.widht: not a field" in str(exc.value)
