"""YAML -> :class:`Experiment`, with errors a researcher can act on.

Every problem in a spec is reported at once as ``FILE:LINE:COL: dotted.path: message``.
Line numbers come from the YAML node tree (safe loader only), so an error points at the key
the user wrote, also inside a file pulled in with ``extends:`` and for ``--set`` overrides.
"""

from __future__ import annotations

import copy
import difflib
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from grokspec.spec.experiment import Experiment

Path_ = tuple[str, ...]
ModelT = typing.TypeVar("ModelT", bound=BaseModel)


@dataclass(frozen=True)
class Where:
    """A place in a spec: a file position, or the --set override that supplied the value."""

    file: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}" if self.line else self.file


@dataclass(frozen=True)
class Problem:
    where: Where
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.path or '<spec>'}: {self.message}"


class SpecError(Exception):
    """An invalid spec; ``problems`` lists every error found, each with its location."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


# ----------------------------------------------------------------------------- YAML + marks


def _read_yaml(path: Path) -> tuple[Any, dict[Path_, Where]]:
    """Parse with the safe loader and record where every key and value sits."""
    text = path.read_text()
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = Where(str(path), mark.line + 1, mark.column + 1) if mark else Where(str(path))
        raise SpecError([Problem(where, "", f"not valid YAML: {exc}")]) from None
    if node is None:
        raise SpecError([Problem(Where(str(path), 1, 1), "", "the file is empty")])
    data = yaml.safe_load(text)
    marks: dict[Path_, Where] = {}

    def walk(n: yaml.Node, at: Path_) -> None:
        marks.setdefault(at, Where(str(path), n.start_mark.line + 1, n.start_mark.column + 1))
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                key = (*at, str(k.value))
                # Point errors about a key at the key itself.
                marks[key] = Where(str(path), k.start_mark.line + 1, k.start_mark.column + 1)
                walk(v, key)
        elif isinstance(n, yaml.SequenceNode):
            for i, v in enumerate(n.value):
                walk(v, (*at, str(i)))

    walk(node, ())
    if not isinstance(data, dict):
        raise SpecError([Problem(marks[()], "", "a spec must be a mapping of fields")])
    return data, marks


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and "kind" not in v:
            out[k] = _deep_merge(out[k], v)
        elif isinstance(v, dict) and isinstance(out.get(k), dict) and v.get("kind") == out[k].get(
            "kind"
        ):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _load_with_extends(path: Path, seen: tuple[Path, ...] = ()) -> tuple[dict, dict]:
    """Load a file; ``extends: other.yaml`` (relative to it) is a base it overrides."""
    path = path.resolve() if path.is_absolute() else path
    if path in seen:
        raise SpecError([Problem(Where(str(path)), "extends", "circular extends")])
    data, marks = _read_yaml(path)
    base_name = data.pop("extends", None)
    if base_name is None:
        return data, marks
    base_path = path.parent / str(base_name)
    if not base_path.exists():
        raise SpecError([Problem(marks[("extends",)], "extends", f"no such file: {base_path}")])
    base, base_marks = _load_with_extends(base_path, (*seen, path))
    return _deep_merge(base, data), {**base_marks, **marks}


# ----------------------------------------------------------------------------- overrides


def parse_override(text: str) -> tuple[Path_, Any]:
    """``train.optimizer.lr=1e-3`` -> (("train", "optimizer", "lr"), 0.001); value is YAML."""
    if "=" not in text:
        raise SpecError(
            [Problem(Where(f"--set {text}"), "", "expected dotted.path=value, e.g. train.steps=5")]
        )
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        problem = Problem(Where(f"--set {text}"), key, f"value is not YAML: {exc}")
        raise SpecError([problem]) from None
    return tuple(key.strip().split(".")), value


def apply_override(data: dict[str, Any], path: Path_, value: Any) -> None:
    """Set ``data[path] = value``, creating intermediate mappings."""
    node = data
    for part in path[:-1]:
        nxt = node.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            node[part] = nxt
        node = nxt
    node[path[-1]] = value


# ----------------------------------------------------------------------------- errors


def _field_names(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Valid field names of the model reached by following ``loc`` from ``model``."""
    current: Any = model
    for part in loc:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        field = current.model_fields.get(str(part))
        if field is None:
            # A discriminated-union tag in the loc: it names the member model.
            continue
        current = _model_for(field.annotation, loc)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _model_for(annotation: Any, loc: tuple[Any, ...]) -> Any:
    """The model class behind an annotation (unwrapping Optional and tagged unions)."""
    args = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _model_for(args[0], loc)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
        tags = {str(p) for p in loc}
        for m in members:
            kind = m.model_fields.get("kind")
            if kind is not None and str(kind.default) in tags:
                return m
        return members[0] if len(members) == 1 else annotation
    return annotation


