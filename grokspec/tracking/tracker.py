"""The one place that talks to MLflow.

Uses :class:`mlflow.MlflowClient` directly (no global "active run"), so several runs can be
open in one process (a parent and its children) and nothing leaks between tests. Metrics are
buffered and sent with ``log_batch`` at most every ``flush_seconds`` (and at the end), so the
training loop never waits on the database.

Robustness (issue 12): the store is created/migrated under a file lock and writes meeting a
busy SQLite database are retried (:mod:`grokspec.tracking.store_lock`); each run carries its
owner's host/pid and a heartbeat refreshed at every flush (:mod:`grokspec.tracking.liveness`);
and when an HTTP tracking server stops answering mid-run, every further write of the run goes
to a local spool (:mod:`grokspec.tracking.spool`) so training is never lost or frozen.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunStatus, RunTag

from grokspec.tracking import liveness, naming
from grokspec.tracking import tags as tag
from grokspec.tracking.focus import focus
from grokspec.tracking.health import bound_http_retries, is_http, server_problem
from grokspec.tracking.spool import Spool, replay
from grokspec.tracking.store_lock import client_for, prepare_store, retry_locked

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


#: Spec fields that are not params: the store's location (machine-specific), the run's
#: name and extra tags (already the run's name and tags), and the description (the note).
UNLOGGED = ("tracking.uri", "tracking.run_name", "tracking.tags", "description", "paper")


def loggable(key: str, value: Any) -> bool:
    """A resolved-spec field worth a param: set (not None) and not in :data:`UNLOGGED`."""
    if value is None:
        return False
    return not any(key == u or key.startswith(u + ".") for u in UNLOGGED)


def get_or_create_experiment(client: MlflowClient, name: str, uri: str) -> str:
    """The experiment's id, creating it if needed (also the store, once per process, under
    the store lock). Two processes creating the same experiment at once: the loser finds the
    winner's."""
    prepare_store(uri)
    exp = retry_locked(lambda: client.get_experiment_by_name(name))
    if exp is not None:
        return exp.experiment_id
    try:
        return retry_locked(
            lambda: client.create_experiment(name, artifact_location=_artifact_root(uri)))
    except Exception:
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


def share_chart_view(client: MlflowClient, experiment_id: str,
                     parent_run_id: str | None = None) -> None:
    """Store, as an experiment tag, the chart view the printed UI link opens (see
    :func:`grokspec.tracking.naming.chart_view_url`), and mark the experiment as model
    training so MLflow opens its runs pages, not its GenAI ones, even from a plain
    ``mlflow ui``. A UI convenience: a store that refuses the tag costs a warning, never the
    run."""
    key = naming.SHARED_VIEW_TAG + naming.share_key(parent_run_id)
    state = json.dumps(naming.shared_view_state(parent_run_id))
    try:
        exp = retry_locked(lambda: client.get_experiment(experiment_id))
        if exp.tags.get(key) != state:
            retry_locked(lambda: client.set_experiment_tag(experiment_id, key, state))
        if naming.EXPERIMENT_KIND_TAG not in exp.tags:  # never overrides a kind set in the UI
            retry_locked(lambda: client.set_experiment_tag(
                experiment_id, naming.EXPERIMENT_KIND_TAG, naming.MODEL_TRAINING))
    except Exception as exc:  # noqa: BLE001 - see the docstring
        print(f"warning: the MLflow UI link will open the plain runs page (storing its chart "
              f"view failed: {type(exc).__name__}: {' '.join(str(exc).split())[:200]})",
              file=sys.stderr)


