"""The committed run records the report is decided from (``docs/reproductions-records.json.gz``).

Per run: the sweep point, the spec hash, the resolved spec, the metric history at every
evaluation (columnar, floats to 7 significant digits) and the run's summary. ``grokspec report``
writes it next to the markdown; ``grokspec report --from-records`` re-decides every verdict
from it with the current code, without training. The file is gzip with a fixed timestamp, so
writing the same records twice gives the same bytes (a diff in git means the data changed).

A record matches a spec point when its trained spec (the resolved spec without ``tracking``,
``description`` and ``analysis``, which only read the model) agrees on every field both have:
fields added to the schema after the run (with their defaults) do not invalidate it.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grokspec.papers.claim import RunRecord
from grokspec.spec.experiment import Experiment, flatten

FORMAT = "grokspec-records/1"
UNTRAINED = ("tracking", "description", "analysis", "paper")


class RecordsError(ValueError):
    """A records file that cannot be read or does not match the spec: ``FILE: field: what``."""


def trained(exp: Experiment) -> dict[str, Any]:
    data = exp.resolved()
    for key in UNTRAINED:
        data.pop(key, None)
    return data


def _sig(v: Any) -> Any:
    return float(f"{v:.7g}") if isinstance(v, float) else v


def encode(rec: RunRecord) -> dict[str, Any]:
    cols = sorted({k for h in rec.history for k in h} - {"step"})
    rows = [[int(h["step"]), *[_sig(h.get(c)) for c in cols]] for h in rec.history]
    return {
        "label": rec.label, "variant": rec.variant, "values": rec.values,
        "spec_hash": rec.experiment.spec_hash(), "spec": rec.experiment.resolved(),
        "run_id": rec.run_id, "status": rec.status, "wall_s": round(rec.wall_s, 1),
        "history": {"columns": ["step", *cols], "rows": rows}, "summary": rec.summary,
    }


def decode(data: dict[str, Any], experiment: Experiment) -> RunRecord:
    cols = data["history"]["columns"]
    hist = [{c: float(v) for c, v in zip(cols, row, strict=True) if v is not None}
            for row in data["history"]["rows"]]
    return RunRecord(label=data["label"], variant=data["variant"], values=data["values"],
                     experiment=experiment, run_id=data["run_id"], status=data["status"],
                     history=hist, summary=data["summary"], wall_s=float(data["wall_s"]))


def load(path: Path) -> dict[str, Any]:
    """The records file as ``{"format", "papers": {paper: {"collected", "runs": [...]}}}``."""
    try:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise RecordsError(f"{path}: no such records file") from None
    except (OSError, json.JSONDecodeError, EOFError) as exc:
        raise RecordsError(f"{path}: not a gzip JSON records file ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        got = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise RecordsError(f"{path}: format: expected '{FORMAT}', got {got!r}")
    if not isinstance(data.get("papers"), dict):
        raise RecordsError(f"{path}: papers: missing (expected a mapping paper -> runs)")
    return data


def save(path: Path, papers: dict[str, Any]) -> None:
    """Write the records (sorted keys, gzip mtime 0: the same data gives the same bytes)."""
    blob = json.dumps({"format": FORMAT, "papers": dict(sorted(papers.items()))},
                      sort_keys=True, separators=(",", ":")).encode()
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, compresslevel=9) as gz:
        gz.write(blob)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())


def differing_field(run: dict[str, Any], exp: Experiment) -> tuple[str, Any, Any] | None:
    """The first trained field on which a record and a spec point disagree, as (field,
    recorded value, the spec's value); None: the record trains what the point trains (fields
    only one side has are not compared)."""
    if run.get("spec_hash") == exp.spec_hash():
        return None
    now = flatten(trained(exp))
    rec = flatten({k: v for k, v in run["spec"].items() if k not in UNTRAINED})
    return next(((key, rec[key], now[key]) for key in sorted(set(now) & set(rec))
                 if now[key] != rec[key]), None)


def still_valid(saved: Sequence[dict[str, Any]],
                points: Sequence[tuple[str, Experiment]]) -> dict[str, RunRecord]:
    """The saved FINISHED records (by label) that still train what their point trains: a
    paper collected in an earlier session keeps them instead of training them again."""
    by_label = {r.get("label"): r for r in saved if r.get("status") == "FINISHED"}
    return {label: decode(by_label[label], exp) for label, exp in points
            if label in by_label and differing_field(by_label[label], exp) is None}


def match(path: Path, paper: str, runs: list[dict[str, Any]],
          points: list[tuple[str, Experiment]]) -> dict[str, dict[str, Any]]:
    """Each spec point's record (by label); raises :class:`RecordsError` for a record that
    names no point of the spec or whose trained spec differs from the point's."""
    by_label = {lab: exp for lab, exp in points}
    out: dict[str, dict[str, Any]] = {}
    for i, run in enumerate(runs):
        where = f"{path}: papers.{paper}.runs[{i}]"
        if not isinstance(run, dict) or "label" not in run or "spec" not in run:
            raise RecordsError(f"{where}: expected a run with label, spec and history")
        exp = by_label.get(run["label"])
        if exp is None:
            raise RecordsError(f"{where}.label: '{run['label']}' is not a point of "
                               f"specs/papers/{paper}.yaml (points: {sorted(by_label)})")
        differs = differing_field(run, exp)
        if differs is not None:
            key, recorded, wanted = differs
            raise RecordsError(
                f"{where}.spec.{key}: recorded {recorded!r}, the spec says "
                f"{wanted!r} (the records do not match the spec: rerun "
                f"`grokspec report specs/papers/ --only {paper}`)")
        out[run["label"]] = run
    return out
