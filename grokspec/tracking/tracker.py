"""The one place that talks to MLflow.

Uses :class:`mlflow.MlflowClient` directly (no global "active run"), so several runs can be
open in one process (a parent and its children) and nothing leaks between tests. Metrics are
buffered and sent with ``log_batch`` at most every ``flush_seconds`` (and at the end), so the
training loop never waits on the database.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunStatus, RunTag

MAX_BATCH = 1000  # MLflow's limit on metrics per log_batch call
MAX_PARAMS = 100  # ... and on params per call
MAX_PARAM_LEN = 6000


def resolve_uri(spec_uri: str | None) -> str:
    """Spec's ``tracking.uri``, else ``$MLFLOW_TRACKING_URI``, else ./mlflow.db (absolute).

    An absolute ``sqlite:///`` URI is what a plain ``mlflow ui`` in the same folder opens;
    MLflow's file store is deprecated and refuses to start in recent releases.
    """
    uri = spec_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{Path.cwd().resolve() / 'mlflow.db'}"


def _artifact_root(uri: str) -> str | None:
    """Artifacts of a SQLite store go next to the database (not into the caller's cwd)."""
    if uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///") :])
        return (db.parent / "mlartifacts").resolve().as_uri()
    return None


def get_or_create_experiment(client: MlflowClient, name: str, uri: str) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    return client.create_experiment(name, artifact_location=_artifact_root(uri))


class Tracker:
    """One MLflow run: params, buffered step metrics, artifacts, and a final status."""

    def __init__(
        self,
        uri: str,
        experiment: str,
        run_name: str,
        tags: dict[str, str] | None = None,
        parent_run_id: str | None = None,
        flush_seconds: float = 5.0,
    ) -> None:
        self.client = MlflowClient(tracking_uri=uri)
        self.uri = uri
        self.experiment_id = get_or_create_experiment(self.client, experiment, uri)
        all_tags = dict(tags or {})
        if parent_run_id:
            all_tags["mlflow.parentRunId"] = parent_run_id
        run = self.client.create_run(self.experiment_id, run_name=run_name, tags=all_tags)
        self.run_id: str = run.info.run_id
        self.flush_seconds = flush_seconds
        self._buffer: list[Metric] = []
        self._last_flush = time.monotonic()

    # -- logging ---------------------------------------------------------------------------
    def log_params(self, params: dict[str, Any]) -> None:
        items = [
            Param(k, json.dumps(v) if isinstance(v, (list, dict)) else str(v))
            for k, v in params.items()
        ]
        items = [Param(p.key, p.value[:MAX_PARAM_LEN]) for p in items]
        for i in range(0, len(items), MAX_PARAMS):
            self.client.log_batch(self.run_id, params=items[i : i + MAX_PARAMS])

    def set_tags(self, tags: dict[str, str]) -> None:
        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        """Buffer metrics; they reach MLflow at the next flush (time-based, or at the end)."""
        ts = int(time.time() * 1000)
        self._buffer += [Metric(k, float(v), ts, step or 0) for k, v in metrics.items()]
        if time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        for i in range(0, len(self._buffer), MAX_BATCH):
            self.client.log_batch(self.run_id, metrics=self._buffer[i : i + MAX_BATCH])
        self._buffer = []
        self._last_flush = time.monotonic()

    def log_text(self, text: str, name: str) -> None:
        self.client.log_text(self.run_id, text, name)

    def log_json(self, data: Any, name: str) -> None:
        self.client.log_dict(self.run_id, data, name)

    def log_figure(self, figure: Any, name: str) -> None:
        self.client.log_figure(self.run_id, figure, name)

    def log_file(self, path: str | Path) -> None:
        self.client.log_artifact(self.run_id, str(path))

    def log_files(self, files: dict[str, bytes]) -> None:
        """Write in-memory files to a temp folder and upload them in one call."""
        with tempfile.TemporaryDirectory() as tmp:
            for name, content in files.items():
                (Path(tmp) / name).write_bytes(content)
            self.client.log_artifacts(self.run_id, tmp)

    # -- end -------------------------------------------------------------------------------
    def end(self, status: str = "FINISHED", reason: str | None = None) -> None:
        """Flush, record why a run did not finish (tag ``grokspec.failure_reason``), close."""
        try:
            self.flush()
        finally:
            if reason:
                self.client.set_tag(self.run_id, "grokspec.failure_reason", reason[:5000])
            self.client.set_terminated(self.run_id, status=RunStatus.to_string(
                getattr(RunStatus, status)
            ))
