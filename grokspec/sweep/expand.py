"""Expand a spec file's ``sweep:`` block into concrete, validated experiments.

Every point is built and validated *before* anything runs, so a typo in the last grid value
rejects the whole sweep up front instead of crashing it an hour in. Errors carry the point
and the ``FILE:LINE:COL`` of the value that made it invalid (the grid entry, the variant
field, or the base spec), through :mod:`grokspec.spec.loading`'s machinery.

Order of points: variants x grid x zip x seeds, seeds innermost, so the seeds of one
configuration are adjacent (they can then be trained as one vectorized batch).
Running a sweep is :mod:`grokspec.sweep.launch`; the executors are :mod:`grokspec.sweep.executors`.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grokspec.spec.experiment import Experiment
from grokspec.spec.loading import (
    Path_,
    Problem,
    SpecError,
    SpecSource,
    Where,
    locate,
    validate_data,
    validate_model,
)
from grokspec.spec.merge import apply_override, deep_merge  # the merge `extends:` uses
from grokspec.spec.sweep import SweepSpec, axis_values
from grokspec.tracking import tags
from grokspec.tracking.naming import child_run_name

#: Tags every child run of a sweep carries (besides grokspec.spec_hash and sweep hash).
TAG_POINT = tags.SWEEP_POINT
TAG_VARIANT = tags.SWEEP_VARIANT
TAG_AXES = tags.SWEEP_AXES


@dataclass(frozen=True)
class Point:
    """One concrete experiment of a sweep and the axis values that produced it."""

    index: int
    variant: str | None
    values: dict[str, Any]  # dotted path -> value, for the grid and zip axes
    seed: int
    experiment: Experiment

    @property
    def label(self) -> str:
        """Short human name, also the child run name: ``gp weight_decay=0.01 seed=1``."""
        return point_label(self.variant, self.values, self.seed)

    def group_key(self) -> str:
        """What must agree for points to train as one batch: everything but the seed, the
        optimizer settings and Grokfast settings (:mod:`grokspec.training.grouping`)."""
        from grokspec.training.grouping import batch_key

        return batch_key(self.experiment)


@dataclass
class Sweep:
    """A validated sweep: the block, the base name and every point."""

    name: str
    spec: SweepSpec
    points: list[Point]
    source: str = "<spec>"
    axes: list[str] = field(default_factory=list)
    #: set by :meth:`select`: the whole sweep's hash, so a subset finds the same parent run
    whole_hash: str | None = None

    def sweep_hash(self) -> str:
        """Identity of the sweep: the set of point hashes (re-running it finds its parent)."""
        if self.whole_hash is not None:
            return self.whole_hash
        blob = json.dumps([self.name, sorted(p.experiment.spec_hash() for p in self.points)])
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def select(self, names: list[str]) -> Sweep:
        """The points named in ``names`` (variant names or point labels, as ``--only`` takes
        them), under the whole sweep's identity; ``KeyError`` naming the valid names."""
        wanted = [n.strip() for n in names if n.strip()]
        known = {p.label for p in self.points} | {p.variant for p in self.points if p.variant}
        unknown = [n for n in wanted if n not in known]
        if unknown:
            variants = sorted({p.variant for p in self.points if p.variant})
            raise KeyError(f"--only: no point named {', '.join(map(repr, unknown))} (variants: "
                           f"{', '.join(variants) or 'none'}; point labels: "
                           f"{', '.join(repr(p.label) for p in self.points[:6])}"
                           f"{', ...' if len(self.points) > 6 else ''})")
        points = [p for p in self.points if p.variant in wanted or p.label in wanted]
        return Sweep(self.name, self.spec, points, self.source, self.axes, self.sweep_hash())

    @property
    def experiment(self) -> Experiment:
        """The first point: its tracking section (URI, MLflow experiment) is every point's."""
        return self.points[0].experiment

    def describe(self) -> str:
        """The dry-run listing: one line per point."""
        lines = [
            f"sweep '{self.name}': {len(self.points)} points "
            f"(axes: {', '.join(self.axes) or 'none'}), hash {self.sweep_hash()}"
        ]
        for p in self.points:
            e = p.experiment
            lines.append(
                f"  #{p.index:<4} {p.label:<50} {e.dataset.kind} x {e.learner.kind}  "
                f"hash {e.spec_hash()}"
            )
        return "\n".join(lines)


