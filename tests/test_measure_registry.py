"""The progress-measure registry (issue 22): one object per measure, read by validation and
by the run alike; nothing dispatches on a measure's name."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest

from grokspec.metrics import measures as measures_mod
from grokspec.metrics import registry
from grokspec.metrics.registry import MeasureDef
from grokspec.metrics.spec import AnalysisSpec, Measure, resolve_measures
from grokspec.spec.loading import validate_data
from tests.helpers import TINY_GROK, experiment

PROGRESS = Path(registry.__file__).parent / "progress"


def test_every_module_of_progress_declares_one_measure_and_the_spec_lists_them_all() -> None:
    defs = registry.measures()
    modules = sorted(p.stem for p in PROGRESS.glob("*.py") if p.stem != "__init__")
    assert sorted(defs) == modules  # one file, one measure, named alike
    assert list(get_args(Measure)) == list(defs)  # analysis.metrics accepts exactly these
    schema = AnalysisSpec.model_json_schema()
    doc = schema["properties"]["metrics"]["description"]
    assert all(d.doc in doc for d in defs.values())
    assert len({d.order for d in defs.values()}) == len(defs)


def test_a_second_measure_of_the_same_name_is_refused() -> None:
    twin = MeasureDef(name="weight_norm", doc="x", build=lambda ctx: None, order=99)
    with pytest.raises(ValueError, match="two progress measures are named 'weight_norm'"):
        registry.register(twin)


def test_the_run_builds_what_the_definitions_say(monkeypatch: pytest.MonkeyPatch) -> None:
    """build_measures asks each chosen definition to build (a spy here), schedules the
    model measures at their declared interval and hands history monitors over as they are."""
    built: list[str] = []
    defs = registry.measures()

    def spy(name: str):  # noqa: ANN202
        def build(ctx: registry.Context):  # noqa: ANN202
            built.append(name)
            return lambda *a: {}
        return build

    patched = {n: MeasureDef(**{**d.__dict__, "build": spy(n)}) for n, d in defs.items()}
    monkeypatch.setattr(measures_mod, "measures", lambda: patched)
    exp = experiment()  # the MLP on modular data: its default measures
    chosen = resolve_measures(exp.analysis, exp.learner, exp.dataset)
    scheduled, monitors = measures_mod.build_measures(exp, exp.dataset.build(0), "cpu")
    assert built == chosen
    assert len(monitors) == sum(defs[n].reads == "history" for n in chosen) == 1
    assert [s.min_steps for s in scheduled] == [
        defs[n].interval for n in chosen if defs[n].reads == "model"]


@pytest.mark.parametrize("kind, expected", [
    ("mlp", ["weight_norm", "fourier", "feature_rank", "param_movement", "ntk",
             "early_warning"]),
    ("transformer", ["weight_norm", "fourier", "feature_rank", "param_movement",
                     "early_warning"]),
    ("moe_transformer", ["weight_norm", "fourier", "feature_rank", "param_movement",
                         "pathways", "early_warning"]),
])
def test_learners_get_the_same_default_measures_as_before_the_registry(
    kind: str, expected: list[str],
) -> None:
    exp = (experiment() if kind == "mlp" else
           validate_data({**TINY_GROK, "learner": {"kind": kind}}))
    assert resolve_measures(exp.analysis, exp.learner, exp.dataset) == expected
