"""How a pydantic validation error reads to the user: one line in the user's words per
mistake ("did you mean", the valid kinds, "an integer or 'full' (got 'fulll')")."""

from __future__ import annotations

import difflib
from typing import Any


def message(err: dict[str, Any], fields: list[str]) -> str:
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


_EXPECTED = {"int_parsing": "an integer", "int_type": "an integer", "int_from_float":
             "an integer", "float_parsing": "a number", "float_type": "a number",
             "bool_parsing": "true or false", "bool_type": "true or false",
             "string_type": "a string", "list_type": "a list", "dict_type": "a mapping"}


def union_message(errs: list[dict[str, Any]]) -> str:
    """A field whose type is a plain union (``int | 'full'``): one line in the user's words,
    "an integer or 'full' (got 'fulll')", not one pydantic line per branch."""
    wants = []
    for e in errs:
        if e["type"] == "literal_error":
            want = str((e.get("ctx") or {}).get("expected", e["msg"]))
        else:
            want = _EXPECTED.get(e["type"], e["msg"].removeprefix("Input should be "))
        if want not in wants:
            wants.append(want)
    return f"{' or '.join(wants)} (got {errs[0].get('input')!r})"
