"""YAML -> :class:`Experiment`, with errors a researcher can act on.

Every problem in a spec is reported at once as ``FILE:LINE:COL: dotted.path: message``.
Line numbers come from the YAML node tree (safe loader only), so an error points at the key
the user wrote, also inside a file pulled in with ``extends:`` and for ``--set`` overrides.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from grokspec.spec.experiment import Experiment
from grokspec.spec.limits import out_of_range
from grokspec.spec.merge import (  # noqa: F401 - kind_fields: re-exported
    apply_override,
    deep_merge,
    kind_fields,
    model_for,
)
from grokspec.spec.messages import message, union_message

Path_ = tuple[str, ...]
MAX_SPEC_BYTES = 10 * 2**20  # a spec is a few KB; a larger file is the wrong file
MAX_EXTENDS = 32  # longest extends: chain
MAX_NODES = 100_000  # values in one spec file, aliases expanded
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


def _read_text(path: Path) -> str:
    """The file's text, or a one-line :class:`SpecError` for anything that stops reading it
    (a folder, no permission, not UTF-8, too large to be a spec)."""
    where = Where(str(path))
    try:
        if path.is_dir():
            raise SpecError([Problem(where, "", "is a folder, not a spec file")])
        size = path.stat().st_size
        if size > MAX_SPEC_BYTES:
            raise SpecError([Problem(where, "", f"is {size} bytes; a spec file is at most "
                                     f"{MAX_SPEC_BYTES} bytes (is this the right file?)")])
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError([Problem(where, "", f"is not UTF-8 text (byte {exc.start}: "
                                 f"{exc.reason}); save it as UTF-8")]) from None
    except OSError as exc:
        raise SpecError([Problem(where, "", f"cannot read it: {exc.strerror or exc}")]) from None


def _yaml_problem(path: Path, exc: yaml.YAMLError) -> Problem:
    """One line for a parse or construction error, at the mark the parser gives."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = Where(str(path), mark.line + 1, mark.column + 1) if mark else Where(str(path))
    if isinstance(exc, yaml.constructor.ConstructorError):
        problem = " ".join(str(getattr(exc, "problem", "") or exc).split())
        return Problem(where, "", f"YAML tag not allowed: {problem} (a spec holds plain "
                                  "values only: strings, numbers, lists, mappings)")
    detail = " ".join(str(getattr(exc, "problem", None) or exc).split())
    return Problem(where, "", f"not valid YAML: {detail}")


_PARSED: dict[tuple[Path, str], tuple[Any, dict[Path_, Where]]] = {}


def _read_yaml(path: Path) -> tuple[Any, dict[Path_, Where]]:
    """Read and parse a file, once per process for the same content (a command asks for a
    file's data more than once: does it hold a sweep, then the experiment; each file of an
    ``extends`` chain alike); the caller gets its own copy to merge and override."""
    import copy

    text = _read_text(path)
    key = (path.resolve(), text)
    if key not in _PARSED:
        if len(_PARSED) > 64:
            _PARSED.clear()
        _PARSED[key] = _parse_yaml(path, text)
    data, marks = _PARSED[key]
    return copy.deepcopy(data), dict(marks)