def point_label(variant: str | None, values: dict[str, Any], seed: Any) -> str:
    parts = [variant] if variant else []
    parts += [f"{k.split('.')[-1]}={_fmt(v)}" for k, v in values.items()]
    return " ".join([*parts, f"seed={seed}"])


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    return json.dumps(v) if isinstance(v, dict | list) else str(v)


def has_sweep(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> bool:
    """Whether the file (after ``extends`` and ``--set``) has a ``sweep:`` block."""
    source = SpecSource.read(path, overrides)
    if source.error is not None:
        raise source.error
    return source.is_sweep


def load_sweep(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Sweep:
    """Read a spec file with a ``sweep:`` block and validate every point. Raises SpecError."""
    return sweep_from(SpecSource.read(path, overrides))


def sweep_from(source: SpecSource) -> Sweep:
    """The sweep of a spec file already read (:class:`SpecSource`). Raises SpecError."""
    if source.error is not None:
        raise source.error
    data, marks, applied = dict(source.data), source.marks, source.applied
    if "sweep" not in data:
        where = marks.get((), Where(source.path))
        raise SpecError([Problem(where, "sweep", "no sweep: block")])
    block = data.pop("sweep")
    if not isinstance(block, dict):
        where = locate(("sweep",), marks, applied)
        msg = "sweep must be a mapping (grid, zip, seeds, variants, ...)"
        raise SpecError([Problem(where, "sweep", msg)])
    spec = validate_model(SweepSpec, block, marks, applied, prefix=("sweep",))
    return expand(data, spec, marks, applied, source=source.path)


def expand(
    base: dict[str, Any],
    spec: SweepSpec,
    marks: dict[Path_, Where] | None = None,
    applied: dict[Path_, str] | None = None,
    source: str = "<spec>",
) -> Sweep:
    """All points of ``spec`` around the raw ``base`` data, each validated. Raises SpecError
    listing every distinct problem once, with the first point that has it."""
    marks, applied = marks or {}, applied or {}
    variants: list[tuple[str | None, dict[str, Any]]] = list(spec.variants.items()) or [(None, {})]
    grid_keys, zip_keys = list(spec.grid), list(spec.zip)
    grid_rows = list(itertools.product(*(_indexed(spec.grid[k]) for k in grid_keys)))
    zip_rows = list(zip(*(_indexed(spec.zip[k]) for k in zip_keys), strict=True)) or [()]
    base_seed = base.get("seed", 0) if isinstance(base.get("seed", 0), int) else 0
    seeds = spec.seed_list(base_seed) or [None]

    points: list[Point] = []
    problems: dict[tuple[str, str, str], tuple[Problem, int]] = {}
    combos = itertools.product(variants, grid_rows, zip_rows, seeds)
    for index, ((vname, vover), grow, zrow, seed) in enumerate(combos):
        data = deep_merge(base, vover) if vover else copy.deepcopy(base)
        pmarks, pover = _variant_marks(base, vname, vover, marks, applied), dict(applied)
        values: dict[str, Any] = {}
        for section, keys, row in (("grid", grid_keys, grow), ("zip", zip_keys, zrow)):
            for key, (i, value) in zip(keys, row, strict=True):
                path = tuple(key.split("."))
                apply_override(data, path, copy.deepcopy(value))
                where = _where_value(section, key, i, marks, applied)
                _point_at(pmarks, pover, path, where)
                values[key] = value
        if seed is not None:
            data["seed"] = seed
            _point_at(pmarks, pover, ("seed",), locate(("sweep", "seeds"), marks, applied))
        label_seed = seed if seed is not None else data.get("seed", 0)
        try:
            exp = validate_data(data, pmarks, pover)
        except SpecError as exc:
            for prob in exc.problems:
                key = (prob.path, prob.message)
                first, count = problems.get(key, (None, 0))
                if first is None:
                    name = point_label(vname, values, label_seed)
                    msg = f"{prob.message} [sweep point #{index}: {name}]"
                    first = Problem(prob.where, prob.path, msg)
                problems[key] = (first, count + 1)
            continue
        tracking = exp.tracking
        tags = {**tracking.tags, TAG_POINT: str(index), TAG_AXES: json.dumps(values)}
        if vname:
            tags[TAG_VARIANT] = vname
        named_seed = exp.seed if spec.seeds is not None else None  # only a swept seed
        run_name = tracking.run_name or child_run_name(vname, values, named_seed)
        tracking = tracking.model_copy(update={"tags": tags, "run_name": run_name})
        exp = exp.model_copy(update={"tracking": tracking})
        points.append(Point(index, vname, values, exp.seed, exp))
    if problems:
        out = []
        for prob, count in problems.values():
            more = f" (and {count - 1} more points)" if count > 1 else ""
            out.append(Problem(prob.where, prob.path, prob.message + more))
        raise SpecError(out)
    _check_consistent(points, marks, applied)
    _check_vectorize(spec, points, marks, applied)
    axes = ([*(["variant"] if spec.variants else []), *grid_keys, *zip_keys]
            + (["seed"] if spec.seeds is not None else []))
    return Sweep(str(base.get("name", "sweep")), spec, points, source, axes)


def _where_value(
    section: str, key: str, i: int, marks: dict[Path_, Where], applied: dict[Path_, str]
) -> Where:
    """Where the i-th value of a sweep axis was written: the file, or a --set that gave it
    as a nested path (``--set sweep.grid.train.steps=[..]``)."""
    nested = ("sweep", section, *key.split("."))
    for n in range(len(nested), 2, -1):
        if nested[:n] in applied:
            return Where(f"--set {applied[nested[:n]]}")
    return locate(("sweep", section, key, str(i)), marks, applied)


def _indexed(axis: Any) -> list[tuple[int, Any]]:
    return list(enumerate(axis_values(axis)))


def _point_at(marks: dict[Path_, Where], over: dict[Path_, str], path: Path_, where: Where) -> None:
    """Errors about ``path`` (or below it) in this point now point at the sweep value."""
    for k in [k for k in marks if k[: len(path)] == path]:
        del marks[k]
    for k in [k for k in over if k[: len(path)] == path]:
        del over[k]
    marks[path] = where


def _variant_marks(
    base: dict[str, Any],
    name: str | None,
    over: dict[str, Any],
    marks: dict[Path_, Where],
    applied: dict[Path_, str],
) -> dict[Path_, Where]:
    """Marks for a point of variant ``name``: its fields point into ``sweep.variants.name``."""
    out = dict(marks)
    if not name:
        return out

    def walk(node: Any, at: Path_, base_node: Any) -> None:
        base_kind = base_node.get("kind") if isinstance(base_node, dict) else None
        replaced = isinstance(node, dict) and (
            not isinstance(base_node, dict) or node.get("kind", base_kind) != base_kind
        )
        if replaced:  # a new section: nothing of the base's marks below it applies
            for k in [k for k in out if k[: len(at)] == at and len(k) > len(at)]:
                del out[k]
        out[at] = locate(("sweep", "variants", name, *at), marks, applied)
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, (*at, str(k)), base_node.get(k) if isinstance(base_node, dict) else None)

    for k, v in over.items():
        walk(v, (str(k),), base.get(k))
    return out


def _check_consistent(
    points: list[Point], marks: dict[Path_, Where], applied: dict[Path_, str]
) -> None:
    """Every point logs to one MLflow store and experiment, and no two points are the same."""
    first = points[0].experiment.tracking
    for p in points:
        t = p.experiment.tracking
        if (t.uri, t.experiment) != (first.uri, first.experiment):
            raise SpecError([Problem(
                locate(("sweep",), marks, applied), "sweep",
                f"point #{p.index} ({p.label}) logs to tracking {t.uri}/{t.experiment}, point "
                f"#{points[0].index} to {first.uri}/{first.experiment}: a sweep logs to one "
                "MLflow experiment (do not sweep tracking.uri or tracking.experiment)",
            )])
    seen: dict[str, Point] = {}
    for p in points:
        h = p.experiment.spec_hash()
        if h in seen:
            raise SpecError([Problem(
                locate(("sweep",), marks, applied), "sweep",
                f"points #{seen[h].index} ({seen[h].label}) and #{p.index} ({p.label}) are the "
                "same experiment (identical resolved spec): remove the duplicate value",
            )])
        seen[h] = p


def _check_vectorize(
    spec: SweepSpec, points: list[Point], marks: dict[Path_, Where], applied: dict[Path_, str]
) -> None:
    """``vectorize: true`` needs a runner that honours it (``auto`` may fall back, and says
    so): a runner that cannot batch seeds would silently run them one by one."""
    if spec.vectorize is not True:
        return
    from grokspec.spec.features import feature_error, runner_class, runner_name, unsupported

    for p in points:
        name = runner_name(p.experiment)
        cls = runner_class(name)
        if unsupported(cls, {"vectorize": "sweep.vectorize"}):
            where = locate(("sweep", "vectorize"), marks, applied)
            msg = feature_error(name, cls, "vectorize") + " (or use vectorize: auto)"
            raise SpecError([Problem(where, "sweep.vectorize", msg)])
