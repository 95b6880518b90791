"""What a sweep's parent run carries once its points ran: the comparison, readable in the UI.

In MLflow's runs table a parent run is the row a newcomer sees first (its children are
collapsed under it), so the parent holds the comparison itself:

- **metrics**, per child, under the child's run name: ``<child>/fit_step``,
  ``<child>/grok_step``, ``<child>/delay``, ``<child>/final_test_acc`` (events a child never
  reached are not logged), so the parent has something to chart and its columns compare;
- **description**: the results table (markdown), shown on the parent's page;
- **artifacts**: ``results.csv`` / ``results.md`` (one row per point: axes, status,
  train-fit step, test-fit ("grok") step, delay, final test accuracy, phase) and, with
  ``variants``, ``comparison.png``: test/acc and train/acc against step (log), one colour per
  variant, accuracy on a fixed 0-1 axis so a 0.9975 dip does not look like a crash.
"""

from __future__ import annotations

import csv
import io
import re
from typing import TYPE_CHECKING, Any

from grokspec.analysis.plots import overlay_figure, to_png
from grokspec.metrics import names
from grokspec.tracking import tags

if TYPE_CHECKING:
    from grokspec.sweep.expand import Point, Sweep
    from grokspec.tracking.store import Run, RunStore
    from grokspec.tracking.tracker import Tracker

COLUMNS = ["point", "variant", "seed", "status", "train_fit_step", "test_fit_step", "delay",
           "final_test_acc", "phase", "run_id"]
#: Row field -> the parent's metric name suffix (``<child>/<suffix>``).
PARENT_METRICS = {
    "train_fit_step": "fit_step",
    "test_fit_step": "grok_step",
    "delay": "delay",
    "final_test_acc": "final_test_acc",
}


def child_name(point: Point) -> str:
    """The child's run name (see grokspec.tracking.naming.child_run_name)."""
    return point.experiment.tracking.run_name or point.label


def metric_key_part(name: str) -> str:
    """A run name as part of an MLflow metric key (letters, digits, ``_ - . / : space``):
    ``wd=0.3 s1`` -> ``wd:0.3 s1``; a ``/`` would open a new chart section, so it is ``_``."""
    return re.sub(r"[^\w.\- :]", "_", name.replace("=", ":"))


def report(store: RunStore, parent: Tracker, exp_id: str, sweep: Sweep) -> list[dict]:
    """One row per point (its latest child run); logged to the parent run (see module doc)."""
    latest = store.latest_by_spec(store.children(parent.run_id, exp_id))
    axes = [a for a in sweep.axes if a not in ("variant", "seed")]
    rows = []
    for p in sweep.points:
        run = latest.get(p.experiment.spec_hash())
        m = run.data.metrics if run else {}
        row: dict[str, Any] = {"point": p.index, "run": child_name(p),
                               "variant": p.variant or "", "seed": p.seed}
        row |= {a: p.values.get(a) for a in axes}
        row |= {
            "status": run.info.status if run else "MISSING",
            "train_fit_step": _int(m.get(names.GROK_TRAIN_FIT_STEP)),
            "test_fit_step": _int(m.get(names.GROK_TEST_FIT_STEP)),
            "delay": _int(m.get(names.GROK_DELAY)),
            "final_test_acc": m.get(names.TEST_ACC),
            "phase": run.data.tags.get(tags.PHASE, "") if run else "",
            "run_id": run.info.run_id if run else "",
        }
        rows.append(row)
    cols = ["point", "variant", "seed", *axes, *COLUMNS[3:]]
    files = {"results.csv": _csv(rows, cols).encode(),
             "results.md": _markdown(rows, cols).encode()}
    files["comparison.png"] = _comparison_png(store, sweep, latest)
    parent.log_files(files)
    parent.log_metrics(parent_metrics(rows))
    parent.describe(description(rows, sweep))
    parent.share_children_view()
    parent.set_tags({tags.SWEEP_FINISHED: str(sum(r["status"] == "FINISHED" for r in rows))})
    return rows


def parent_metrics(rows: list[dict]) -> dict[str, float]:
    """``<child>/fit_step`` etc. for every child that reached the event."""
    out: dict[str, float] = {}
    for row in rows:
        child = metric_key_part(row["run"])
        for field, suffix in PARENT_METRICS.items():
            if row.get(field) is not None:
                out[f"{child}/{suffix}"] = float(row[field])
    return out


