"""The read side of the MLflow gateway: runs of an experiment or of a parent, metric
histories, summaries, parent lookup.

Every reader (``grokspec compare``, phase diagrams, the paper report, sweep resume) goes
through :class:`RunStore`, so how grokspec finds its runs (which tags, which filters, paging
past MLflow's 1000-run pages) is written once, next to the writer
(:mod:`grokspec.tracking.tracker`). Runs are returned as MLflow's own ``Run`` entities
(``run.info``, ``run.data.params/metrics/tags``): callers only read attributes, never call
MLflow.
"""

from __future__ import annotations

import csv
import json
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException as StoreError  # noqa: F401 - re-exported

from grokspec.tracking import tags
from grokspec.tracking.naming import chart_view_url, ui_base_url, ui_lines
from grokspec.tracking.store_lock import prepare_store
from grokspec.tracking.tracker import get_or_create_experiment, resolve_uri

if TYPE_CHECKING:
    from mlflow.entities import Run

PAGE = 1000  # runs per search call (MLflow's page limit on most stores)
OLDEST_FIRST = ("attributes.start_time ASC",)
NEWEST_FIRST = ("attributes.start_time DESC",)


class RunStore:
    """Read access to one tracking URI (the spec's, ``$MLFLOW_TRACKING_URI``, ./mlflow.db)."""

    def __init__(self, uri: str | None = None) -> None:
        self.uri = resolve_uri(uri)
        prepare_store(self.uri)  # MlflowClient() migrates a fresh store: under the lock
        self._client = MlflowClient(tracking_uri=self.uri)

    # -- experiments ---------------------------------------------------------------------
    def experiment_id(self, name: str, create: bool = False) -> str | None:
        """The id of experiment ``name`` (created with ``create``), else None."""
        if create:
            return get_or_create_experiment(self._client, name, self.uri)
        exp = self._client.get_experiment_by_name(name)
        return None if exp is None else exp.experiment_id

    def require_experiment(self, name: str) -> str:
        """The id of experiment ``name``; LookupError naming the ones that exist."""
        exp_id = self.experiment_id(name)
        if exp_id is None:
            known = sorted(self.experiment_names())
            raise LookupError(f"no MLflow experiment named '{name}' in {self.uri} "
                              f"(found: {known})")
        return exp_id

    def experiment_names(self) -> list[str]:
        return [e.name for e in self._client.search_experiments()]

    def experiment_ids(self) -> list[str]:
        return [e.experiment_id for e in self._client.search_experiments()]

    def experiment_name(self, experiment_id: str) -> str:
        return self._client.get_experiment(experiment_id).name

    def experiment_tags(self, experiment_id: str) -> dict[str, str]:
        return dict(self._client.get_experiment(experiment_id).tags)

    # -- runs ----------------------------------------------------------------------------
    def run(self, run_id: str) -> Run:
        return self._client.get_run(run_id)

    def search(
        self,
        experiment_ids: Sequence[str],
        filter_string: str = "",
        order_by: Sequence[str] = OLDEST_FIRST,
        limit: int | None = None,
    ) -> list[Run]:
        """Every run matching ``filter_string`` (all pages), or the first ``limit``."""
        return list(self._iter(experiment_ids, filter_string, order_by, limit))

    def _iter(
        self, exp_ids: Sequence[str], filter_string: str, order_by: Sequence[str],
        limit: int | None,
    ) -> Iterator[Run]:
        token, n = None, 0
        while True:
            size = PAGE if limit is None else min(PAGE, limit - n)
            page = self._client.search_runs(
                list(exp_ids), filter_string, max_results=size, page_token=token,
                order_by=list(order_by),
            )
            for run in page:
                yield run
                n += 1
            token = page.token
            if not token or (limit is not None and n >= limit):
                return

    def grokspec_runs(
        self,
        experiment: str | None = None,
        run_ids: Sequence[str] = (),
        filter_string: str = "",
    ) -> list[Run]:
        """Runs that trained something (tag ``grokspec.learner``), oldest first: by id, else
        by experiment name (else every experiment) and MLflow filter. A sweep's parent run
        trains nothing and is left out."""
        if run_ids:
            runs = [self.run(r) for r in run_ids]
        else:
            exp_ids = ([self.require_experiment(experiment)] if experiment is not None
                       else self.experiment_ids())
            runs = self.search(exp_ids, filter_string)
        return [r for r in runs if tags.LEARNER in r.data.tags]

    def children(
        self, parent_run_id: str, experiment_id: str | None = None, status: str | None = None
    ) -> list[Run]:
        """The child runs of a parent, oldest first (``status``: only those, e.g. FINISHED)."""
        exp_id = experiment_id or self.run(parent_run_id).info.experiment_id
        filt = f"tags.`{tags.PARENT_RUN_ID}` = '{parent_run_id}'"
        if status:
            filt += f" and attributes.status = '{status}'"
        return self.search([exp_id], filt)

    def finished_children(self, parent_run_id: str, experiment_id: str | None = None
                          ) -> dict[str, str]:
        """spec hash -> run id of the latest FINISHED child (what sweep resume skips)."""
        out: dict[str, str] = {}
        for run in self.children(parent_run_id, experiment_id, status="FINISHED"):
            if tags.SPEC_HASH in run.data.tags:
                out[run.data.tags[tags.SPEC_HASH]] = run.info.run_id
        return out

    def latest_by_spec(self, children: Sequence[Run]) -> dict[str, Run]:
        """spec hash -> the latest child, a FINISHED one winning over later failed retries."""
        latest: dict[str, Run] = {}
        for run in children:  # oldest first: later runs win
            h = run.data.tags.get(tags.SPEC_HASH)
            if h and not (latest.get(h) and latest[h].info.status == "FINISHED"
                          and run.info.status != "FINISHED"):
                latest[h] = run
        return latest

    def sweep_parent(self, experiment_id: str, sweep_hash: str) -> str | None:
        """The newest parent run of the sweep with this hash (None if it never ran)."""
        runs = self.search(
            [experiment_id],
            f"tags.`{tags.SWEEP_HASH}` = '{sweep_hash}' and tags.`{tags.SWEEP_ROLE}` = 'parent'",
            NEWEST_FIRST, limit=1,
        )
        return runs[0].info.run_id if runs else None

    def sweep_parents(self, experiment_id: str, limit: int = 200) -> list[Run]:
        """The experiment's sweep parent runs, newest first."""
        return self.search([experiment_id], f"tags.`{tags.SWEEP_ROLE}` = 'parent'",
                           NEWEST_FIRST, limit=limit)

    def latest_finished(self, experiment_id: str, spec_hash: str) -> Run | None:
        """The newest FINISHED run of this spec hash in the experiment."""
        runs = self.search(
            [experiment_id],
            f"tags.`{tags.SPEC_HASH}` = '{spec_hash}' and attributes.status = 'FINISHED'",
            NEWEST_FIRST, limit=1,
        )
        return runs[0] if runs else None

    def unfinished(self, experiment_id: str, spec_hash: str, limit: int = 20) -> list[Run]:
        """Runs of this spec hash that did not finish (killed, failed, still running),
        newest first: the attempts a resume may continue from."""
        return self.search(
            [experiment_id],
            f"tags.`{tags.SPEC_HASH}` = '{spec_hash}' and attributes.status != 'FINISHED'",
            NEWEST_FIRST, limit=limit,
        )

    def fetch_artifact(self, run_id: str, path: str, dest: str | Path) -> Path | None:
        """Download the run's artifact ``path`` into the folder ``dest``; None when the run
        has no such artifact (or it cannot be read)."""
        try:
            return Path(self._client.download_artifacts(run_id, path, str(dest)))
        except Exception:  # noqa: BLE001 - MLflow raises several kinds for a missing file
            return None

    @staticmethod
    def parent_of(run: Run) -> str | None:
        return run.data.tags.get(tags.PARENT_RUN_ID)

    # -- histories and summaries ---------------------------------------------------------
    def metric_history(self, run_id: str, keys: Sequence[str]) -> list[dict[str, float]]:
        """A run's metric history as rows ``{"step": s, key: value, ...}``, merged by step."""
        by_step: dict[int, dict[str, float]] = {}
        for key in keys:
            for m in self._client.get_metric_history(run_id, key):
                by_step.setdefault(int(m.step), {"step": int(m.step)})[key] = m.value
        return [by_step[s] for s in sorted(by_step)]

    def history_table(self, run_id: str) -> list[dict[str, float]]:
        """The full history from the run's ``history.csv`` artifact: every metric at every
        evaluation, including those MLflow only has as a summary (see tracking.focus) and
        without the UI's ~320-point sampling."""
        with tempfile.TemporaryDirectory() as tmp:
            local = self._client.download_artifacts(run_id, "history.csv", tmp)
            with open(local, newline="") as fh:
                return [{k: float(v) for k, v in row.items() if v not in ("", None)}
                        for row in csv.DictReader(fh)]

    def summary(self, run_id: str) -> dict[str, Any]:
        """The run's ``summary.json`` (grokking events, phase, final values); ``{}`` when it
        has none (a failed run)."""
        try:
            with tempfile.TemporaryDirectory() as tmp:
                local = self._client.download_artifacts(run_id, "summary.json", tmp)
                return json.loads(Path(local).read_text())
        except Exception:  # noqa: BLE001 - no summary artifact: the caller sees {}
            return {}

    # -- where to look -------------------------------------------------------------------
    def chart_url(self, experiment_id: str, parent_run_id: str | None = None) -> str:
        """The UI page showing these runs' curves (see naming.chart_view_url)."""
        return chart_view_url(ui_base_url(self.uri), experiment_id, parent_run_id)

    def ui_lines(self, experiment_id: str, parent_run_id: str | None = None) -> list[str]:
        """What the CLI prints after a run, sweep or comparison: the UI command and URL."""
        return ui_lines(self.uri, experiment_id, parent_run_id)