def server_unreachable(uri: str, exc: BaseException) -> bool:
    """Did a write to an HTTP tracking server fail because the server is gone (not because
    it refused the request)?"""
    if not is_http(uri):
        return False
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    text = str(exc)
    return any(s in text for s in ("Max retries exceeded", "Failed to establish",
                                   "Connection refused", "Connection aborted", "timed out",
                                   "RemoteDisconnected", "ConnectionError"))


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
        run_id: str | None = None,
    ) -> None:
        """Create a run, or with ``run_id`` write to an existing one (a sweep's parent run
        resumed, a comparison logged to the parent)."""
        if is_http(uri):
            bound_http_retries()  # a dead server costs seconds, not minutes per request
        self.client = client_for(uri)  # the store created/migrated under its lock first
        self.uri = uri
        #: "full" or "summary": how many-valued metric families reach MLflow (see focus).
        self.diagnostics = "full"
        if run_id is not None:
            self.run_id: str = run_id
            self.experiment_id = self.client.get_run(run_id).info.experiment_id
        else:
            self.experiment_id = get_or_create_experiment(self.client, experiment, uri)
            all_tags = {**liveness.owner_tags(), **(tags or {})}
            if parent_run_id:
                all_tags[tag.PARENT_RUN_ID] = parent_run_id
            run = retry_locked(lambda: self.client.create_run(
                self.experiment_id, run_name=run_name, tags=all_tags))
            self.run_id = run.info.run_id
        self.spool = Spool(uri, self.run_id)
        self.flush_seconds = flush_seconds
        self._buffer: list[Metric] = []
        self._last_flush = time.monotonic()
        self._heart: _Heartbeat | None = None
        if run_id is None:  # a run this process owns: beat until it ends
            self._heart = _Heartbeat(self)

    @classmethod
    def attach(cls, uri: str, run_id: str, flush_seconds: float = 5.0) -> Tracker:
        """A writer for a run that exists (status unchanged)."""
        return cls(uri, "", "", flush_seconds=flush_seconds, run_id=run_id)

    # -- logging ---------------------------------------------------------------------------
    def log_params(self, params: dict[str, Any]) -> None:
        """Log params, leaving out what is not a setting of the run (see :func:`loggable`)."""
        items = [
            Param(k, json.dumps(v) if isinstance(v, (list, dict)) else str(v))
            for k, v in params.items()
            if loggable(k, v)
        ]
        items = [Param(p.key, p.value[:MAX_PARAM_LEN]) for p in items]
        for i in range(0, len(items), MAX_PARAMS):
            chunk = items[i : i + MAX_PARAMS]
            self._send(lambda c=chunk: self.client.log_batch(self.run_id, params=c),
                       lambda c=chunk: self.spool.batch(params=c))

    def set_tags(self, tags: dict[str, str]) -> None:
        items = [RunTag(k, str(v)) for k, v in tags.items()]
        self._send(lambda: self.client.log_batch(self.run_id, tags=items),
                   lambda: self.spool.batch(tags=items))

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        """Buffer metrics; they reach MLflow at the next flush (time-based, or at the end)."""
        ts = int(time.time() * 1000)
        metrics = focus(metrics, self.diagnostics)
        self._buffer += [Metric(k, float(v), ts, step or 0) for k, v in metrics.items()]
        if time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        """Send the buffered metrics, with the heartbeat tag in the same request."""
        beat = [RunTag(liveness.HEARTBEAT, liveness.heartbeat_value())]
        for i in range(0, max(len(self._buffer), 1), MAX_BATCH):
            chunk = self._buffer[i : i + MAX_BATCH]
            self._send(
                lambda c=chunk: self.client.log_batch(self.run_id, metrics=c, tags=beat),
                lambda c=chunk: self.spool.batch(metrics=c, tags=beat),
            )
        self._buffer = []
        self._last_flush = time.monotonic()

    def _send(self, call: Callable[[], Any], record: Callable[[], Any]) -> None:
        """One write: to MLflow (retried while SQLite is busy), or to the local spool once
        the tracking server has stopped answering (then for the rest of the run)."""
        if self.spool.active:
            record()
            return
        try:
            retry_locked(call)
        except Exception as exc:
            if not server_unreachable(self.uri, exc):
                raise
            self.spool.start(" ".join(str(exc).split())[:500])
            print(f"warning: the MLflow tracking server {self.uri} stopped answering; "
                  f"training goes on, and run {self.run_id}'s metrics, tags, artifacts and "
                  f"final status are written to {self.spool.dir} (replay them with "
                  "`grokspec sync` once the server is back)", file=sys.stderr)
            record()

    def log_dataset(
        self, name: str, digest: str, n_train: int, n_test: int, source: dict[str, Any]
    ) -> None:
        """What ``mlflow.log_input`` does, through the client: the run's split as an MLflow
        dataset (the UI's Datasets column and filter). ``digest`` is the split fingerprint,
        so runs trained on the identical examples show the identical dataset."""
        profile = {"num_rows": n_train + n_test, "train_rows": n_train, "test_rows": n_test}
        ds = Dataset(name=name, digest=digest, source_type="code",
                     source=json.dumps(source, sort_keys=True, default=str),
                     profile=json.dumps(profile))
        context = InputTag(key=tag.DATASET_CONTEXT, value="train+test")
        # Not spooled: the dataset input is a UI convenience (the split is in the tags).
        self._send(lambda: self.client.log_inputs(
            self.run_id, datasets=[DatasetInput(ds, tags=[context])]), lambda: None)

    def log_experiment_input(self, experiment: Any, dataset: Any, fingerprint: str) -> None:
        """For one experiment's run: its split as the run's dataset input (kind, size,
        fingerprint as digest, the dataset spec as source) and its ``analysis.diagnostics``
        choice for the metrics that follow."""
        self.diagnostics = getattr(experiment.analysis, "diagnostics", "summary")
        if not self.spool.active:
            share_chart_view(self.client, self.experiment_id)  # the link printed after a run
        self.log_dataset(
            experiment.dataset.kind, fingerprint, int(dataset.n_train), int(dataset.n_test),
            {"spec": experiment.dataset.model_dump(mode="json"), "seed": experiment.seed},
        )

    def share_children_view(self) -> None:
        """The chart view of this (parent) run's children, for the printed UI link."""
        share_chart_view(self.client, self.experiment_id, self.run_id)

    def describe(self, description: str) -> None:
        """The run's description (markdown, shown on its page in the UI)."""
        self.set_tags({tag.NOTE: description})

    def log_text(self, text: str, name: str) -> None:
        self._log_named(name, text.encode())

    def log_json(self, data: Any, name: str) -> None:
        self._log_named(name, json.dumps(data, indent=2).encode())

    def log_figure(self, figure: Any, name: str) -> None:
        buf = io.BytesIO()
        figure.savefig(buf, format=Path(name).suffix.lstrip(".") or "png")
        self._log_named(name, buf.getvalue())

    def _log_named(self, name: str, content: bytes) -> None:
        """One file at the artifact path ``name`` (``a/b.json``: file b.json in folder a)."""
        _check_artifact_name(name)
        folder, _, base = name.rpartition("/")
        self.log_files({base: content}, folder or None)

    def log_file(self, path: str | Path, artifact_path: str | None = None) -> None:
        if artifact_path:
            _check_artifact_name(artifact_path)
        self._send(lambda: self.client.log_artifact(self.run_id, str(path), artifact_path),
                   lambda: self.spool.artifacts(Path(path), artifact_path))

    def log_files(self, files: dict[str, bytes], artifact_path: str | None = None) -> None:
        """Write in-memory files to a temp folder and upload them in one call."""
        if artifact_path:
            _check_artifact_name(artifact_path)
        with tempfile.TemporaryDirectory() as tmp:
            for name, content in files.items():
                _check_artifact_name(name)
                target = Path(tmp) / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content)
            self._send(lambda: self.client.log_artifacts(self.run_id, tmp, artifact_path),
                       lambda: self.spool.artifacts(Path(tmp), artifact_path))

    def reopen(self) -> None:
        """Mark an ended run RUNNING again (a sweep resumed in its old parent run), owned by
        this process now (so ``grokspec gc`` judges it by this process's pid)."""
        self.client.update_run(self.run_id, status="RUNNING")
        self.set_tags(liveness.owner_tags())
        # the reason it ended last time no longer holds once it runs again (end() sets one)
        with contextlib.suppress(Exception):
            self.client.delete_tag(self.run_id, tag.FAILURE_REASON)

    def beat(self) -> None:
        """Refresh the heartbeat of a run that logs no metrics for long (a sweep's parent)."""
        self.set_tags({liveness.HEARTBEAT: liveness.heartbeat_value()})

    # -- end -------------------------------------------------------------------------------
    def end(self, status: str = "FINISHED", reason: str | None = None) -> None:
        """Flush, record why a run did not finish (tag ``grokspec.failure_reason``), close.

        A spooled run (its server stopped answering) is replayed now if the server is back,
        else its spool stays for ``grokspec sync``."""
        if self._heart is not None:
            self._heart.stop()
        status = RunStatus.to_string(getattr(RunStatus, status))
        try:
            self.flush()
        finally:
            if reason:
                self.set_tags({tag.FAILURE_REASON: reason[:5000]})
            self._send(lambda: self.client.set_terminated(self.run_id, status=status),
                       lambda: self.spool.terminate(status))
        if self.spool.active:
            self._replay_spool()

    def _replay_spool(self) -> None:
        if server_problem(self.uri, timeout=3.0) is None:
            try:
                replay(self.spool.dir, self.client)
                print(f"the tracking server {self.uri} is back: run {self.run_id} replayed "
                      "from its local spool", file=sys.stderr)
                return
            except Exception:  # noqa: BLE001 - keep the spool for `grokspec sync`
                pass
        print(f"run {self.run_id} ended while the tracking server {self.uri} was unreachable:"
              f" everything it logged is in {self.spool.dir}; run `grokspec sync` once the "
              "server is back", file=sys.stderr)


