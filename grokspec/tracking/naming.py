"""Run names that say what differs between runs, and the UI address that shows them.

MLflow truncates run names in its table and chart legends, so a sweep child named
``cross-model-parity gp seed=0`` reads as ``cross-model-pa...`` next to its siblings. A
child is therefore named after what sets it apart *within its sweep*: its variant
(``transformer``, ``gp``), then the swept values with short keys (``wd=0.3 frac=0.5``), then
the seed when seeds are swept (``s1``). The sweep's name is on the parent run.

Pure functions: no MLflow import (the sweep expansion uses this at validation time).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode

#: Short keys for the swept fields that have long names; others keep their last path part.
SHORT_KEYS = {
    "weight_decay": "wd",
    "train_fraction": "frac",
    "train_size": "n_train",
    "initial_lengthscale": "ls0",
    "learning_rate": "lr",
    "spurious_dims": "spurious",
    "label_noise": "noise",
}


def short_key(path: str) -> str:
    """``train.optimizer.weight_decay`` -> ``wd``; ``dataset.p`` -> ``p``."""
    last = path.split(".")[-1]
    return SHORT_KEYS.get(last, last)


def short_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def child_run_name(
    variant: str | None, values: dict[str, Any], seed: int | None
) -> str:
    """The name of a sweep child: ``gp``, ``wd=0.3 frac=0.5 s1``, ``mlp lr=0.01``.

    ``seed`` is given only when the sweep varies seeds (else every child has the spec's
    seed, which says nothing). Never empty: a point of a sweep with no axes is ``run``.
    """
    parts = [variant] if variant else []
    parts += [f"{short_key(k)}={short_value(v)}" for k, v in values.items()]
    if seed is not None:
        parts.append(f"s{seed}")
    return " ".join(parts) or "run"


#: Experiment tag prefix under which the MLflow UI keeps a shared view of the runs page (its
#: "share" button; the page reads it back from ``?viewStateShareKey=<key>``, MLflow 3.17).
SHARED_VIEW_TAG = "mlflow.sharedViewState."
#: Experiment tag MLflow 3 reads to open an experiment in its model-training pages rather than
#: its GenAI ones (values in the UI's ExperimentKind enum, mlflow/server/js, 3.17).
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING = "custom_model_development"

#: The metrics the chart view opens with, by section: accuracy first (two wide charts), then
#: the losses; every other metric keeps MLflow's generated section after them.
CHART_SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("accuracy", ("test/acc", "train/acc")),
    ("loss", ("test/loss", "train/loss")),
)
#: Sections of one-value summary metrics (``grok/*``): a chart of one point says nothing; they
#: are columns of the runs table, and the section is hidden in the chart view.
HIDDEN_SECTIONS = ("grok",)


def share_key(parent_run_id: str | None) -> str:
    """The shared-view key of a parent's children (or of a whole experiment)."""
    return f"grokspec-{parent_run_id}" if parent_run_id else "grokspec-all"


def _line_chart(metric: str, section: str) -> dict[str, object]:
    """A LINE chart card as the UI serialises one (RunsChartsLineCardConfig, 3.17): log step
    axis (grokking spans decades of steps, and runs of very different lengths share it),
    accuracy on 0..1, every run of the view in the legend."""
    acc = metric.endswith("/acc")
    return {
        "uuid": f"grokspec-{metric}", "type": "LINE", "isGenerated": False, "deleted": False,
        "metricSectionId": f"grokspec-{section}", "metricKey": metric,
        "selectedMetricKeys": [metric], "runsCountToCompare": 100, "lineSmoothness": 0,
        "xAxisKey": "step", "xAxisScaleType": "log", "scaleType": "linear" if acc else "log",
        "range": {"xMin": None, "xMax": None, "yMin": 0 if acc else None,
                  "yMax": 1.02 if acc else None},
        "selectedXAxisMetricKey": "", "yAxisKey": "metric", "yAxisExpressions": [],
        "ignoreOutliers": False, "useGlobalXaxisKey": False, "useGlobalLineSmoothing": True,
    }


