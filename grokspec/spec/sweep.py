"""The ``sweep:`` block of a spec file: which points to run around the base experiment.

Kept apart from :mod:`grokspec.sweep.expand` (which expands and runs sweeps) so that
:func:`grokspec.spec.experiment.json_schema` can include it without importing the executors.
The conventions follow Hydra multirun / W&B / Ray Tune grids: dotted keys (the same paths as
``--set``) mapped to lists of values, a cartesian ``grid``, lock-step ``zip`` axes, a
``seeds`` axis, and named ``variants`` (whole-section overrides, e.g. one per learner).
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from grokspec.spec.base import StrictModel

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$")
_NAME = re.compile(r"^[A-Za-z0-9_.+-]+$")


class Values(StrictModel):
    """A generated list of values, instead of writing the list out. Give exactly one field."""

    log_range: tuple[float, float, int] | None = Field(
        default=None,
        description="[lo, hi, n]: n values spaced evenly in log space from lo to hi, both "
        "included (numpy.geomspace), e.g. weight decay [1.0e-3, 1.0, 7]. lo, hi > 0.",
    )
    linspace: tuple[float, float, int] | None = Field(
        default=None, description="[lo, hi, n]: n evenly spaced values, lo and hi included."
    )
    range: tuple[float, float] | tuple[float, float, float] | None = Field(
        default=None,
        description="[start, stop] or [start, stop, step] as in Python's range (stop "
        "excluded, step default 1); integers stay integers, e.g. [1, 5] -> 1, 2, 3, 4.",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Values:
        given = [k for k in ("log_range", "linspace", "range") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of log_range: [lo, hi, n], linspace: [lo, hi, n], "
                f"range: [start, stop, step] (got {given or 'none'})"
            )
        if self.log_range is not None:
            lo, hi, n = self.log_range
            if lo <= 0 or hi <= 0 or n < 1:
                raise ValueError(
                    f"log_range needs lo > 0, hi > 0, n >= 1 (got {list(self.log_range)})"
                )
        if self.linspace is not None and self.linspace[2] < 1:
            raise ValueError(f"linspace needs n >= 1 (got {list(self.linspace)})")
        if self.range is not None:
            start, stop, step = (*self.range, 1)[:3]
            if step == 0 or not self.values():
                raise ValueError(f"range {list(self.range)} is empty (check the sign of step)")
        return self

    def values(self) -> list[Any]:
        """The expanded list (floats rounded to 12 significant digits: 1e-3, not 0.0010000001)."""
        if self.log_range is not None:
            lo, hi, n = self.log_range
            if n == 1:
                return [lo]
            a, b = math.log10(lo), math.log10(hi)
            return [_tidy(10 ** (a + (b - a) * i / (n - 1))) for i in range(n)]
        if self.linspace is not None:
            lo, hi, n = self.linspace
            return [lo] if n == 1 else [_tidy(lo + (hi - lo) * i / (n - 1)) for i in range(n)]
        assert self.range is not None
        start, stop, step = (*self.range, 1)[:3]
        if all(float(v).is_integer() for v in (start, stop, step)):
            return list(range(int(start), int(stop), int(step)))
        count = max(0, math.ceil((stop - start) / step - 1e-9))
        return [_tidy(start + i * step) for i in range(count)]


def _tidy(x: float) -> float:
    return float(f"{x:.12g}")


Axis = list[Any] | Values
_GENERATORS = {"log_range", "linspace", "range"}


def _flatten_nested(v: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{train: {steps: [..]}}`` -> ``{train.steps: [..]}``: what ``--set
    sweep.grid.train.steps=[..]`` produces, and a nesting some people prefer to write."""
    out: dict[str, Any] = {}
    for key, axis in v.items():
        name = f"{prefix}{key}"
        if isinstance(axis, dict) and axis and not (set(axis) & _GENERATORS):
            out.update(_flatten_nested(axis, f"{name}."))
        else:
            out[name] = axis
    return out


def axis_values(axis: Axis) -> list[Any]:
    return axis.values() if isinstance(axis, Values) else list(axis)


class Resources(StrictModel):
    """What one point needs from a worker: Ray schedules by it; the process pool sizes
    per-worker torch threads by ``cpus``."""

    cpus: float = Field(default=1.0, gt=0.0, description="CPU cores per point (torch threads).")
    gpus: float = Field(
        default=0.0,
        ge=0.0,
        description="GPUs per point under Ray; fractions share a GPU (0.25 = four points per "
        "GPU). 0 = CPU only. The process pool shares the local GPUs round-robin instead.",
    )


