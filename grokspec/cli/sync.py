"""``grokspec sync``: replay runs spooled while their tracking server was unreachable.

A run whose MLflow server stopped answering keeps training and writes everything it would
have logged to ``grokspec_out/spool/<run_id>/`` (see :mod:`grokspec.tracking.spool`). Once
the server is back, ``grokspec sync`` sends each spool in its original order (metrics with
their steps and timestamps, params, tags, artifacts, the final status) and removes it.
``grokspec run`` and ``grokspec sweep`` also replay the spools of their store before starting.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sync", help="replay runs spooled while the tracking server was down")
    p.add_argument("--dir", default=None, help="spool folder (default: grokspec_out/spool)")
    p.add_argument("--list", action="store_true", help="list the spooled runs; send nothing")
    p.set_defaults(func=cmd_sync)


def cmd_sync(args: argparse.Namespace) -> int:
    import json

    from grokspec.tracking.health import store_problem
    from grokspec.tracking.spool import pending, replay

    root = Path(args.dir) if args.dir else None
    folders = pending(root)
    if not folders:
        print("nothing to sync: no spooled runs", file=sys.stderr)
        return 0
    rc = 0
    for folder in folders:
        uri = json.loads((folder / "meta.json").read_text())["uri"]
        if args.list:
            print(f"{folder.name}  {uri}  {folder}")
            continue
        problem = store_problem(uri)
        if problem:
            print(f"error: run {folder.name} kept in {folder}: {problem}", file=sys.stderr)
            rc = 2
            continue
        try:
            n = replay(folder)
        except Exception as exc:  # noqa: BLE001 - keep the spool, say why, go on
            print(f"error: run {folder.name} kept in {folder}: {type(exc).__name__}: "
                  f"{' '.join(str(exc).split())[:300]}", file=sys.stderr)
            rc = 1
            continue
        print(f"synced run {folder.name} into {uri} ({n} metric values)")
    return rc
