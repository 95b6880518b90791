"""Many processes, one SQLite store: create and migrate it once, write with retries.

MLflow creates and migrates a SQLite database the first time a process touches it, with no
lock: several ``grokspec run`` started at once in a fresh folder (a shell loop with ``&``, a
job array, ``--workers N``) race on the schema migration ("database is locked", "duplicate
column name", "table _alembic_tmp_... already exists") and can leave the file half-migrated.
Here the first touch of a store in each process happens under an exclusive file lock next to
the database (``mlflow.db.lock``), so one process migrates while the others wait, and then
find the schema complete. The database is switched to WAL journaling once (persistent in the
file): readers no longer block the writer, which is what MLflow's own bulk importer
(``mlflow.store.fs2db``) and its test-suite fix for "database is locked" (mlflow PR #20014)
do. WAL needs every process on one machine (not a network file system): for several
machines, run ``mlflow server`` and log over HTTP (docs/sweeps.md).

Writes that still meet a busy database (MLflow waits 20 s per statement, ``busy_timeout``)
are retried with exponential backoff by :func:`retry_locked`.
"""

from __future__ import annotations

import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from filelock import FileLock

T = TypeVar("T")
LOCK_TIMEOUT_S = 600.0  # a migration takes seconds; waiting longer means something is wrong
_prepared: set[str] = set()


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (None for other stores)."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///") :]
    return Path(path.split("?", 1)[0])


def prepare_store(uri: str) -> None:
    """Create and migrate the store behind ``uri`` once per process, serialised across
    processes for SQLite (other stores: a server or a database migrates itself)."""
    if uri in _prepared:
        return
    db = sqlite_path(uri)
    if db is not None:
        from mlflow import MlflowClient

        db.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(db) + ".lock", timeout=LOCK_TIMEOUT_S):
            MlflowClient(tracking_uri=uri).search_experiments(max_results=1)  # migrates
            enable_wal(db)
    _prepared.add(uri)


def client_for(uri: str) -> Any:
    """An ``MlflowClient`` for ``uri``, the store prepared first. MLflow's client constructor
    already opens (and on a fresh file, migrates) the store, so every client grokspec makes
    comes from here: a bare ``MlflowClient(uri)`` would migrate outside the lock."""
    from mlflow import MlflowClient

    prepare_store(uri)
    return MlflowClient(tracking_uri=uri)


def enable_wal(db: Path) -> str:
    """Switch the database to WAL journaling (a no-op when it already is); returns the mode
    SQLite reports (it answers with the old mode when it cannot switch, e.g. on some network
    file systems, and then MLflow's default rollback journal stays in use)."""
    con = sqlite3.connect(str(db), timeout=30)
    try:
        mode = con.execute("PRAGMA journal_mode").fetchone()[0]
        if str(mode).lower() != "wal":
            mode = con.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        return str(mode).lower()
    finally:
        con.close()


def is_locked_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "database is locked" in text or "database table is locked" in text


def retry_locked(fn: Callable[[], T], attempts: int = 6, first_wait: float = 0.5) -> T:
    """Call ``fn``; on "database is locked" wait 0.5, 1, 2, 4, 8 s and try again (each try
    already waited MLflow's busy timeout). Other errors propagate at once."""
    wait = first_wait
    for i in range(attempts):
        try:
            return fn()
        except Exception as exc:
            if not is_locked_error(exc) or i == attempts - 1:
                raise
            print(f"note: the tracking database is busy; retrying in {wait:.1f} s",
                  file=sys.stderr)
            time.sleep(wait)
            wait *= 2
    raise AssertionError("unreachable")