class SweepSpec(StrictModel):
    """Which concrete experiments to run around the base spec (one MLflow child run each).

    Points = variants x grid (cartesian) x zip (lock-step) x seeds. Every point is validated
    before anything runs. Keys are dotted paths into the experiment, as for ``--set``.
    """

    grid: dict[str, Axis] = Field(
        default_factory=dict,
        description="Cartesian product: dotted.path -> list of values or {log_range | "
        "linspace | range}. E.g. Power et al. data fraction x weight decay: "
        "{dataset.train_fraction: [0.2, 0.3], train.optimizer.weight_decay: "
        "{log_range: [1.0e-3, 1.0, 7]}}.",
    )
    zip: dict[str, Axis] = Field(
        default_factory=dict,
        description="Keys varied together (the i-th value of each key forms one point); all "
        "lists must have the same length. Crossed with the grid.",
    )
    seeds: int | list[int] | None = Field(
        default=None,
        description="Seeds axis: N runs seeds seed, seed+1, ..., seed+N-1 (seed = the base "
        "spec's); or an explicit list. The seed sets the split, the init and the batch order.",
    )
    variants: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Named nested overrides of the base spec, e.g. one per learner for a "
        "cross-model comparison: {gp: {learner: {kind: gp}}, mlp: {learner: {kind: mlp}}}. A "
        "section with a different `kind` replaces the base section. All variants share the "
        "seed, hence the identical train/test split; the parent run gets an overlay plot and "
        "a table of grokking events per variant. With variants the base may omit `learner`.",
    )
    vectorize: bool | Literal["auto"] = Field(
        default=False,
        description="Train points that differ only in seed, optimizer settings (lr, "
        "weight_decay, betas, momentum, warmup_steps) or Grokfast settings as one batched "
        "computation (torch.func vmap, per-point hyperparameters as tensors; gradient "
        "runner, torch learners without dropout), each point still its own child run with "
        "the metrics it would have had alone. true: always when possible; auto: only where "
        "a timing probe of one training step, batched vs one after another on this device, "
        "measures a gain (it prints the numbers); false: one run at a time.",
    )
    resources: Resources = Field(default_factory=Resources)

    @field_validator("grid", "zip", mode="before")
    @classmethod
    def _parse_axes(cls, v: Any) -> Any:
        """One clear message per bad axis (a plain union would report both alternatives)."""
        if not isinstance(v, dict):
            return v
        out = {}
        for key, axis in _flatten_nested(v).items():
            if isinstance(axis, dict):
                try:
                    axis = Values.model_validate(axis)
                except ValidationError as exc:
                    err = exc.errors()[0]
                    where = ".".join(str(p) for p in err["loc"])
                    msg = err["msg"].removeprefix("Value error, ")
                    raise ValueError(f"'{key}': {where + ': ' if where else ''}{msg}") from None
            elif not isinstance(axis, list):
                raise ValueError(
                    f"'{key}': give a list of values, or {{log_range: [lo, hi, n]}}, "
                    f"{{linspace: [lo, hi, n]}}, {{range: [start, stop, step]}} (got {axis!r})"
                )
            out[key] = axis
        return out

    @field_validator("grid", "zip")
    @classmethod
    def _keys_and_lists(cls, v: dict[str, Axis]) -> dict[str, Axis]:
        for key, axis in v.items():
            if not _KEY.match(key) or key.split(".")[0] == "sweep":
                raise ValueError(
                    f"'{key}' is not a dotted field path into the experiment (e.g. "
                    "train.optimizer.weight_decay; the sweep block itself cannot be swept)"
                )
            if not axis_values(axis):
                raise ValueError(f"'{key}' has no values (give a non-empty list)")
        return v

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: int | list[int] | None) -> int | list[int] | None:
        if isinstance(v, int) and v < 1:
            raise ValueError(f"seeds must be >= 1 or a list of seeds, got {v}")
        if isinstance(v, list):
            if not v or any(s < 0 for s in v) or len(set(v)) != len(v):
                raise ValueError(f"seeds must be a non-empty list of distinct seeds >= 0, got {v}")
        return v

    @field_validator("variants")
    @classmethod
    def _variant_names(cls, v: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name in v:
            if not _NAME.match(name):
                raise ValueError(f"variant name '{name}' may use only letters, digits and _.+-")
        return v

    @model_validator(mode="after")
    def _axes_consistent(self) -> SweepSpec:
        lengths = {k: len(axis_values(a)) for k, a in self.zip.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"zip keys need lists of the same length, got {lengths}")
        both = sorted(set(self.grid) & set(self.zip))
        if both:
            raise ValueError(f"{both} appear in both grid and zip (put each key in one)")
        if self.seeds is not None and "seed" in {*self.grid, *self.zip}:
            raise ValueError("sweep 'seed' with `seeds:` or in grid/zip, not both")
        return self

    def seed_list(self, base_seed: int) -> list[int] | None:
        if self.seeds is None:
            return None
        if isinstance(self.seeds, int):
            return [base_seed + i for i in range(self.seeds)]
        return list(self.seeds)
