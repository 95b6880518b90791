"""``grokspec gc``: close runs whose process died (SIGKILL, OOM killer, a lost node).

Such a run says RUNNING forever in MLflow. ``gc`` finds every RUNNING run whose owner process
is gone (same host: the pid is dead or recycled; other host: no heartbeat for 10 of the run's
own heartbeat intervals, 10 minutes by default, or ``--stale-after`` seconds) and marks it
FAILED with the reason "process died (no heartbeat since ...)" (see
:mod:`grokspec.tracking.liveness`); ``--dry-run`` lists them with that reason. ``grokspec run
--resume`` and ``grokspec sweep`` do the same for their experiments before they start.
"""

from __future__ import annotations

import argparse
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gc", help="mark runs whose process died FAILED (no RUNNING forever)")
    p.add_argument("--uri", default=None, help="tracking URI (default: $MLFLOW_TRACKING_URI, "
                   "else ./mlflow.db)")
    p.add_argument("--experiment", action="append", default=[], metavar="NAME",
                   help="only this MLflow experiment (repeatable; default: all)")
    p.add_argument("--stale-after", type=float, default=None, metavar="SECONDS",
                   help="a run owned by another host is dead after this long without a "
                   "heartbeat (default: 10 of its heartbeat intervals, 10 min; 3600 for "
                   "runs logged before heartbeats had an interval)")
    p.add_argument("--dry-run", action="store_true", help="list the dead runs; change nothing")
    p.set_defaults(func=cmd_gc)


def cmd_gc(args: argparse.Namespace) -> int:
    from grokspec.tracking.health import store_problem
    from grokspec.tracking.liveness import close_dead
    from grokspec.tracking.store import RunStore
    from grokspec.tracking.tracker import resolve_uri

    uri = resolve_uri(args.uri)
    problem = store_problem(uri)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    store = RunStore(uri)
    ids = None
    if args.experiment:
        ids = []
        for name in args.experiment:
            exp_id = store.experiment_id(name)
            if exp_id is None:
                print(f"error: no MLflow experiment named '{name}' in {uri}", file=sys.stderr)
                return 2
            ids.append(exp_id)
    closed = close_dead(uri, ids, echo=print, stale_after=args.stale_after,
                        dry_run=args.dry_run)
    verb = "would close" if args.dry_run else "closed"
    print(f"{verb} {len(closed)} run(s) whose process died in {uri}")
    return 0
