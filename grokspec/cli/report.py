"""``grokspec report``: run (or read back) the paper specs, record the runs, write the report.

Exit status: 0 ok, 2 bad input (a spec error, an unknown claim, a spec the rule cannot judge,
a records file that does not match the spec: one line each, naming file and field), 130
interrupted. MLflow, torch and matplotlib are imported only when the command runs, so
``grokspec --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any


def add_parser(sub: Any) -> None:
    """Register ``grokspec report`` (called from :mod:`grokspec.cli.main`)."""
    p = sub.add_parser("report", help="run or read back the paper specs; write the report")
    p.add_argument("paths", nargs="+", help="paper spec files or folders (specs/papers/)")
    p.add_argument("--out", default="docs/reproductions.md", help="markdown file to write")
    p.add_argument("--from-records", default=None, metavar="FILE",
                   help="decide every verdict from this records file (no MLflow, no training)")
    p.add_argument("--rerun", action="store_true", help="run again even if MLflow has runs")
    p.add_argument("--read-only", action="store_true",
                   help="run nothing: record what MLflow has (papers without runs: not run)")
    p.add_argument("--only", action="append", default=[], metavar="PAPER",
                   help="run/collect only this paper (file stem; repeatable); the others are "
                   "decided from the records file as it stands")
    p.add_argument("--no-figures", action="store_true", help="do not write the figures")
    p.add_argument("--device", default="cpu", help="cpu (default: reproducible), cuda, auto")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="PATH=VALUE", help="override applied to every spec (YAML value)")
    p.set_defaults(func=main)


def _fail(msg: str) -> int:
    print(msg, file=sys.stderr)
    return 2


def main(args: argparse.Namespace) -> int:
    import os

    from grokspec.papers import markdown, report
    from grokspec.papers import records as rec_io
    from grokspec.papers.claim import RuleInputError
    from grokspec.papers.registry import PAPERS, claim
    from grokspec.spec.loading import SpecError

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    unknown = [name for name in args.only if name not in PAPERS]
    if unknown:
        return _fail(f"--only: unknown claim rule '{unknown[0]}' (valid: {', '.join(PAPERS)})")
    out = Path(args.out)
    rec_file = Path(args.from_records) if args.from_records else report.records_path(out)
    # --only limits what is run and collected; the report covers every spec in PATHS, the
    # others decided from the records file as it stands.
    files = report.spec_files(args.paths)
    papers = []
    for path in files:
        try:
            c = claim(path.stem)
        except KeyError as exc:
            return _fail(f"{path}: name: {exc.args[0]}")
        try:
            tgts, _ = report.targets(path, args.overrides)
            report.precheck(c, tgts)
        except SpecError as exc:
            for problem in exc.problems:
                print(problem, file=sys.stderr)
            return 2
        except RuleInputError as exc:
            return _fail(f"{path}: {exc}")
        papers.append((c, path))
    if not papers:
        return _fail(f"{' '.join(args.paths)}: no paper spec with a registered claim")
    status = 0
    if args.from_records:
        try:
            data = rec_io.load(rec_file)
        except rec_io.RecordsError as exc:
            return _fail(str(exc))
    else:
        collected: dict[str, Any] = {}
        try:
            before = rec_io.load(rec_file)["papers"] if rec_file.exists() else {}
        except rec_io.RecordsError as exc:
            return _fail(f"{exc} (move it away to collect from MLflow alone)")
        for c, path in papers:
            if args.only and c.paper not in args.only:
                continue
            try:
                recs, _ = report.collect(path, args.overrides, args.rerun, args.device,
                                         echo=lambda m: print(m, file=sys.stderr),
                                         run_missing=not args.read_only,
                                         saved=before.get(c.paper, {}).get("runs", []))
            except KeyboardInterrupt:
                print(f"\ninterrupted in {path.name}: its runs are marked KILLED; the report "
                      "is written for the papers before it", file=sys.stderr)
                status = 130
                break
            if recs:
                collected[c.paper] = {
                    "collected": time.strftime("%Y-%m-%d", time.gmtime()),
                    "runs": [rec_io.encode(r) for r in recs]}
        # Read the file again just before writing: another `report --only` may have saved
        # its paper while this one trained (papers are collected over hours, side by side).
        data = rec_io.load(rec_file) if rec_file.exists() else {"papers": {}}
        data["papers"].update(collected)
        rec_io.save(rec_file, data["papers"])
        print(f"wrote {rec_file}", file=sys.stderr)
    results = []
    for c, path in papers:
        try:
            res = report.from_records(c, path, rec_file, data, args.overrides,
                                      figure=not args.no_figures)
        except rec_io.RecordsError as exc:
            return _fail(str(exc))
        print(f"{c.paper}: {res.verdict.label} ({len(res.records)} of {res.n_points} runs)",
              file=sys.stderr)
        results.append(res)
    markdown.render(results, out, rec_file, None if args.no_figures else out.parent / "figures")
    print(f"wrote {out}", file=sys.stderr)
    return status
