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
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Run

from grokspec.analysis.plots import overlay_figure, to_png
from grokspec.metrics import names
from grokspec.metrics.spec import AnalysisSpec
from grokspec.metrics.summary import analyse

DEFAULT_METRICS = (names.TEST_ACC, names.TRAIN_ACC)
COLUMNS = (
    "run", "learner", "dataset", "fit step", "grok step", "delay", "phase", "final test acc"
)
PARENT_TAG = "mlflow.parentRunId"


@dataclass
class Comparison:
    """What ``compare`` found and wrote."""

    rows: list[dict[str, Any]]
    histories: dict[str, list[dict[str, float]]]
    png: Path | None = None
    csv: Path | None = None
    parent_run_id: str | None = None
    labels: dict[str, str] = field(default_factory=dict)


def find_runs(
    client: MlflowClient,
    experiment: str | None = None,
    run_ids: Sequence[str] = (),
    filter_string: str = "",
) -> list[Run]:
    """Runs by id, else by experiment name (else every experiment) and MLflow filter.

    Only grokspec runs (tag ``grokspec.learner``) are kept, so a sweep's parent run, which
    trains nothing, is not a row.
    """
    if run_ids:
        runs = [client.get_run(r) for r in run_ids]
    else:
        if experiment is not None:
            exp = client.get_experiment_by_name(experiment)
            if exp is None:
                known = sorted(e.name for e in client.search_experiments())
                raise LookupError(f"no MLflow experiment named '{experiment}' (found: {known})")
            exp_ids = [exp.experiment_id]
        else:
            exp_ids = [e.experiment_id for e in client.search_experiments()]
        runs = []
        token = None
        while True:
            page = client.search_runs(
                exp_ids, filter_string, max_results=1000, page_token=token,
                order_by=["attributes.start_time ASC"],
            )
            runs += list(page)
            token = page.token
            if not token:
                break
    return [r for r in runs if "grokspec.learner" in r.data.tags]


def metric_history(client: MlflowClient, run_id: str, keys: Sequence[str]) -> list[dict]:
    """A run's metric history as rows ``{"step": s, key: value, ...}``, merged by step."""
    by_step: dict[int, dict[str, float]] = {}
    for key in keys:
        for m in client.get_metric_history(run_id, key):
            by_step.setdefault(int(m.step), {"step": int(m.step)})[key] = m.value
    return [by_step[s] for s in sorted(by_step)]


def _param(run: Run, key: str, default: Any = None) -> Any:
    return run.data.params.get(key, default)


def summarize_run(run: Run, history: list[dict[str, float]]) -> dict[str, Any]:
    """One table row: the logged summary where present, else analysed from the history."""
    m, tags = run.data.metrics, run.data.tags

    def step(key: str) -> int | None:
        return int(m[key]) if key in m else None

    row: dict[str, Any] = {
        "run_id": run.info.run_id,
        "run_name": run.info.run_name,
        "learner": tags.get("grokspec.learner", "?"),
        "dataset": tags.get("grokspec.dataset", "?"),
        "status": run.info.status,
        "train_fit_step": step(names.GROK_TRAIN_FIT_STEP),
        "test_fit_step": step(names.GROK_TEST_FIT_STEP),
        "delay": step(names.GROK_DELAY),
        "delay_ratio": m.get(names.GROK_DELAY_RATIO),
        "phase": tags.get(names.PHASE_TAG),
        "final_test_acc": m.get(names.TEST_ACC),
        "final_train_acc": m.get(names.TRAIN_ACC),
        "parent_run_id": tags.get(PARENT_TAG),
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
        r.info.run_id: f"{r.info.run_name} ({r.data.tags.get('grokspec.learner', '?')})"
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
    client: MlflowClient,
    experiment: str | None = None,
    run_ids: Sequence[str] = (),
    filter_string: str = "",
    metrics: Sequence[str] = DEFAULT_METRICS,
    out: Path | None = None,
    log_to_parent: bool = True,
) -> Comparison:
    """Find runs, tabulate them, and (with ``out``) write ``compare.png`` and
    ``compare.csv`` there; when every run has the same parent, log both to the parent."""
    runs = find_runs(client, experiment, run_ids, filter_string)
    need = sorted({*metrics, names.TRAIN_ACC, names.TEST_ACC})
    histories = {r.info.run_id: metric_history(client, r.info.run_id, need) for r in runs}
    rows = [summarize_run(r, histories[r.info.run_id]) for r in runs]
    labels = run_labels(runs)
    result = Comparison(rows, histories, labels=labels)
    if out is None or not runs:
        return result
    out.mkdir(parents=True, exist_ok=True)
    result.csv = out / "compare.csv"
    result.csv.write_text(rows_csv(rows))
    curves = {labels[r.info.run_id]: histories[r.info.run_id] for r in runs}
    title = ", ".join(sorted({client.get_experiment(r.info.experiment_id).name for r in runs}))
    result.png = out / "compare.png"
    result.png.write_bytes(to_png(overlay_figure(curves, list(metrics), title=title)))
    parents = {r.data.tags.get(PARENT_TAG) for r in runs}
    if log_to_parent and len(parents) == 1 and None not in parents:
        parent = parents.pop()
        client.log_artifact(parent, str(result.png), "compare")
        client.log_artifact(parent, str(result.csv), "compare")
        result.parent_run_id = parent
    return result
