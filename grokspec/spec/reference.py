"""The spec reference in markdown, generated from the JSON Schema (the single source of truth).

``grokspec schema --markdown > docs/spec-reference.md`` regenerates it; a test fails when the
committed file is stale, so the docs cannot drift from the code.
"""

from __future__ import annotations

import json
from typing import Any

from grokspec.spec.experiment import json_schema


def _type(prop: dict[str, Any] | bool) -> str:
    if not isinstance(prop, dict):
        return "any"
    if "$ref" in prop:
        return prop["$ref"].rsplit("/", 1)[-1]
    if "const" in prop:
        return f"`{prop['const']}`"
    if "enum" in prop:
        return " \\| ".join(f"`{v}`" for v in prop["enum"])
    if "anyOf" in prop:
        return " \\| ".join(_type(p) for p in prop["anyOf"])
    if "oneOf" in prop:
        return " \\| ".join(_type(p) for p in prop["oneOf"])
    t = prop.get("type", "any")
    if t == "array":
        items = prop.get("items") or prop.get("prefixItems")
        if isinstance(items, list):
            return "[" + ", ".join(_type(i) for i in items) + "]"
        return f"list of {_type(items)}" if items else "list"
    if t == "object" and isinstance(prop.get("additionalProperties"), dict):
        return f"map of {_type(prop['additionalProperties'])}"
    return str(t)


def _range(prop: dict[str, Any]) -> str:
    parts = []
    for key, sym in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="),
                     ("exclusiveMaximum", "<")):
        if key in prop:
            parts.append(f"{sym} {prop[key]}")
    for p in prop.get("anyOf", []):
        r = _range(p)
        if r:
            parts.append(r)
    return ", ".join(parts)


def _default(prop: dict[str, Any], required: bool) -> str:
    if required:
        return "**required**"
    if "default" in prop:
        return f"`{json.dumps(prop['default'])}`"
    return ""


def _section(name: str, model: dict[str, Any]) -> list[str]:
    lines = [f"### {name}", ""]
    if model.get("description"):
        lines += [" ".join(model["description"].split()), ""]
    lines += ["| field | type | default | range | description |", "|---|---|---|---|---|"]
    required = set(model.get("required", []))
    for field, prop in model.get("properties", {}).items():
        desc = " ".join(str(prop.get("description", "")).split()).replace("|", "\\|")
        lines.append(
            f"| `{field}` | {_type(prop)} | {_default(prop, field in required)} | "
            f"{_range(prop)} | {desc} |"
        )
    return [*lines, ""]


def spec_reference() -> str:
    """Markdown tables for the experiment and every section model, in schema order."""
    schema = json_schema()
    out = [
        "# Spec reference",
        "",
        "Generated from the JSON Schema by `grokspec schema --markdown`; do not edit by hand.",
        "Every spec file is YAML; unknown fields are errors. Editors autocomplete specs from",
        "`grokspec schema > grokspec.schema.json` (yaml-language-server:",
        "`# yaml-language-server: $schema=grokspec.schema.json` at the top of a spec).",
        "",
        "## Experiment (top level)",
        "",
    ]
    out += _section("Experiment", schema)[2:]
    out += ["## Sections", ""]
    for name, model in sorted(schema.get("$defs", {}).items()):
        if "properties" in model:
            out += _section(name, model)
    return "\n".join(out).rstrip() + "\n"
