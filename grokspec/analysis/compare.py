"""``grokspec compare``: read runs back from MLflow, tabulate their grokking, overlay curves.

Works on any tracking URI and across learner kinds (that is the point: a transformer, an MLP
and a GP side by side), because every runner logs the same metric names and every finished
run the same ``grok/*`` summary and ``grok.phase`` tag. Runs logged without those (older
runs, killed runs) are analysed from their metric histories with the same
:func:`grokspec.metrics.summary.analyse`, using each run's logged spec parameters.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grokspec.analysis.plots import overlay_figure, to_png
from grokspec.metrics import names
from grokspec.metrics.spec import AnalysisSpec
from grokspec.metrics.summary import analyse
from grokspec.tracking import tags

if TYPE_CHECKING:
    from grokspec.tracking.store import Run, RunStore

DEFAULT_METRICS = (names.TEST_ACC, names.TRAIN_ACC)
COLUMNS = (
    "run", "learner", "dataset", "fit step", "grok step", "delay", "phase", "final test acc"
)


@dataclass
class Comparison:
    """What ``compare`` found and wrote."""

    rows: list[dict[str, Any]]
    histories: dict[str, list[dict[str, float]]]
    png: Path | None = None
    csv: Path | None = None
    parent_run_id: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    experiment_ids: list[str] = field(default_factory=list)
    logged_to_parent: bool = False


def find_runs(
    store: RunStore,
    experiment: str | None = None,
    run_ids: Sequence[str] = (),
    filter_string: str = "",
) -> list[Run]:
    """Runs by id, else by experiment name (else every experiment) and MLflow filter; only
    grokspec runs, so a sweep's parent run, which trains nothing, is not a row."""
    return store.grokspec_runs(experiment, run_ids, filter_string)


def _param(run: Run, key: str, default: Any = None) -> Any:
    return run.data.params.get(key, default)


def summarize_run(run: Run, history: list[dict[str, float]]) -> dict[str, Any]:
    """One table row: the logged summary where present, else analysed from the history."""
    m, run_tags = run.data.metrics, run.data.tags

    def step(key: str) -> int | None:
        return int(m[key]) if key in m else None

    row: dict[str, Any] = {
        "run_id": run.info.run_id,
        "run_name": run.info.run_name,
        "learner": run_tags.get(tags.LEARNER, "?"),
        "dataset": run_tags.get(tags.DATASET, "?"),
        "status": run.info.status,
        "train_fit_step": step(names.GROK_TRAIN_FIT_STEP),
        "test_fit_step": step(names.GROK_TEST_FIT_STEP),
        "delay": step(names.GROK_DELAY),
        "delay_ratio": m.get(names.GROK_DELAY_RATIO),
        "phase": run_tags.get(tags.PHASE),
        "final_test_acc": m.get(names.TEST_ACC),
        "final_train_acc": m.get(names.TRAIN_ACC),
        "parent_run_id": run_tags.get(tags.PARENT_RUN_ID),
    }
    if row["phase"] is None and history:
        threshold = float(_param(run, "train.fit_threshold", 0.99))
        s = analyse(history, threshold, AnalysisSpec())
        row.update({k: s[k] for k in ("train_fit_step", "test_fit_step", "delay",
                                      "delay_ratio", "phase")})
    return row


def run_labels(runs: Sequence[Run]) -> dict[str, str]:
    """Legend labels: ``name (learner)``, plus the spec values that tell same-named runs
    apart (up to three differing params, e.g. ``seed=1``)."""
    base = {
        r.info.run_id: f"{r.info.run_name} ({r.data.tags.get(tags.LEARNER, '?')})"
        for r in runs
    }
    labels = {}
    for r in runs:
        twins = [o for o in runs if base[o.info.run_id] == base[r.info.run_id]]
        if len(twins) == 1:
            labels[r.info.run_id] = base[r.info.run_id]
            continue
        keys = sorted({k for o in twins for k in o.data.params})
        differ = [
            k for k in keys
            if len({o.data.params.get(k) for o in twins}) > 1 and not k.startswith("tracking.")
        ]
        extra = ", ".join(f"{k.split('.')[-1]}={r.data.params.get(k)}" for k in differ[:3])
        labels[r.info.run_id] = f"{base[r.info.run_id]} {extra}".strip()
    return labels


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def format_table(rows: Sequence[dict[str, Any]], labels: dict[str, str]) -> str:
    """Plain-text table, one line per run."""
    cells = [
        [
            labels.get(r["run_id"], r["run_name"]) + f" [{r['run_id'][:8]}]",
            r["learner"], r["dataset"], _fmt(r["train_fit_step"]), _fmt(r["test_fit_step"]),
            _fmt(r["delay"]), _fmt(r["phase"]), _fmt(r["final_test_acc"]),
        ]
        for r in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(COLUMNS)]
    line = lambda vals: "  ".join(v.ljust(w) for v, w in zip(vals, widths, strict=True))  # noqa: E731
    return "\n".join([line(COLUMNS), line(["-" * w for w in widths]), *map(line, cells)])


def rows_csv(rows: Sequence[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["run_id"])
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def compare(
    store: RunStore,
    experiment: str | None = None,
    run_ids: Sequence[str] = (),
    filter_string: str = "",
    metrics: Sequence[str] = DEFAULT_METRICS,
    out: Path | None = None,
    log_to_parent: bool = True,
) -> Comparison:
    """Find runs, tabulate them, and (with ``out``) write ``compare.png`` and
    ``compare.csv`` there; when every run has the same parent, log both to the parent."""
    runs = find_runs(store, experiment, run_ids, filter_string)
    need = sorted({*metrics, names.TRAIN_ACC, names.TEST_ACC})
    histories = {r.info.run_id: store.metric_history(r.info.run_id, need) for r in runs}
    rows = [summarize_run(r, histories[r.info.run_id]) for r in runs]
    labels = run_labels(runs)
    result = Comparison(rows, histories, labels=labels)
    result.experiment_ids = sorted({r.info.experiment_id for r in runs})
    parents = {store.parent_of(r) for r in runs}
    if len(parents) == 1 and None not in parents:
        result.parent_run_id = parents.pop()
    if out is None or not runs:
        return result
    out.mkdir(parents=True, exist_ok=True)
    result.csv = out / "compare.csv"
    result.csv.write_text(rows_csv(rows))
    curves = {labels[r.info.run_id]: histories[r.info.run_id] for r in runs}
    title = ", ".join(sorted({store.experiment_name(e) for e in result.experiment_ids}))
    result.png = out / "compare.png"
    result.png.write_bytes(to_png(overlay_figure(curves, list(metrics), title=title)))
    if log_to_parent and result.parent_run_id:
        from grokspec.tracking.tracker import Tracker

        parent = Tracker.attach(store.uri, result.parent_run_id)
        parent.log_file(result.png, "compare")
        parent.log_file(result.csv, "compare")
        parent.share_children_view()  # the printed chart-view link (older sweeps lack it)
        result.logged_to_parent = True
    return result