class _Heartbeat:
    """Refresh a run's heartbeat tag every ``liveness.HEARTBEAT_EVERY_S`` seconds from a
    daemon thread, so liveness across hosts does not wait for the run's next evaluation. One
    small request a minute, never on the training path; a failed beat is skipped (the next
    metric flush or beat tries again), and a spooled run does not beat (its server is gone).
    A SIGKILL stops it with the process: that silence is what marks the run dead."""

    def __init__(self, tracker: Tracker, every: float | None = None) -> None:
        self.tracker = tracker
        self.every = liveness.HEARTBEAT_EVERY_S if every is None else every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"grokspec-heartbeat-{tracker.run_id[:8]}")
        self._thread.start()

    def _run(self) -> None:
        t = self.tracker
        while not self._stop.wait(self.every):
            if t.spool.active:
                continue
            try:
                t.client.set_tag(t.run_id, liveness.HEARTBEAT, liveness.heartbeat_value())
            except Exception:  # noqa: BLE001, S112 - a missed beat is retried next interval
                continue

    def stop(self) -> None:
        self._stop.set()


def _check_artifact_name(name: str) -> None:
    """Artifact names are relative paths inside the run's artifact folder: a name with
    ``..``, a leading ``/`` or a drive never writes outside it."""
    parts = Path(name).parts
    if not name or Path(name).is_absolute() or ".." in parts or "\\" in name:
        raise ValueError(f"artifact name {name!r} must be a relative path without '..'")
