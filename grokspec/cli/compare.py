"""The ``grokspec compare`` subcommand: argument parsing only.

The work is in :mod:`grokspec.analysis.compare`, imported when the command runs, so that
``grokspec --help`` and ``grokspec validate`` do not import MLflow.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="table of grokking events + overlay PNG + CSV of runs read back from MLflow",
        description="Read runs back from MLflow (any tracking URI), print one line per run "
        "(fit step, grok step, delay, phase, final test accuracy), and write an overlay PNG "
        "of the chosen metrics vs step and a CSV. When all runs share one parent run (a "
        "sweep or cross-model comparison), the PNG and CSV are also logged to the parent.",
    )
    p.add_argument("--experiment", help="MLflow experiment name (default: all experiments)")
    p.add_argument("--runs", nargs="+", default=[], metavar="ID", help="run ids to compare")
    p.add_argument(
        "--filter",
        default="",
        metavar="EXPR",
        help="MLflow search filter, e.g. \"tags.`grok.phase` = 'grokking'\" or "
        "\"params.`learner.kind` = 'mlp'\"",
    )
    p.add_argument(
        "--metrics",
        nargs="+",
        default=["test/acc", "train/acc"],
        help="metrics to overlay, one panel each (default: test/acc train/acc)",
    )
    p.add_argument(
        "--out", default="grokspec_out/compare", help="folder for compare.png and compare.csv"
    )
    p.add_argument("--uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else "
                   "./mlflow.db)")
    p.add_argument("--no-parent-log", action="store_true",
                   help="do not log the PNG/CSV to the runs' shared parent run")
    p.set_defaults(func=cmd_compare)


def cmd_compare(args: argparse.Namespace) -> int:
    from grokspec.analysis.compare import compare, format_table
    from grokspec.tracking.store import RunStore, StoreError

    store = RunStore(args.uri)
    try:
        result = compare(
            store, args.experiment, args.runs, args.filter, args.metrics, Path(args.out),
            log_to_parent=not args.no_parent_log,
        )
    except (LookupError, StoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not result.rows:
        print(f"no grokspec runs matched in {store.uri}", file=sys.stderr)
        return 2
    print(format_table(result.rows, result.labels))
    print(f"\nplot: {result.png}\ntable: {result.csv}")
    if result.logged_to_parent:
        print(f"logged to parent run {result.parent_run_id} under compare/")
    if len(result.experiment_ids) == 1:
        for line in store.ui_lines(result.experiment_ids[0], result.parent_run_id):
            print(line)
    return 0
