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

import contextlib
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
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


class StoreError(ValueError):
    """A SQLite file grokspec will not touch or cannot use as it is: another tool's
    database, or an MLflow store whose creation was killed half-way."""


def _tables(db: Path) -> set[str]:
    """The table names of an existing SQLite file (empty for an empty file); sqlite3's
    DatabaseError for a file that is not a database."""
    if db.stat().st_size == 0:
        return set()
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        con.close()


def _create(db: Path) -> None:
    """A new store, atomically from the user's view: created and migrated under a temporary
    name, then renamed into place, so a process killed mid-migration leaves no half store
    (only a ``.creating`` file the next creation overwrites)."""
    from mlflow import MlflowClient

    tmp = db.with_name(db.name + ".creating")
    tmp.unlink(missing_ok=True)
    MlflowClient(tracking_uri=f"sqlite:///{tmp}").search_experiments(max_results=1)
    tmp.replace(db)


@contextlib.contextmanager
def _quiet_mlflow_db() -> Iterator[None]:
    """MLflow's store module logs "Creating initial MLflow database tables..." (INFO) and
    every SQL error it catches (ERROR, with the statement) to stderr; grokspec reports a store
    it cannot use in one line of its own, so both are held back while it opens the store."""
    import logging

    log = logging.getLogger("mlflow.store.db.utils")
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        log.setLevel(level)


def _check_schema(db: Path, uri: str) -> None:
    """An existing MLflow store must be at this MLflow's schema revision before MLflow opens
    it (MLflow would write to a half-built one, then fail). Read-only."""
    from alembic.script import ScriptDirectory
    from mlflow.store.db.utils import _get_alembic_config

    head = ScriptDirectory.from_config(_get_alembic_config(uri)).get_current_head()
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        rows = con.execute("SELECT version_num FROM alembic_version").fetchall()
    except sqlite3.OperationalError:  # no alembic_version: killed before the first stamp
        rows = []
    finally:
        con.close()
    if not rows:
        raise StoreError(
            f"{db} is an MLflow store whose creation was interrupted half-way (no schema "
            f"revision): if it holds no runs you need, delete it (rm {db}) and run again")
    if rows[0][0] != head:
        raise StoreError(
            f"{db} has MLflow schema revision {rows[0][0]}, this MLflow needs {head}: either "
            f"its creation was interrupted (delete it if it holds no runs you need: rm {db}) "
            f"or an older MLflow made it (back it up, then: mlflow db upgrade {uri})")


def prepare_store(uri: str) -> None:
    """Create and migrate the store behind ``uri`` once per process, serialised across
    processes for SQLite (other stores: a server or a database migrates itself). A SQLite
    file that holds another tool's tables, or a half-created store, is refused untouched
    (:class:`StoreError`)."""
    if uri in _prepared:
        return
    db = sqlite_path(uri)
    if db is not None:
        from mlflow import MlflowClient

        db.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(db) + ".lock", timeout=LOCK_TIMEOUT_S), _quiet_mlflow_db():
            tables = _tables(db) if db.exists() else set()
            if not tables:
                _create(db)
            elif not tables & {"alembic_version", "experiments"}:
                raise StoreError(
                    f"{db} is a SQLite database but not an MLflow store (tables: "
                    f"{', '.join(sorted(tables)[:6])}): grokspec does not add tables to it; "
                    "point tracking.uri / $MLFLOW_TRACKING_URI at another file")
            else:
                _check_schema(db, uri)
            MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
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