def description(rows: list[dict], sweep: Sweep) -> str:
    """The parent's description: what was swept, then the results table."""
    finished = sum(r["status"] == "FINISHED" for r in rows)
    head = (f"**{sweep.name}**: {len(rows)} points ({finished} finished), axes: "
            f"{', '.join(sweep.axes) or 'none'}. Steps are optimizer updates; fit step = "
            "first evaluation with train accuracy >= the fit threshold, grok step = the same "
            "for test accuracy. Curves: the `comparison.png` artifact, or select the child "
            "runs in the chart view.\n\n")
    axes = [a for a in sweep.axes if a not in ("variant", "seed")]
    cols = ["run", *axes, "status", "train_fit_step", "test_fit_step", "delay",
            "final_test_acc", "phase"]
    return head + _markdown(rows, cols, threshold_labels(sweep))


def _int(v: float | None) -> int | None:
    return None if v is None else int(v)


def _comparison_png(store: RunStore, sweep: Sweep, latest: dict[str, Run]) -> bytes:
    """test/acc and train/acc vs step for every child run, labelled by its point (what
    differs), colour by variant (or learner kind), line style by the other axes."""
    runs: dict[str, list[dict[str, float]]] = {}
    styles: dict[str, tuple[int, int]] = {}
    colour_of: dict[str, int] = {}
    style_of: dict[tuple, int] = {}
    others = [a for a in sweep.axes if a not in ("variant", "seed")]
    for p in sweep.points:
        run = latest.get(p.experiment.spec_hash())
        if run is None:
            continue
        label = f"{child_name(p)} ({p.experiment.learner.kind})"
        runs[label] = store.metric_history(run.info.run_id, (names.TEST_ACC, names.TRAIN_ACC))
        key = p.variant or p.experiment.learner.kind
        rest = tuple(p.values.get(a) for a in others)
        styles[label] = (colour_of.setdefault(key, len(colour_of)),
                         style_of.setdefault(rest, len(style_of)))
    by = "variant" if sweep.spec.variants else "learner"
    legend = f"colour: {by}" + (f", line style: {', '.join(others)}" if others else "")
    title = f"{sweep.name}: {len(runs)} of {len(sweep.points)} points ({legend})"
    return to_png(overlay_figure(runs, (names.TEST_ACC, names.TRAIN_ACC), title, styles))


def _csv(rows: list[dict], cols: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _markdown(rows: list[dict], cols: list[str], labels: dict[str, str] | None = None) -> str:
    def fmt(v: Any) -> str:
        return "-" if v is None or v == "" else f"{v:.4g}" if isinstance(v, float) else str(v)

    head = [(labels or {}).get(c, c) for c in cols]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def markdown_table(rows: list[dict], sweep: Sweep, with_run_id: bool = False) -> str:
    """The results table as the CLI prints it."""
    axes = [a for a in sweep.axes if a not in ("variant", "seed")]
    cols = ["point", "run", *(["variant"] if sweep.spec.variants else []), *axes, "seed",
            "status", "train_fit_step", "test_fit_step", "delay", "final_test_acc", "phase"]
    return _markdown(rows, cols + (["run_id"] if with_run_id else []), threshold_labels(sweep))


def threshold_labels(sweep: Sweep) -> dict[str, str]:
    """Column headers that say which threshold each column uses: the fit/grok steps are at
    ``train.fit_threshold``, the phase at its rule's own (Liu's: 0.9)."""
    fits = {p.experiment.train.fit_threshold for p in sweep.points}
    rules = {p.experiment.analysis.phase_rule for p in sweep.points}
    at = f"acc>={fits.pop():g}" if len(fits) == 1 else "acc>=train.fit_threshold"
    rule = rules.pop() if len(rules) == 1 else "per point"
    rule_at = " @0.9" if rule == "liu2022" else ""
    return {"train_fit_step": f"train_fit_step ({at})", "test_fit_step": f"test_fit_step ({at})",
            "delay": f"delay ({at})", "phase": f"phase ({rule} rule{rule_at})"}
