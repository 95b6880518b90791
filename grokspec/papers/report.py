"""``grokspec report``: run (or read back) each paper spec and write the reproduction report.

For every ``<paper>.yaml`` in the folder that has a claim in :mod:`grokspec.papers.claims`:

1. Expand it (a ``sweep:`` block gives one experiment per point).
2. Find each experiment's latest FINISHED MLflow run by its ``grokspec.spec_hash`` tag in the
   spec's tracking experiment; run what is missing (``--rerun``: run everything again). A
   sweep is run through :func:`grokspec.sweep.launch.run_sweep`, so it gets its parent run.
3. Read each run's metric history back from its ``history.csv`` artifact and summary.
4. Hand the runs to the paper's check, which returns the verdict, the numbers and a figure.

The markdown lists, per paper, the claim, the rule, what was measured, the verdict and the
wall time (the summed durations of the runs, as MLflow recorded them).
"""

from __future__ import annotations

import csv
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow import MlflowClient

from grokspec.papers.claim import Claim, RunRecord, Verdict, fmt
from grokspec.spec.experiment import Experiment
from grokspec.spec.loading import load_spec
from grokspec.sweep.expand import has_sweep, load_sweep
from grokspec.tracking.tracker import get_or_create_experiment, resolve_uri


@dataclass
class Target:
    """One experiment of a paper spec, with its sweep coordinates."""

    label: str
    variant: str | None
    values: dict[str, Any]
    experiment: Experiment


@dataclass
class PaperResult:
    claim: Claim
    spec_path: Path
    records: list[RunRecord]
    verdict: Verdict
    wall_s: float
    ran: bool  # False: every run was read back from MLflow
    figure_path: Path | None = None


def targets(path: Path, overrides: Sequence[str]) -> tuple[list[Target], Any]:
    """The experiments of a spec file (and its Sweep, or None)."""
    if has_sweep(path, list(overrides)):
        sw = load_sweep(path, list(overrides))
        return [Target(p.label, p.variant, dict(p.values), p.experiment) for p in sw.points], sw
    exp = load_spec(path, list(overrides))
    return [Target(exp.name, None, {}, exp)], None