def shared_view_state(parent_run_id: str | None = None) -> dict[str, object]:
    """The runs page state a newcomer needs, as the UI stores a shared view: the parent's
    children (or every run) as rows of their own, best final ``test/acc`` first, every run
    shown (MLflow's default shows the first 10), and the chart view laid out for grokking:
    accuracy on a log step axis first and wide, then the losses, the one-value ``grok/*``
    section hidden. Ordered by start time (the UI's default) the table nests children under
    their collapsed parent, and the chart view plots only visible rows: nothing to see.

    The UI adds a generated chart only for a metric no card shows yet, and keeps the section
    order when ``isAccordionReordered`` (both in ``updateChartAndSectionConfigs``, 3.17)."""
    sections: list[dict[str, object]] = [
        {"uuid": f"grokspec-{name}", "name": name, "display": True, "isReordered": True,
         "deleted": False, "isGenerated": False, "columns": 2, "cardHeight": 360}
        for name, _ in CHART_SECTIONS
    ]
    sections += [{"uuid": f"grokspec-{name}", "name": name, "display": False,
                  "isReordered": False, "deleted": False, "isGenerated": True}
                 for name in HIDDEN_SECTIONS]
    state: dict[str, object] = {
        "orderByKey": "metrics.`test/acc`",
        "orderByAsc": False,
        "runsHiddenMode": "SHOW_ALL",
        "compareRunSections": sections,
        "compareRunCharts": [_line_chart(m, name) for name, ms in CHART_SECTIONS for m in ms],
        "isAccordionReordered": True,
        "hideEmptyCharts": True,
        "globalLineChartConfig": {"xAxisKey": "step", "lineSmoothness": 0,
                                  "selectedXAxisMetricKey": ""},
    }
    if parent_run_id:
        state["searchFilter"] = f"tags.`mlflow.parentRunId` = '{parent_run_id}'"
    return state


def chart_view_url(base_url: str, experiment_id: str, parent_run_id: str | None = None) -> str:
    """The MLflow UI page with an experiment's (or a parent's) runs in the chart view, in
    model-training mode, in the shared view :func:`shared_view_state` (written to the
    experiment by :func:`grokspec.tracking.tracker.share_chart_view`).

    MLflow 3 opens an experiment in its GenAI mode (a traces overview without runs); the
    ``workflowType=machine_learning`` query selects the model-training pages, and
    ``compareRunsMode=CHART`` the chart view of the runs tab (both read by the UI's router in
    mlflow/server/js, 3.17).
    """
    query = {"workflowType": "machine_learning", "compareRunsMode": "CHART",
             "viewStateShareKey": share_key(parent_run_id)}
    qs = urlencode(query, quote_via=quote)
    return f"{base_url.rstrip('/')}/#/experiments/{experiment_id}/runs?{qs}"


def ui_command(uri: str, experiment_id: str | None = None,
               parent_run_id: str | None = None) -> str:
    """The command that serves this store's UI on a free port and prints the view's link
    (:mod:`grokspec.cli.ui`)."""
    if uri.startswith(("http://", "https://")):
        return f"(the tracking server {uri} serves the UI)"
    cmd = f"grokspec ui --uri {uri}"
    if experiment_id is not None:
        cmd += f" --experiment-id {experiment_id}"
    if parent_run_id is not None:
        cmd += f" --parent {parent_run_id}"
    return cmd


def ui_base_url(uri: str) -> str:
    """Where the UI of this store is: the tracking server itself, else a plain `mlflow ui`'s
    default address (port 5000)."""
    if uri.startswith(("http://", "https://")):
        return uri.rstrip("/")
    return "http://127.0.0.1:5000"


def ui_lines(uri: str, experiment_id: str | None, parent_run_id: str | None = None) -> list[str]:
    """What the CLI prints after a run, sweep or comparison: the command that opens the UI
    for this store on a free port (it prints the view's link with that port), and the view's
    link for a plain `mlflow ui` on its default port 5000."""
    lines = [f"open the UI: {ui_command(uri, experiment_id, parent_run_id)}"]
    if experiment_id is not None:
        url = chart_view_url(ui_base_url(uri), experiment_id, parent_run_id)
        local = not uri.startswith(("http://", "https://"))
        lines.append(f"chart view: {url}" + (
            f" (with `mlflow ui --backend-store-uri {uri}` on port 5000)" if local else ""))
    return lines
