"""The experiment spec: pydantic models validated at the boundary, exported as JSON Schema.

``dataset`` and ``learner`` are discriminated unions on ``kind`` (see
:mod:`grokspec.datasets` and :mod:`grokspec.learners`), so a new family or learner is a
new module, not an edit here.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import Field, model_validator

from grokspec.datasets import DatasetSpec
from grokspec.learners import LearnerSpec
from grokspec.metrics.spec import AnalysisSpec, check_measures
from grokspec.spec.base import StrictModel
from grokspec.spec.train import OptimizerSpec, StopSpec, TrainSpec  # noqa: F401 - re-exported


class TrackingSpec(StrictModel):
    """Where the run is logged."""

    experiment: str = Field(default="grokspec", min_length=1, description="MLflow experiment.")
    uri: str | None = Field(
        default=None,
        description="MLflow tracking URI. Default: $MLFLOW_TRACKING_URI, else a SQLite store "
        "./mlflow.db in the working folder (what a plain `mlflow ui` there opens).",
    )
    run_name: str | None = Field(default=None, description="Run name; default: the spec name.")
    tags: dict[str, str] = Field(default_factory=dict, description="Extra MLflow run tags.")
    checkpoint_every: int | None = Field(
        default=None,
        ge=1,
        description="Save a checkpoint at the first evaluation after every N steps, so "
        "`grokspec run --resume` (or a re-run sweep with --resume) continues a killed run "
        "to the same final metrics. Files go to ./grokspec_out/checkpoints/ (git-ignored) "
        "and are deleted when the run finishes. Default: no checkpoints.",
    )


class Experiment(StrictModel):
    """One concrete experiment: a dataset, a learner and how to train it."""

    name: str = Field(min_length=1, description="Experiment name (also the default run name).")
    description: str = Field(default="", description="Free text; logged as the run description.")
    seed: int = Field(default=0, ge=0, description="Seeds the split, the init and the batches.")
    dataset: DatasetSpec
    learner: LearnerSpec
    train: TrainSpec = Field(default_factory=TrainSpec)
    tracking: TrackingSpec = Field(default_factory=TrackingSpec)
    analysis: AnalysisSpec = Field(
        default_factory=AnalysisSpec,
        description="Grokking events, phase label and progress measures (grokspec.metrics).",
    )
    runner: str | None = Field(
        default=None,
        description="Name of the runner (entry point in `grokspec.runners`); default: the "
        "learner's own.",
    )

    @model_validator(mode="after")
    def _learner_fits_dataset(self) -> Experiment:
        ds, ln = self.dataset, self.learner
        if ds.input_kind not in ln.input_kinds or ds.task not in ln.tasks:
            raise ValueError(
                f"learner kind '{ln.kind}' takes {sorted(ln.input_kinds)} inputs for "
                f"{sorted(ln.tasks)}; dataset kind '{ds.kind}' gives {ds.input_kind} inputs "
                f"for {ds.task} (pick another learner or dataset kind)"
            )
        ln.check_experiment(self)  # learner-specific limits (e.g. the GP's memory estimate)
        return self

    @model_validator(mode="after")
    def _measures_apply(self) -> Experiment:
        check_measures(self.analysis, self.learner, self.dataset)
        return self

    def resolved(self) -> dict[str, Any]:
        """The fully-resolved spec (every default filled in) as plain data."""
        return self.model_dump(mode="json")

    def spec_hash(self) -> str:
        """Identity of what is computed: the resolved spec without the tracking section."""
        data = self.resolved()
        data.pop("tracking", None)
        data.pop("description", None)
        blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists stay values (as they appear in --set)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{path}."))
        else:
            out[path] = value
    return out


def json_schema() -> dict[str, Any]:
    """JSON Schema of a spec file, for editors (yaml-language-server) and the docs."""
    from grokspec.sweep.spec import SweepSpec  # the sweep block is validated by its own model

    schema = Experiment.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "grokspec experiment"
    sweep = SweepSpec.model_json_schema(ref_template="#/$defs/{model}")
    schema.setdefault("$defs", {}).update(sweep.pop("$defs", {}))
    schema["$defs"]["SweepSpec"] = sweep
    schema["properties"]["sweep"] = {"$ref": "#/$defs/SweepSpec"}
    # With sweep.variants each variant may bring its own learner.
    schema["required"] = [r for r in schema.get("required", []) if r != "learner"]
    schema["anyOf"] = [
        {"required": ["learner"]},
        {"required": ["sweep"], "properties": {"sweep": {"required": ["variants"]}}},
    ]
    return schema