def _latest_finished(client: MlflowClient, exp_id: str, spec_hash: str) -> Any:
    runs = client.search_runs(
        [exp_id],
        filter_string=f"tags.`grokspec.spec_hash` = '{spec_hash}' "
        "and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return runs[0] if runs else None


def _read_history(client: MlflowClient, run_id: str) -> list[dict[str, float]]:
    local = client.download_artifacts(run_id, "history.csv")
    rows = []
    with open(local, newline="") as fh:
        for row in csv.DictReader(fh):
            rows.append({k: float(v) for k, v in row.items() if v not in ("", None)})
    return rows


def _read_summary(client: MlflowClient, run_id: str) -> dict[str, Any]:
    try:
        return json.loads(Path(client.download_artifacts(run_id, "summary.json")).read_text())
    except Exception:  # noqa: BLE001 - a failed run has no summary; the check sees that
        return {}


def _record(client: MlflowClient, t: Target, run: Any) -> RunRecord:
    info = run.info
    wall = ((info.end_time or info.start_time) - info.start_time) / 1000.0
    return RunRecord(
        label=t.label, variant=t.variant, values=t.values, experiment=t.experiment,
        run_id=info.run_id, status=info.status, history=_read_history(client, info.run_id),
        summary=_read_summary(client, info.run_id), wall_s=wall,
    )


def collect(
    path: Path,
    overrides: Sequence[str] = (),
    rerun: bool = False,
    device: str = "cpu",
    echo: Callable[[str], None] = print,
    run_missing: bool = True,
) -> tuple[list[RunRecord], bool]:
    """Every run of the spec file, running what has no FINISHED run yet (unless
    ``run_missing`` is False). Returns (records, whether anything was run)."""
    from grokspec.run import run_experiment
    from grokspec.sweep.launch import run_sweep

    tgts, sweep = targets(path, overrides)
    tracking = tgts[0].experiment.tracking
    uri = resolve_uri(tracking.uri)
    client = MlflowClient(tracking_uri=uri)
    exp_id = get_or_create_experiment(client, tracking.experiment, uri)
    found = {} if rerun else {
        t.experiment.spec_hash(): _latest_finished(client, exp_id, t.experiment.spec_hash())
        for t in tgts
    }
    missing = [t for t in tgts if found.get(t.experiment.spec_hash()) is None]
    if missing and not run_missing:
        echo(f"{path.name}: {len(missing)} of {len(tgts)} run(s) not in MLflow (--read-only)")
        missing = []
    if missing:
        echo(f"{path.name}: running {len(missing)} of {len(tgts)} run(s)")
        if sweep is not None:
            run_sweep(sweep, device=device, fresh=rerun, echo=echo)
        else:
            run_experiment(tgts[0].experiment, device=device)
        found = {
            t.experiment.spec_hash(): _latest_finished(client, exp_id, t.experiment.spec_hash())
            for t in tgts
        }
    records = []
    for t in tgts:
        run = found.get(t.experiment.spec_hash())
        if run is not None:
            records.append(_record(client, t, run))
    return records, bool(missing)


def report_paper(
    claim: Claim,
    path: Path,
    overrides: Sequence[str] = (),
    rerun: bool = False,
    device: str = "cpu",
    echo: Callable[[str], None] = print,
    run_missing: bool = True,
) -> PaperResult:
    t0 = time.time()
    records, ran = collect(path, overrides, rerun, device, echo, run_missing)
    n_points = len(targets(path, overrides)[0])
    try:
        if not records:
            verdict = Verdict("not run", "no finished runs in MLflow: run `grokspec report "
                              f"specs/papers/ --only {claim.paper}`")
        else:
            verdict = claim.check(records)
            if len(records) < n_points:
                verdict.why += (f" (only {len(records)} of {n_points} sweep points have "
                                "finished runs: the rule saw a partial sweep)")
    except Exception as exc:  # noqa: BLE001 - a broken check is reported, not hidden
        verdict = Verdict("no data", f"the check raised {type(exc).__name__}: {exc}")
    wall = sum(r.wall_s for r in records) if records else time.time() - t0
    return PaperResult(claim, path, records, verdict, wall, ran)


def render(results: Sequence[PaperResult], out: Path, figures: Path, command: str) -> str:
    """The markdown report; writes each verdict's figure under ``figures``."""
    figures.mkdir(parents=True, exist_ok=True)
    for res in results:
        if res.verdict.figure is not None:
            res.figure_path = figures / f"{res.claim.paper}.png"
            res.verdict.figure.savefig(res.figure_path, format="png", dpi=80)
            import matplotlib.pyplot as plt

            plt.close(res.verdict.figure)
    lines = [
        "# Reproductions of the seed papers",
        "",
        f"Generated by `{command}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. "
        "Each verdict is decided by the rule next to the claim in `grokspec/claims.py`, "
        "applied to grokspec's own runs (read back from MLflow by `grokspec.spec_hash`). "
        "Wall time is the summed duration of the runs as MLflow recorded them, on a shared "
        "2-core CPU (other jobs ran at the same time: timings are noisy).",
        "",
        "| paper | verdict | runs | wall time | spec |",
        "| --- | --- | --- | --- | --- |",
    ]
    for res in results:
        spec = _rel(res.spec_path, out.parent)
        lines.append(
            f"| [{res.claim.paper}](#{res.claim.paper}) | **{res.verdict.label}** | "
            f"{len(res.records)} | {_dur(res.wall_s) if res.records else '-'} | "
            f"[{res.spec_path.name}]({spec}) |"
        )
    for res in results:
        c, v = res.claim, res.verdict
        lines += [
            "",
            f"## {c.paper}",
            "",
            f"*{c.citation}*",
            "",
            f"**Claim.** {c.claim}",
            "",
            f"**Setting.** {_setting(res)} Spec: `{_rel(res.spec_path, Path.cwd())}` (its header "
            "says what differs from the paper and why).",
            "",
            f"**Rule.** {c.rule}",
            "",
            f"**Verdict: {v.label}.** {v.why}",
            "",
        ]
        if v.rows:
            lines += _table(v.rows)
            lines.append("")
        if res.figure_path is not None:
            lines += [f"![{c.paper}]({_rel(res.figure_path, out.parent)})", ""]
        if c.notes:
            lines += [f"**Notes.** {c.notes}", ""]
        failed = [r.label for r in res.records if r.status != "FINISHED"]
        lines.append(
            f"Runs: {len(res.records)} ({'read back from MLflow' if not res.ran else 'run now'})"
            f", wall time {_dur(res.wall_s)}"
            + (f"; not finished: {', '.join(failed)}" if failed else "")
            + "."
        )
        lines += ["", f"Paper size: {c.full_size}"]
    text = "\n".join(lines) + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return text


def _setting(res: PaperResult) -> str:
    try:
        tgts, sweep = targets(res.spec_path, ())
    except Exception:  # noqa: BLE001 - the report still renders without it
        return ""
    e = tgts[0].experiment
    text = f"{e.description}." if e.description else ""
    if sweep is not None:
        text += f" Sweep of {len(tgts)} points over {', '.join(sweep.axes)}."
    return text


def _table(rows: Sequence[dict[str, Any]]) -> list[str]:
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    out = ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
    out += ["| " + " | ".join(fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return out


def _rel(path: Path, base: Path) -> str:
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        import os

        return os.path.relpath(path.resolve(), base.resolve())


def _dur(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def spec_files(paths: Sequence[str]) -> list[Path]:
    """The paper specs named (files) or found (folders, ``*.yaml``), in claim order."""
    from grokspec.papers.claims import CLAIMS

    files: list[Path] = []
    for p in map(Path, paths):
        files += sorted(p.glob("*.yaml")) if p.is_dir() else [p]
    order = list(CLAIMS)
    return sorted(files, key=lambda f: order.index(f.stem) if f.stem in order else len(order))


def main(args: Any) -> int:
    """The ``grokspec report`` subcommand (argparse namespace from :mod:`grokspec.cli.main`)."""
    import os

    from grokspec.papers.claims import CLAIMS
    from grokspec.spec.loading import SpecError

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one per run
    results, status = [], 0
    out = Path(args.out)
    for path in spec_files(args.paths):
        if args.only and path.stem not in args.only:
            continue
        claim = CLAIMS.get(path.stem)
        if claim is None:
            print(f"{path}: no claim registered for '{path.stem}' (skipped)", file=sys.stderr)
            continue
        try:
            res = report_paper(claim, path, args.overrides, args.rerun, args.device,
                               echo=lambda m: print(m, file=sys.stderr),
                               run_missing=not args.read_only)
        except SpecError as exc:
            for problem in exc.problems:
                print(problem, file=sys.stderr)
            status = 2
            continue
        except KeyboardInterrupt:
            print(f"\ninterrupted in {path.name}: its runs are marked KILLED; the report is "
                  "written for the papers before it", file=sys.stderr)
            status = 130
            break
        print(f"{claim.paper}: {res.verdict.label} ({len(res.records)} runs, "
              f"{_dur(res.wall_s)})", file=sys.stderr)
        results.append(res)
    if results:
        figures = Path(args.figures) if args.figures else out.parent / "figures"
        render(results, out, figures, "grokspec report " + " ".join(sys.argv[2:]))
        print(f"wrote {out}", file=sys.stderr)
    return status


def add_parser(sub: Any) -> None:
    """Register ``grokspec report`` (called from :mod:`grokspec.cli.main`)."""
    p = sub.add_parser("report", help="run or read back the paper specs; write the report")
    p.add_argument("paths", nargs="+", help="paper spec files or folders (specs/papers/)")
    p.add_argument("--out", default="docs/reproductions.md", help="markdown file to write")
    p.add_argument("--figures", default=None, help="figure folder (default: OUT's figures/)")
    p.add_argument("--rerun", action="store_true", help="run again even if MLflow has runs")
    p.add_argument("--read-only", action="store_true",
                   help="run nothing: report what MLflow has (papers without runs: not run)")
    p.add_argument("--only", action="append", default=[], metavar="PAPER",
                   help="report only this paper (file stem; repeatable)")
    p.add_argument("--device", default="cpu", help="cpu (default: reproducible), cuda, auto")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="PATH=VALUE", help="override applied to every spec (YAML value)")
    p.set_defaults(func=main)


__all__ = ["PaperResult", "collect", "render", "report_paper", "spec_files"]
