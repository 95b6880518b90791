"""How spec data is combined: ``extends:`` bases, sweep variants, grid values, ``--set``.

One rule for all four: mappings merge key by key, and a section whose ``kind`` changes keeps
every field the base set that the new kind also has (a value a user wrote is never replaced
by the new kind's default unseen; a kept field the new kind cannot use is then rejected at
its line by validation).
"""

from __future__ import annotations

import copy
import types
import typing
from typing import Any

from pydantic import BaseModel

from grokspec.spec.experiment import Experiment

Path_ = tuple[str, ...]


def deep_merge(base: dict[str, Any], over: dict[str, Any], at: Path_ = ()) -> dict[str, Any]:
    """``over`` on top of ``base`` (``extends:``, sweep variants). Mappings merge key by key.

    A section whose ``kind`` changes (``optimizer: {kind: gd}`` over ``{kind: adam, ...}``)
    keeps every field the base set that the new kind also has, so a value the user wrote is
    never replaced by the new kind's default unseen; fields the new kind does not have are
    dropped (they mean nothing there). ``at`` is the section's path in the spec.
    """
    out = copy.deepcopy(base)
    for k, v in over.items():
        old = out.get(k)
        if isinstance(v, dict) and isinstance(old, dict):
            if "kind" not in v or v.get("kind") == old.get("kind"):
                out[k] = deep_merge(old, v, (*at, k))
                continue
            shared = kind_fields((*at, k), str(v["kind"]))
            carried = {f: old[f] for f in old if f != "kind" and f not in v and f in shared}
            out[k] = deep_merge(carried, v, (*at, k))
        else:
            out[k] = copy.deepcopy(v)
    return out


def kind_fields(path: Path_, kind: str) -> frozenset[str]:
    """Field names of the union member ``kind`` of the section at ``path`` of an Experiment
    (``("train", "optimizer")`` -> the optimizer's fields); empty when unknown."""
    model: Any = Experiment
    for part in path:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return frozenset()
        field = model.model_fields.get(part)
        if field is None:
            return frozenset()
        model = model_for(field.annotation, (kind,))
    if isinstance(model, type) and issubclass(model, BaseModel):
        member_kind = model.model_fields.get("kind")
        if member_kind is None or kind in typing.get_args(member_kind.annotation) or str(
                member_kind.default) == kind:
            return frozenset(model.model_fields)
    return frozenset()


def apply_override(data: dict[str, Any], path: Path_, value: Any) -> None:
    """Set ``data[path] = value``, creating intermediate mappings. A mapping value merges
    into the section already there as ``extends:`` does (:func:`deep_merge`), so ``--set
    train.optimizer={kind: sgd}`` keeps the fields the spec set."""
    node = data
    for part in path[:-1]:
        nxt = node.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            node[part] = nxt
        node = nxt
    old = node.get(path[-1])
    if isinstance(value, dict) and isinstance(old, dict):
        node[path[-1]] = deep_merge({path[-1]: old}, {path[-1]: value}, path[:-1])[path[-1]]
    else:
        node[path[-1]] = value


def model_for(annotation: Any, loc: tuple[Any, ...]) -> Any:
    """The model class behind an annotation (unwrapping Optional and tagged unions)."""
    args = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return model_for(args[0], loc)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
        tags = {str(p) for p in loc}
        for m in members:
            kind = m.model_fields.get("kind")
            if kind is not None and str(kind.default) in tags:
                return m
        return members[0] if len(members) == 1 else annotation
    return annotation