def _user_path(loc: tuple[Any, ...], data: Any) -> Path_:
    """Drop pydantic's union-tag components: keep the parts that exist in the user's data."""
    out: list[str] = []
    node = data
    for part in loc:
        key = str(part)
        if isinstance(node, dict) and key in node:
            node = node[key]
            out.append(key)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
            out.append(key)
        elif isinstance(node, dict) and node.get("kind") == key:
            continue  # the discriminator tag pydantic inserts
        else:
            out.append(key)  # a missing field: it is reported under its full path
            node = None
    return tuple(out)


def _message(err: dict[str, Any], fields: list[str]) -> str:
    kind = err["type"]
    loc = err["loc"]
    if kind == "extra_forbidden":
        guess = difflib.get_close_matches(str(loc[-1]), fields, n=1)
        hint = f"did you mean '{guess[0]}'? " if guess else ""
        return f"unknown field '{loc[-1]}' ({hint}valid fields: {', '.join(fields)})"
    if kind == "union_tag_invalid":
        ctx = err.get("ctx", {})
        tags = [t.strip().strip("'") for t in str(ctx.get("expected_tags", "")).split(",")]
        guess = difflib.get_close_matches(str(ctx.get("tag")), tags, n=1)
        hint = f"did you mean '{guess[0]}'? " if guess else ""
        return f"unknown kind '{ctx.get('tag')}' ({hint}valid kinds: {', '.join(tags)})"
    if kind == "union_tag_not_found":
        return "missing 'kind' (it picks which variant this section is)"
    if kind == "missing":
        return "required field is missing"
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if "input" in err and not isinstance(err["input"], dict | list) and "got" not in msg:
        return f"{msg} (got {err['input']!r})"
    return msg


def _locate(path: Path_, marks: dict[Path_, Where], overrides: dict[Path_, str]) -> Where:
    """The override that set this path (or a parent), else the nearest marked YAML node."""
    for n in range(len(path), -1, -1):
        if path[:n] in overrides:
            return Where(f"--set {overrides[path[:n]]}")
    for n in range(len(path), -1, -1):
        if path[:n] in marks:
            return marks[path[:n]]
    return Where("<spec>")


def validate_data(
    data: dict[str, Any],
    marks: dict[Path_, Where] | None = None,
    overrides: dict[Path_, str] | None = None,
) -> Experiment:
    """Validate plain data into an Experiment, converting pydantic errors to :class:`SpecError`."""
    return validate_model(Experiment, data, marks, overrides)


def validate_model(
    model: type[ModelT],
    data: dict[str, Any],
    marks: dict[Path_, Where] | None = None,
    overrides: dict[Path_, str] | None = None,
    prefix: Path_ = (),
) -> ModelT:
    """Validate ``data`` (found at ``prefix`` in the file) into any spec ``model``.

    The same error reporting as for an Experiment, for other sections of a spec file
    (the ``sweep:`` block is validated by its own model, see :mod:`grokspec.sweep.expand`).
    """
    marks, overrides = marks or {}, overrides or {}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            fields = _field_names(model, loc[:-1]) if err["type"] == "extra_forbidden" else []
            path = (*prefix, *_user_path(loc, data))
            # A model-level check that blames one field names it (grokspec.specbase.field_error).
            blamed = (err.get("ctx") or {}).get("field")
            if blamed:
                path = (*path, *str(blamed).split("."))
            if err["type"] == "union_tag_invalid":
                path = (*path, "kind")
            where = _locate(path, marks, overrides)
            problems.append(Problem(where, ".".join(path), _message(err, fields)))
        raise SpecError(problems) from None


def load_data(
    path: str | Path, overrides: list[str] | tuple[str, ...] = ()
) -> tuple[dict, dict, dict]:
    """Raw spec data with ``extends`` resolved and ``--set`` overrides applied, plus marks."""
    p = Path(path)
    if not p.exists():
        raise SpecError([Problem(Where(str(p)), "", "no such spec file")])
    data, marks = _load_with_extends(p)
    applied: dict[Path_, str] = {}
    for text in overrides:
        key, value = parse_override(text)
        apply_override(data, key, value)
        applied[key] = text
    return data, marks, applied


def load_spec(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Experiment:
    """Read, merge, override and validate one spec file. Raises :class:`SpecError`."""
    data, marks, applied = load_data(path, overrides)
    return validate_data(data, marks, applied)
