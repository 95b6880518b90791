"""The reproduction report: runs -> records -> verdicts -> markdown.

``grokspec report specs/papers/`` finds each paper spec's runs in MLflow by spec hash
(running what is missing), writes them to the records file next to the markdown
(:mod:`grokspec.papers.records`), and then decides every verdict *from the records*, exactly as
``grokspec report --from-records FILE`` does without training. The markdown is a pure function
of the records and the code (no clock, no machine): a test re-renders it from the committed
records and fails when the committed report differs.

Rendering lives in :mod:`grokspec.papers.markdown`. Per claim the report shows the claim, the
rule with its pre-registered thresholds, the verdict and its reasons, the numbers, each
amendment of the rule with the verdict under the old and the new thresholds, and what the
negative and positive controls gave.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grokspec.papers import records as rec_io
from grokspec.papers.claim import Claim, RunRecord, Verdict, fmt
from grokspec.spec.experiment import Experiment
from grokspec.spec.loading import SpecSource
from grokspec.sweep.expand import sweep_from
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
    #: the sweep trains its points batched (``sweep.vectorize``): their windows overlap
    batched: bool = False


def targets(path: Path, overrides: Sequence[str] = ()) -> tuple[list[Target], Any]:
    """The experiments of a spec file (and its Sweep, or None)."""
    source = SpecSource.read(path, list(overrides))  # read once: sweep or single spec
    if source.is_sweep:
        sw = sweep_from(source)
        points = [Target(p.label, p.variant, dict(p.values), p.experiment) for p in sw.points]
        for t in points:
            if t.variant is not None:
                t.values.setdefault("variant", t.variant)
        return points, sw
    exp = source.experiment()
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
    tgts, sweep = targets(path, overrides)
    entry = data["papers"].get(claim.paper, {"collected": "", "runs": []})
    matched = rec_io.match(records_file, claim.paper, entry.get("runs", []),
                           [(t.label, t.experiment) for t in tgts])
    recs = [rec_io.decode(matched[t.label], t.experiment) for t in tgts if t.label in matched]
    res = decide(claim, path, recs, len(tgts), entry.get("collected", ""), figure)
    res.settings = settings_table(tgts)
    res.batched = bool(sweep is not None and sweep.spec.vectorize)
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


__all__ = ["PaperResult", "Target", "collect", "decide", "from_records", "precheck",
           "records_path", "spec_files", "targets"]
