"""The reproduction report: runs -> records -> verdicts -> markdown.

``grokspec report specs/papers/`` finds each paper spec's runs in MLflow by spec hash
(running what is missing), writes them to the records file next to the markdown
(:mod:`grokspec.papers.records`), and then decides every verdict *from the records*, exactly as
``grokspec report --from-records FILE`` does without training. The markdown is a pure function
of the records and the code (no clock, no machine): a test re-renders it from the committed
records and fails when the committed report differs.

Per claim the report shows the claim, the rule with its pre-registered thresholds, the
verdict and its reasons, the numbers, each amendment of the rule with the verdict under the
old and the new thresholds, and what the negative and positive controls gave.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grokspec.papers import records as rec_io
from grokspec.papers.claim import SEED_RULE, Claim, RunRecord, Verdict, fmt
from grokspec.spec.experiment import Experiment
from grokspec.spec.loading import load_spec
from grokspec.sweep.expand import has_sweep, load_sweep
from grokspec.tracking import tags


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
    n_points: int
    verdict: Verdict
    collected: str = ""
    #: (amendment, thresholds after it, verdict before, verdict after)
    amended: list[tuple[Any, dict[str, Any], str, str]] = field(default_factory=list)
    controls: tuple[Verdict, Verdict] | None = None
    figure_path: Path | None = None
    #: the paper-vs-run table of the spec's ``paper:`` block (:func:`settings_table`)
    settings: list[dict[str, Any]] = field(default_factory=list)


def targets(path: Path, overrides: Sequence[str] = ()) -> tuple[list[Target], Any]:
    """The experiments of a spec file (and its Sweep, or None)."""
    if has_sweep(path, list(overrides)):
        sw = load_sweep(path, list(overrides))
        points = [Target(p.label, p.variant, dict(p.values), p.experiment) for p in sw.points]
        for t in points:
            if t.variant is not None:
                t.values.setdefault("variant", t.variant)
        return points, sw
    exp = load_spec(path, list(overrides))
    return [Target(exp.name, None, {}, exp)], None


def precheck(claim: Claim, tgts: Sequence[Target]) -> None:
    """Raise :class:`~grokspec.papers.claim.RuleInputError` if the rule cannot judge this spec
    (e.g. a trend over too few points): checked before anything runs."""
    if claim.precheck is not None:
        claim.precheck([(t.values, t.experiment) for t in tgts], claim.thresholds)


# ----------------------------------------------------------------------------- MLflow side


def collect(
    path: Path, overrides: Sequence[str] = (), rerun: bool = False, device: str = "cpu",
    echo: Callable[[str], None] = print, run_missing: bool = True,
    saved: Sequence[dict[str, Any]] = (),
) -> tuple[list[RunRecord], bool]:
    """Every run of the spec file from MLflow (latest FINISHED per spec hash), running the
    missing points first unless ``run_missing`` is False. Returns (records, anything run).

    ``saved``: the paper's runs in the records file. A point MLflow does not have (a fresh
    clone, another machine's store) keeps its saved record when that record trains what the
    point trains (:func:`grokspec.papers.records.differing_field`), so collecting a paper
    over several sessions runs only what is missing. ``rerun`` ignores both."""
    from grokspec.run import run_experiment
    from grokspec.sweep.launch import run_sweep
    from grokspec.tracking.store import RunStore

    tgts, sweep = targets(path, overrides)
    tracking = tgts[0].experiment.tracking
    store = RunStore(tracking.uri)
    exp_id = store.experiment_id(tracking.experiment, create=True)
    assert exp_id is not None

    def find() -> dict[str, Any]:
        found = {t.label: store.latest_finished(exp_id, t.experiment.spec_hash()) for t in tgts}
        if any(run is None for run in found.values()):  # runs logged before a schema change
            older = store.search([exp_id], "attributes.status = 'FINISHED'", NEWEST, limit=5000)
            for t in tgts:
                if found[t.label] is None:
                    found[t.label] = next((r for r in older if same_training(r, t.experiment)),
                                          None)
        ids = [r.info.run_id for r in found.values() if r is not None]
        for t in tgts:  # one run answering two points is no answer for either
            run = found[t.label]
            if run is not None and ids.count(run.info.run_id) > 1:
                echo(f"{path.name}: {t.label}: run {run.info.run_id} matches several points")
                found[t.label] = None
        return found

    found = {} if rerun else find()
    kept = {} if rerun else rec_io.still_valid(
        saved, [(t.label, t.experiment) for t in tgts if found.get(t.label) is None])
    if kept:
        echo(f"{path.name}: {len(kept)} point(s) kept from the records file")
    missing = [t for t in tgts if found.get(t.label) is None and t.label not in kept]
    if missing and not run_missing:
        echo(f"{path.name}: {len(missing)} of {len(tgts)} run(s) not in MLflow (--read-only)")
        missing = []
    if missing:
        echo(f"{path.name}: running {len(missing)} of {len(tgts)} run(s)")
        if sweep is not None and len(missing) == len(tgts):
            run_sweep(sweep, device=device, fresh=rerun, echo=echo)  # one parent run
        else:
            for t in missing:  # a partial sweep: only the missing points
                run_experiment(t.experiment, device=device)
        found = find()
    out = []
    for t in tgts:
        run = found.get(t.label)
        if run is None and t.label in kept:
            out.append(kept[t.label])
        elif run is not None:
            info = run.info
            wall = ((info.end_time or info.start_time) - info.start_time) / 1000.0
            out.append(RunRecord(t.label, t.variant, t.values, t.experiment, info.run_id,
                                 info.status, store.history_table(info.run_id),
                                 store.summary(info.run_id), wall))
    return out, bool(missing)


NEWEST = ("attributes.start_time DESC",)


def same_training(run: Any, exp: Experiment) -> bool:
    """Does an MLflow run (its params: the flattened resolved spec) train what ``exp`` trains?

    Used when no run carries ``exp``'s spec hash, e.g. runs logged before a field was added
    to the schema (the hash covers every resolved field): every trained field both have must
    agree; fields the run lacks (added since, at their defaults) are not compared.
    """
    import json

    from grokspec.spec.experiment import flatten

    params = run.data.params
    if not params or tags.SPEC_HASH not in run.data.tags:  # a sweep's parent run
        return False
    spec = flatten(rec_io.trained(exp))
    for key, value in spec.items():
        if key not in params:
            continue
        want = json.dumps(value) if isinstance(value, (list, dict)) else str(value)
        if params[key] != want:
            return False
    unset = [k for k, v in spec.items() if v is None]
    for key, value in params.items():  # a section set on one side only (train.grokfast)
        if any(key.startswith(f"{k}.") for k in unset):
            return False
        if value == "None" and any(k.startswith(f"{key}.") for k in spec):
            return False
    return True


# ----------------------------------------------------------------------------- records side


def from_records(
    claim: Claim, path: Path, records_file: Path, data: dict[str, Any],
    overrides: Sequence[str] = (), figure: bool = False,
) -> PaperResult:
    """Decide ``claim`` on its runs in the records ``data`` (no training)."""
    tgts, _ = targets(path, overrides)
    entry = data["papers"].get(claim.paper, {"collected": "", "runs": []})
    matched = rec_io.match(records_file, claim.paper, entry.get("runs", []),
                           [(t.label, t.experiment) for t in tgts])
    recs = [rec_io.decode(matched[t.label], t.experiment) for t in tgts if t.label in matched]
    res = decide(claim, path, recs, len(tgts), entry.get("collected", ""), figure)
    res.settings = settings_table(tgts)
    return res


def decide(
    claim: Claim, path: Path, recs: list[RunRecord], n_points: int, collected: str = "",
    figure: bool = False,
) -> PaperResult:
    """The verdict, the verdicts before and after each amendment, and the controls."""
    finished = [r for r in recs if r.status == "FINISHED" and r.history]
    if not finished:
        verdict = Verdict("not run", "no finished runs recorded: run `grokspec report "
                          f"specs/papers/ --only {claim.paper}`")
        amended: list[tuple[Any, dict[str, Any], str, str]] = []
    else:
        verdict = claim.decide(finished, figure=figure)
        if len(finished) < n_points:
            verdict.why += (f" (only {len(finished)} of {n_points} points have finished runs: "
                            "the rule saw a partial sweep)")
        amended = [(a, after, claim.decide(finished, before).label,
                    claim.decide(finished, after).label) for a, before, after in claim.amended()]
    from grokspec.spec.loading import SpecError

    try:
        neg, pos = claim.controls()
        controls: tuple[Verdict, Verdict] | None = (claim.decide(neg), claim.decide(pos))
    except SpecError:  # no specs/papers/ next to the package (an installed copy)
        controls = None
    return PaperResult(claim, path, recs, n_points, verdict, collected, amended, controls)


# ----------------------------------------------------------------------------- markdown


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
        "committed records. Wall time is the summed duration of the runs, on a shared 2-core "
        "CPU (other jobs ran at the same time: timings are noisy).",
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
            f"{_dur(sum(r.wall_s for r in res.records)) if res.records else '-'} | "
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
                 + (f", wall time {_dur(sum(r.wall_s for r in res.records))}"
                    if res.records else "")
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


def settings_table(tgts: Sequence[Target]) -> list[dict[str, Any]]:
    """The paper-vs-run table of a paper spec's points (its ``targets``), from its ``paper:``
    block and every resolved point (grokspec.spec.paper): one row per field and distinct
    (paper, run) pair, with the variants it holds for when not all."""
    from grokspec.spec.paper import compare

    rows: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    variants_all = sorted({t.variant or "" for t in tgts})
    for t in tgts:
        if t.experiment.paper is None:
            return []
        for r in compare(t.experiment.paper, t.experiment.resolved(), (t.variant or "", t.label)):
            key = (r.field, fmt(r.paper), fmt(r.run), r.status)
            row = rows.setdefault(key, {"field": r.field, "paper": r.paper, "run": r.run,
                                        "": r.status, "reason": r.reason, "_v": set()})
            row["_v"].add(t.variant or "")
    out = []
    for row in rows.values():
        seen = sorted(row.pop("_v"))
        row["points"] = "all" if seen == variants_all else ", ".join(seen)
        out.append(row)
    return out


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


def _dur(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def spec_files(paths: Sequence[str]) -> list[Path]:
    """The paper specs named (files) or found (folders, ``*.yaml``), in claim order."""
    from grokspec.papers.registry import PAPERS

    files: list[Path] = []
    for p in map(Path, paths):
        files += sorted(p.glob("*.yaml")) if p.is_dir() else [p]
    order = list(PAPERS)
    return sorted(files, key=lambda f: order.index(f.stem) if f.stem in order else len(order))


def records_path(out: Path) -> Path:
    """The records file next to the markdown: ``docs/reproductions-records.json.gz``."""
    return out.with_name(f"{out.stem}-records.json.gz")


__all__ = ["PaperResult", "Target", "collect", "decide", "from_records", "markdown", "precheck",
           "records_path", "render", "spec_files", "targets"]
