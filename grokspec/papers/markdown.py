"""The reproduction report as markdown: the summary table, one section per paper (claim,
settings table, rule, verdict, per-seed rows, amendments with both verdicts, controls), and
its figures. Kept apart from :mod:`grokspec.papers.report`, which collects runs and decides
verdicts: this module only renders :class:`~grokspec.papers.report.PaperResult` objects."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grokspec.papers.claim import SEED_RULE, fmt
from grokspec.papers.report import PaperResult, targets


def render(results: Sequence[PaperResult], out: Path, records_file: Path,
           figures: Path | None) -> str:
    """Write the markdown report to ``out``, and each verdict's figure when ``figures`` is
    given (figures/<paper>.png next to ``out``)."""
    for res in results:
        if figures is not None and res.verdict.figure is not None:
            import matplotlib.pyplot as plt

            figures.mkdir(parents=True, exist_ok=True)
            res.verdict.figure.savefig(figures / f"{res.claim.paper}.png", format="png", dpi=80)
            plt.close(res.verdict.figure)
    text = markdown(results, out, records_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return text


def markdown(results: Sequence[PaperResult], out: Path, records_file: Path) -> str:
    """The report's text: a pure function of the results, ``out``'s folder and the records
    file's path (no clock, no machine), so it can be compared with the committed file."""
    for res in results:
        res.figure_path = out.parent / "figures" / f"{res.claim.paper}.png"
    rec_rel = _rel(records_file, out.parent)
    lines = [
        "# Reproductions of the seed papers",
        "",
        "Each verdict is decided by the rule registered next to the claim "
        "(`grokspec/papers/<paper>.py`; thresholds fixed before the runs were read, except "
        "where an amendment says it was changed after, and then the verdict under both is "
        "shown) from the "
        f"run records in [`{rec_rel}`]({rec_rel}) (per run: spec hash, resolved spec, metric "
        "history at every evaluation, summary). Regenerate this file from those records, "
        "without training: `grokspec report specs/papers/ --from-records "
        f"{_rel(records_file, out.parent.parent)}`"
        ". A test fails when this file differs from what the current code decides from the "
        "committed records. Wall time is the summed duration of the runs (for a sweep trained "
        "batched, `(batched)`: the longest run's window, since its runs trained as one "
        "computation), on a shared 2-core CPU (other jobs ran at the same time: timings are "
        "noisy).",
        "",
        "| paper | verdict | runs | seeds | wall time | negative control | positive control "
        "| spec |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for res in results:
        neg, pos = res.controls or (None, None)
        lines.append(
            f"| [{res.claim.paper}](#{res.claim.paper}) | **{res.verdict.label}** | "
            f"{len(res.records)} of {res.n_points} | {_seeds(res)} | "
            f"{_wall(res)} | "
            f"{neg.label if neg else '-'} | {pos.label if pos else '-'} | "
            f"[{res.spec_path.name}]({_rel(res.spec_path, out.parent)}) |")
    for res in results:
        lines += _section(res, out)
    return "\n".join(lines) + "\n"


def _section(res: PaperResult, out: Path) -> list[str]:
    c, v = res.claim, res.verdict
    th = ", ".join(f"`{k}` = {fmt(val)}" for k, val in c.thresholds.items())
    lines = ["", f"## {c.paper}", "", f"*{c.citation}*", "", f"**Claim.** {c.claim}", "",
             f"**Setting.** {_setting(res)} Spec: `specs/papers/{res.spec_path.name}`; its "
             "`paper:` block, checked against every resolved point (same / DIFFERS / a "
             "declared deviation with its reason):", "",
             *_table(res.settings), "",
             f"**Rule.** {c.rule_text()} {SEED_RULE}", "",
             f"Thresholds (pre-registered): {th}.", "",
             f"**Verdict: {v.label}.** {v.why}", ""]
    if v.rows:
        lines += _table(v.rows) + [""]
    if v.label != "not run" and res.figure_path is not None:
        lines += [f"![{c.paper}]({_rel(res.figure_path, out.parent)})", ""]
    for a, after, old, new in res.amended:
        olds = ", ".join(f"`{k}` {fmt(val)} -> {fmt(after.get(k))}" for k, val in a.old.items())
        change = "changes the verdict" if old != new else "same verdict"
        lines += [f"**Rule amended on {a.date}:** {olds}. Verdict under the old rule: "
                  f"**{old}**; under the new: **{new}** ({change}, same records). "
                  f"{a.reason}.", ""]
    if res.controls:
        neg, pos = res.controls
        lines += [f"**Controls** (synthetic records, `{c.paper}.controls`): effect absent -> "
                  f"**{neg.label}** ({neg.why}); effect present -> **{pos.label}**.", ""]
    if c.notes:
        lines += [f"**Notes.** {c.notes}", ""]
    failed = [r.label for r in res.records if r.status != "FINISHED"]
    lines.append(f"Runs: {len(res.records)} of {res.n_points} recorded"
                 + (f" (collected {res.collected})" if res.collected else "")
                 + (f", wall time {_wall(res)}" if res.records else "")
                 + (f"; not finished: {', '.join(failed)}" if failed else "") + ".")
    lines += ["", f"Paper size: {c.full_size}"]
    return lines


def _seeds(res: PaperResult) -> str:
    seeds = sorted({r.experiment.seed for r in res.records})
    return ", ".join(map(str, seeds)) if seeds else "-"


def _setting(res: PaperResult) -> str:
    try:
        tgts, sweep = targets(res.spec_path)
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
    import os

    return os.path.relpath(path.resolve(), base.resolve())


def _wall(res: PaperResult) -> str:
    """Summed run durations; for a batched sweep (its runs trained as one computation, their
    windows overlap) the longest run's window, said so."""
    if not res.records:
        return "-"
    if res.batched:
        return f"{_dur(max(r.wall_s for r in res.records))} (batched)"
    return _dur(sum(r.wall_s for r in res.records))


def _dur(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
