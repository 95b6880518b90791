"""No run RUNNING forever: who owns a run, whether it is still alive, closing the dead ones.

A SIGKILL (the OOM killer, a lost node, ``kill -9``) gives a process no chance to close its
MLflow run, which then says RUNNING forever. Each run therefore records its owner — tags
``grokspec.host``, ``grokspec.pid`` and ``grokspec.pid_start`` (the process's start time, so
a recycled pid is not mistaken for the owner) — and a heartbeat, ``grokspec.heartbeat``
(Unix seconds), refreshed in the same ``log_batch`` as each metric flush and by a heartbeat
thread every ``HEARTBEAT_EVERY_S`` seconds (one small request a minute, off the training hot
path: a run that evaluates once an hour still beats), recorded in
``grokspec.heartbeat_every``.

A RUNNING run is dead when its owner is on this host and that process is gone (or is another
process with the same pid), or, for a run owned by another host (a Ray worker on a lost node),
when its heartbeat is older than ``STALE_BEATS`` of its own heartbeat intervals (10 minutes
at the default minute), or ``stale_after`` seconds when that is given (``grokspec gc
--stale-after``) or the run predates the heartbeat thread (then an hour). Runs without the
owner tags (made before they existed) are left alone. :func:`close_dead_runs` marks dead runs
FAILED with ``grokspec.failure_reason`` = "process died (no heartbeat since ...)"; it runs in
``grokspec gc``, ``grokspec run --resume`` and ``grokspec sweep``.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from grokspec.tracking import tags

HOST = tags.HOST
PID = tags.PID
PID_START = tags.PID_START
HEARTBEAT = tags.HEARTBEAT
HEARTBEAT_EVERY = tags.HEARTBEAT_EVERY
FAILURE_REASON = tags.FAILURE_REASON
#: For runs without a recorded heartbeat interval (logged before the heartbeat thread).
STALE_AFTER_S = 3600.0
#: Seconds between two heartbeats of the heartbeat thread.
HEARTBEAT_EVERY_S = 60.0
#: A run of another host is dead after this many of its heartbeat intervals without one.
STALE_BEATS = 10


def hostname() -> str:
    return socket.gethostname()


def process_start(pid: int) -> str | None:
    """The process's start time in clock ticks after boot (Linux ``/proc/<pid>/stat`` field
    22), or None where there is no /proc or no such process."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            stat = fh.read()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()  # after "pid (comm) "
    return fields[19] if len(fields) > 19 else None


def _state(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            stat = fh.read()
    except OSError:
        return None
    return stat[stat.rfind(")") + 2 :].split()[0]


def owner_tags() -> dict[str, str]:
    """This process as the owner of a run it creates, and a first heartbeat."""
    pid = os.getpid()
    return {HOST: hostname(), PID: str(pid), PID_START: process_start(pid) or "",
            HEARTBEAT: heartbeat_value(), HEARTBEAT_EVERY: f"{HEARTBEAT_EVERY_S:g}"}


def heartbeat_value(now: float | None = None) -> str:
    return f"{(time.time() if now is None else now):.0f}"


def pid_alive(pid: int, start: str | None) -> bool:
    """Is process ``pid`` alive on this host, and (when ``start`` is known) the same process
    that wrote the tags?"""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by another user
    if _state(pid) == "Z":  # a zombie has finished; its parent has not reaped it yet
        return False
    if start:
        now_start = process_start(pid)
        if now_start is not None and now_start != start:
            return False  # the pid was recycled by another process
    return True


@dataclass(frozen=True)
class Verdict:
    dead: bool
    reason: str = ""


def stale_limit(tags: dict[str, str], stale_after: float | None = None) -> float:
    """Seconds without a heartbeat after which another host's run counts as dead."""
    if stale_after is not None:
        return stale_after
    try:
        return STALE_BEATS * float(tags[HEARTBEAT_EVERY])
    except (KeyError, ValueError):
        return STALE_AFTER_S


def judge(tags: dict[str, str], now: float | None = None,
          stale_after: float | None = None) -> Verdict:
    """Is the RUNNING run with these tags dead? (Runs without owner tags: never.)"""
    now = time.time() if now is None else now
    limit = stale_limit(tags, stale_after)
    if HOST not in tags or PID not in tags:
        return Verdict(False)
    try:
        beat = float(tags.get(HEARTBEAT) or 0.0)
        pid = int(tags[PID])
    except ValueError:
        return Verdict(False)
    since = datetime.fromtimestamp(beat, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    if tags[HOST] == hostname():
        if pid_alive(pid, tags.get(PID_START) or None):
            return Verdict(False)
        return Verdict(True, f"process died (no heartbeat since {since}; pid {pid} on "
                             f"{tags[HOST]} is gone)")
    if now - beat > limit:
        age = (now - beat) / 60
        return Verdict(True, f"process died (no heartbeat since {since}, {age:.0f} min ago, "
                             f"limit {limit / 60:.0f} min; owner pid {pid} on {tags[HOST]})")
    return Verdict(False)


def close_dead_runs(
    client: Any,
    experiment_ids: Iterable[str] | None = None,
    echo: Callable[[str], None] | None = None,
    stale_after: float | None = None,
    dry_run: bool = False,
) -> list[tuple[str, str]]:
    """Mark every dead RUNNING run FAILED with its reason; returns ``(run_id, reason)``.

    ``experiment_ids`` None: every experiment in the store."""
    from mlflow.entities import ViewType

    ids = list(experiment_ids) if experiment_ids is not None else [
        e.experiment_id for e in client.search_experiments(view_type=ViewType.ACTIVE_ONLY)
    ]
    if not ids:
        return []
    closed = []
    token = None
    while True:
        page = client.search_runs(ids, "attributes.status = 'RUNNING'", max_results=1000,
                                  page_token=token)
        for run in page:
            verdict = judge(run.data.tags, stale_after=stale_after)
            if not verdict.dead:
                continue
            closed.append((run.info.run_id, verdict.reason))
            if echo:
                name = run.data.tags.get(tags.RUN_NAME, "")
                echo(f"{'would close' if dry_run else 'closed'} run {run.info.run_id} "
                     f"({name}) FAILED: {verdict.reason}")
            if not dry_run:
                client.set_tag(run.info.run_id, FAILURE_REASON, verdict.reason)
                client.set_terminated(run.info.run_id, status="FAILED")
        token = page.token
        if not token:
            return closed


def close_dead_in(uri: str, experiment_names: Iterable[str],
                  echo: Callable[[str], None] | None = None) -> list[tuple[str, str]]:
    """:func:`close_dead_runs` in the named experiments of one store (those that exist)."""
    from grokspec.tracking.store_lock import client_for

    client = client_for(uri)
    ids = [e.experiment_id for name in dict.fromkeys(experiment_names)
           if (e := client.get_experiment_by_name(name)) is not None]
    return close_dead_runs(client, ids, echo) if ids else []


def close_dead(
    uri: str,
    experiment_ids: Iterable[str] | None = None,
    echo: Callable[[str], None] | None = None,
    stale_after: float | None = None,
    dry_run: bool = False,
) -> list[tuple[str, str]]:
    """:func:`close_dead_runs` on the store at ``uri`` (for callers outside the tracking
    package, which do not hold an MLflow client: ``grokspec gc``)."""
    from grokspec.tracking.store_lock import client_for

    return close_dead_runs(client_for(uri), experiment_ids, echo, stale_after, dry_run)
