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
from grokspec.spec.base import StrictModel, field_error
from grokspec.spec.paper import PaperSpec
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

    @model_validator(mode="after")
    def _mlflow_accepts(self) -> TrackingSpec:
        """MLflow checks tag keys only once the run exists: check them (and the URI) here, so
        a key it refuses never leaves a half-logged run (grokspec.spec.mlflow_rules)."""
        from grokspec.spec.mlflow_rules import tag_key_problem, tag_value_problem, uri_problem

        if self.uri is not None and (problem := uri_problem(self.uri)):
            raise field_error("uri", problem)
        for key, value in self.tags.items():
            if problem := tag_key_problem(key) or tag_value_problem(key, value):
                raise field_error("tags", problem)
        return self


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
    paper: PaperSpec | None = Field(
        default=None,
        description="A paper spec's setting as data (grokspec.spec.paper): the paper's value "
        "of each field, per point, and the declared deviations. Metadata: never trained on.",
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
    def _optimizer_groups_exist(self) -> Experiment:
        """``train.optimizer.groups`` may only name groups this learner declares."""
        have = self.learner.parameter_groups()
        for name in self.train.optimizer.groups:
            if name not in have:
                valid = (", ".join(f"{k} ({v})" for k, v in have.items())
                         or "none: this learner has one group, set lr/weight_decay above")
                raise field_error(f"train.optimizer.groups.{name}",
                                  f"learner kind '{self.learner.kind}' has no parameter group "
                                  f"'{name}' (valid: {valid})")
        return self

    @model_validator(mode="after")
    def _runner_honours_features(self) -> Experiment:
        """Every optional training feature the spec uses must be applied by its runner (the
        runner declares which it honours): a field is applied or rejected, never ignored."""
        from grokspec.spec.features import (
            feature_error,
            runner_class,
            runner_name,
            unsupported,
            used_features,
        )

        name = runner_name(self)
        try:
            cls = runner_class(name)
        except LookupError as exc:
            raise field_error("runner" if self.runner else "learner.kind", str(exc)) from None
        for feature, path in unsupported(cls, used_features(self)).items():
            raise field_error(path, feature_error(name, cls, feature))
        return self

    @model_validator(mode="after")
    def _train_metrics_apply(self) -> Experiment:
        """Per-subset train metrics (sparse subclasses, corrupted labels) are taken per
        training example: batches would silently drop them."""
        ds = self.dataset
        if self.train.train_metrics == "batches" and (
                getattr(ds, "kind", "") == "subclass" or getattr(ds, "label_noise", 0.0)):
            raise field_error("train.train_metrics", "batches cannot give the per-subset train "
                              "metrics this dataset has (train/acc_subclass/*, accuracy on "
                              "corrupted labels): use train_metrics: full")
        return self

    @model_validator(mode="after")
    def _fits_in_memory(self) -> Experiment:
        """Sizes no machine here can hold, an empty split, a batch larger than the data:
        rejected now with the estimate and the limit (grokspec.spec.limits)."""
        from grokspec.spec.limits import check_limits

        check_limits(self)
        return self

    @model_validator(mode="after")
    def _paper_names_fields(self) -> Experiment:
        """A name in ``paper:`` that is no field would make its check vacuous."""
        if self.paper is not None:
            from grokspec.spec.paper import unknown_fields

            bad = unknown_fields(self.paper, self.resolved())
            if bad:
                raise field_error("paper", f"{', '.join(bad)}: not a field of this spec (use "
                                  "dotted names of the resolved spec, e.g. train.optimizer.lr)")
        return self

    @model_validator(mode="after")
    def _measures_apply(self) -> Experiment:
        check_measures(self.analysis, self.learner, self.dataset)
        return self

    def resolved(self) -> dict[str, Any]:
        """The fully-resolved spec (every default filled in) as plain data."""
        return self.model_dump(mode="json")

    def spec_hash(self) -> str:
        """Identity of what is trained: the resolved spec without ``tracking``, ``description``,
        ``analysis`` and ``paper`` (metadata).

        ``analysis:`` (progress measures, phase rule, thresholds of the fit events) only reads
        the model; it never changes the training trajectory. Leaving it out means a run can be
        found again, and re-decided from its recorded history, after a measure or a phase rule
        changes (``grokspec report --from-records``). Checkpoints and sweep resumption key on
        this hash too: a run resumed with other measures continues the same trajectory.
        """
        data = self.resolved()
        data.pop("tracking", None)
        data.pop("description", None)
        data.pop("analysis", None)
        data.pop("paper", None)
        # A field added after runs were recorded, at its default (which trains as before),
        # must not change their identity: the records, checkpoints and resumed sweeps of
        # those runs are found by this hash.
        if not data["train"]["optimizer"].get("groups"):
            data["train"]["optimizer"].pop("groups", None)
        data["train"].pop("train_metrics", None)  # what is logged, not what is trained
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
    from grokspec.spec.sweep import SweepSpec  # the sweep block is validated by its own model

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
