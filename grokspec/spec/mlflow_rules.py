"""MLflow's rules for tag keys and tracking URIs, checked before any run exists.

MLflow validates a tag key only when the run already exists (``log_batch`` after
``create_run``), so a key it refuses used to leave a RUNNING run with no metrics behind. The
same rules are applied here at spec validation (``grokspec validate`` reports them at
FILE:LINE:COL). They mirror ``mlflow.utils.validation`` (``_validate_tag_name``,
``MAX_ENTITY_KEY_LENGTH``); tests/test_robust_input.py checks this module against MLflow's
own validator on a corpus of keys, so a drift in MLflow's rules shows up as a failing test.

Pure functions, no MLflow import: spec validation stays fast.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

MAX_KEY_LENGTH = 250  # mlflow.utils.validation.MAX_ENTITY_KEY_LENGTH
MAX_TAG_VALUE_LENGTH = 8000  # MAX_TAG_VAL_LENGTH (MLflow truncates longer values)
_KEY_CHARS = re.compile(r"^[/\w.\- :]*$")  # validate_param_and_metric_name (POSIX)

#: Schemes of stores that take runs (``databricks`` has no ``://``).
DATABASE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")
SERVER_SCHEMES = ("http", "https")
OTHER_SCHEMES = ("databricks", "databricks-uc", "uc")


def tag_key_problem(key: str) -> str | None:
    """Why MLflow would refuse ``key`` as a tag (or param) name, else None."""
    if not key:
        return "a tag key cannot be empty"
    if len(key) > MAX_KEY_LENGTH:
        return (f"tag key is {len(key)} characters; MLflow allows at most {MAX_KEY_LENGTH} "
                f"(starts '{key[:40]}...')")
    if not _KEY_CHARS.match(key):
        bad = sorted({c for c in key if not _KEY_CHARS.match(c)})
        return (f"tag key '{key}' has characters MLflow refuses ({''.join(bad)!r}): use "
                "letters, digits, '_', '-', '.', ' ', ':' and '/'")
    norm = posixpath.normpath(key)
    if norm != key or norm == "." or norm.startswith("..") or norm.startswith("/"):
        return (f"tag key '{key}' is not a plain relative name (MLflow treats keys as file "
                f"names; this one resolves to '{norm}'): no leading '/', no '..' or '.' parts, "
                "no '//' or trailing '/'")
    return None


def tag_value_problem(key: str, value: str) -> str | None:
    if len(value) > MAX_TAG_VALUE_LENGTH:
        return (f"the value of tag '{key}' is {len(value)} characters; MLflow keeps at most "
                f"{MAX_TAG_VALUE_LENGTH}")
    return None


def uri_problem(uri: str) -> str | None:
    """Why ``uri`` is not a tracking URI grokspec can log to, else None.

    MLflow's file store (a folder path, ``file://``) is in maintenance mode and refuses to
    start in recent releases; the message says which ``sqlite:///`` URI to use instead.
    """
    uri = uri.strip()
    if not uri:
        return "the tracking URI is empty (leave it out for ./mlflow.db)"
    scheme, sep, rest = uri.partition("://")
    if not sep:
        if uri in OTHER_SCHEMES or uri.startswith("databricks"):
            return None
        folder = Path(uri).expanduser()
        return (f"'{uri}' is a folder path: MLflow's file store is retired; use a SQLite "
                f"store, e.g. sqlite:///{(folder.absolute() / 'mlflow.db').as_posix()}")
    scheme = scheme.lower()
    if scheme == "file":
        folder = Path(rest or "/")
        return (f"'{uri}' is MLflow's retired file store; use a SQLite store, e.g. "
                f"sqlite:///{(folder / 'mlflow.db').as_posix()}")
    if scheme in SERVER_SCHEMES:
        host = rest.split("/", 1)[0]
        return None if host else f"'{uri}' names no host (e.g. http://127.0.0.1:5000)"
    if scheme == "sqlite":
        if not rest.startswith("/") or rest in ("/", "/:memory:"):
            return (f"'{uri}' is not a SQLite file: write sqlite:/// followed by the path, "
                    "e.g. sqlite:///mlflow.db (relative) or sqlite:////abs/path/mlflow.db")
        return None
    if scheme.split("+")[0] in DATABASE_SCHEMES or scheme in OTHER_SCHEMES:
        return None
    valid = ", ".join(f"{s}://" for s in (*SERVER_SCHEMES, *DATABASE_SCHEMES))
    return f"unknown tracking URI scheme '{scheme}://' (valid: {valid}, databricks)"