def _parse_yaml(path: Path, text: str) -> tuple[Any, dict[Path_, Where]]:
    """Parse with the safe loader and record where every key and value sits."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise SpecError([_yaml_problem(path, exc)]) from None
    except RecursionError:  # thousands of nested [ or {
        where = Where(str(path), 1, 1)
        raise SpecError([Problem(where, "", "nested too deeply to be a spec")]) from None
    if node is None:
        raise SpecError([Problem(Where(str(path), 1, 1), "", "the file is empty")])
    marks: dict[Path_, Where] = {}
    visited = 0

    def here(n: yaml.Node) -> Where:
        return Where(str(path), n.start_mark.line + 1, n.start_mark.column + 1)

    def walk(n: yaml.Node, at: Path_, above: frozenset[int]) -> None:
        # Aliases make the node tree a graph: one that contains itself would recurse forever,
        # and nested aliases ("billion laughs") expand exponentially; both are refused.
        nonlocal visited
        visited += 1
        if visited > MAX_NODES:
            raise SpecError([Problem(here(n), "", f"more than {MAX_NODES} values (YAML aliases "
                                     "expanding?); a spec is far smaller")])
        if id(n) in above:
            raise SpecError([Problem(here(n), "", "a YAML alias refers to a value containing "
                                     "itself")])
        marks.setdefault(at, here(n))
        inner = above | {id(n)}
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                key = (*at, str(k.value))
                # Point errors about a key at the key itself.
                marks[key] = here(k)
                walk(v, key, inner)
        elif isinstance(n, yaml.SequenceNode):
            for i, v in enumerate(n.value):
                walk(v, (*at, str(i)), inner)

    try:
        walk(node, (), frozenset())
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError([_yaml_problem(path, exc)]) from None
    except RecursionError:
        where = Where(str(path), 1, 1)
        raise SpecError([Problem(where, "", "nested too deeply to be a spec")]) from None
    if not isinstance(data, dict):
        raise SpecError([Problem(marks[()], "", "a spec must be a mapping of fields")])
    return data, marks


def _load_with_extends(path: Path, seen: tuple[Path, ...] = ()) -> tuple[dict, dict]:
    """Load a file; ``extends: other.yaml`` (relative to it) is a base it overrides.

    Cycles are found on resolved paths (``d/a.yaml -> ../d/b.yaml -> ../d/a.yaml`` is the
    same file twice however it is spelled), and the chain is bounded, so a cycle through
    symlinks or ever-longer relative paths ends in an error, never in "file name too long".
    """
    real = path.resolve()
    if real in seen:
        chain = " -> ".join(str(p) for p in (*seen, real))
        raise SpecError([Problem(Where(str(path)), "extends", f"circular extends: {chain}")])
    if len(seen) >= MAX_EXTENDS:
        raise SpecError([Problem(Where(str(path)), "extends",
                                 f"more than {MAX_EXTENDS} files chained with extends")])
    data, marks = _read_yaml(path)
    base_name = data.pop("extends", None)
    if base_name is None:
        return data, marks
    if not isinstance(base_name, str) or not base_name.strip():
        raise SpecError([Problem(marks[("extends",)], "extends",
                                 f"must be a file path relative to this file (got {base_name!r})")])
    base_path = path.parent / base_name
    if not base_path.is_file():
        raise SpecError([Problem(marks[("extends",)], "extends", f"no such file: {base_path}")])
    if base_path.resolve() in (*seen, real):
        chain = " -> ".join(str(p) for p in (*seen, real, base_path.resolve()))
        problem = Problem(marks[("extends",)], "extends", f"circular extends: {chain}")
        raise SpecError([problem])
    base, base_marks = _load_with_extends(base_path, (*seen, real))
    return deep_merge(base, data), {**base_marks, **marks}


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
        detail = " ".join(str(getattr(exc, "problem", None) or exc).split())
        problem = Problem(Where(f"--set {text}"), key, f"value is not a plain YAML value: {detail}")
        raise SpecError([problem]) from None
    return tuple(key.strip().split(".")), value


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
        current = model_for(field.annotation, loc)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


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
        elif out and node is not None and not isinstance(node, dict | list):
            break  # a plain union's branch tag ('int', "literal['full']") under a scalar
        else:
            out.append(key)  # a missing field: it is reported under its full path
            node = None
    return tuple(out)


def locate(path: Path_, marks: dict[Path_, Where], overrides: dict[Path_, str]) -> Where:
    """The override that set this path (or a parent), else the nearest marked YAML node."""
    for n in range(len(path), -1, -1):
        if path[:n] in overrides:
            return Where(f"--set {overrides[path[:n]]}")
    for key, text in overrides.items():  # an override that created this path (a typo in it)
        if path and key[: len(path)] == path:
            return Where(f"--set {text}")
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
    problems = [Problem(locate((*prefix, *path), marks, overrides), ".".join((*prefix, *path)),
                        why) for path, why in out_of_range(data)]
    branches: dict[int, list[dict[str, Any]]] = {}  # a plain union's errors, by problem
    try:
        result = model.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(err["loc"])
            fields = _field_names(model, loc[:-1]) if err["type"] == "extra_forbidden" else []
            path = (*prefix, *_user_path(loc, data))
            # A model-level check that blames one field names it (grokspec.spec.base.field_error).
            blamed = (err.get("ctx") or {}).get("field")
            if blamed:
                path = (*path, *str(blamed).split("."))
            if err["type"] == "union_tag_invalid":
                path = (*path, "kind")
            where = locate(path, marks, overrides)
            same = next((i for i, p in enumerate(problems) if p.path == ".".join(path)), None)
            if same is None:
                problems.append(Problem(where, ".".join(path), message(err, fields)))
                if len(err["loc"]) > len(path) and not isinstance(err.get("input"), dict | list):
                    branches[len(problems) - 1] = [err]  # maybe the first branch of a union
            elif same in branches:  # one message per field for a plain union's branches
                branches[same].append(err)
                problems[same] = Problem(where, ".".join(path), union_message(branches[same]))
        raise SpecError(problems) from None
    seen = {p.path for p in problems}  # numbers YAML read as text ("1e300"), now floats
    problems += [Problem(locate((*prefix, *path), marks, overrides), ".".join((*prefix, *path)),
                         why) for path, why in out_of_range(result.model_dump())
                 if ".".join((*prefix, *path)) not in seen]
    if problems:
        raise SpecError(problems)
    return result


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


@dataclass
class SpecSource:
    """One spec file as a command read it, once: its raw data (``extends`` resolved,
    ``--set`` applied) and marks, or the :class:`SpecError` reading it raised. The CLI
    decides "sweep or single run" from it and validates from it, without a second read."""

    path: str
    data: dict = field(default_factory=dict)
    marks: dict = field(default_factory=dict)
    applied: dict = field(default_factory=dict)
    error: SpecError | None = None

    @classmethod
    def read(cls, path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> SpecSource:
        try:
            data, marks, applied = load_data(path, overrides)
        except SpecError as exc:
            return cls(str(path), error=exc)
        return cls(str(path), data, marks, applied)

    @property
    def is_sweep(self) -> bool:
        return self.error is None and "sweep" in self.data

    def experiment(self) -> Experiment:
        """The validated experiment (raises :class:`SpecError`)."""
        if self.error is not None:
            raise self.error
        return validate_data(self.data, self.marks, self.applied)


def load_spec(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Experiment:
    """Read, merge, override and validate one spec file. Raises :class:`SpecError`."""
    data, marks, applied = load_data(path, overrides)
    return validate_data(data, marks, applied)
