"""The committed spec reference is generated from the schema; it must not go stale."""

from __future__ import annotations

from pathlib import Path

from grokspec.spec.reference import spec_reference

ROOT = Path(__file__).resolve().parents[1]


def test_spec_reference_is_current() -> None:
    committed = (ROOT / "docs" / "spec-reference.md").read_text()
    assert committed == spec_reference(), (
        "docs/spec-reference.md is stale: run `grokspec schema --markdown > docs/spec-reference.md`"
    )


def test_every_field_is_documented() -> None:
    from grokspec.spec.experiment import json_schema

    schema = json_schema()
    missing = [
        f"{name}.{field}"
        for name, model in schema["$defs"].items()
        for field, prop in model.get("properties", {}).items()
        if field != "kind" and not prop.get("description") and "$ref" not in prop
    ]
    assert not missing, f"fields without a description: {missing}"
