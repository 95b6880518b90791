"""Every shipped spec validates: a single run, or every point of its sweep."""

from __future__ import annotations

from pathlib import Path

import pytest

from grokspec.spec.loading import load_spec
from grokspec.sweep.expand import has_sweep, load_sweep

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted(ROOT.glob("specs/**/*.yaml"))


def test_specs_are_shipped() -> None:
    assert (ROOT / "specs/quickstart.yaml") in SPECS and len(SPECS) >= 20


@pytest.mark.parametrize("path", SPECS, ids=[str(p.relative_to(ROOT)) for p in SPECS])
def test_shipped_spec_validates(path: Path) -> None:
    if has_sweep(path):
        sweep = load_sweep(path)
        assert sweep.points, f"{path}: the sweep has no points"
        for point in sweep.points:
            assert point.experiment.name
    else:
        assert load_spec(path).name
