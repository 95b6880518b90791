"""The MLflow gateway on a real SQLite store, without training: the Tracker writes runs the
way grokspec does, the RunStore finds them the way every reader does."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from grokspec.tracking import store as store_module
from grokspec.tracking import tags
from grokspec.tracking.store import RunStore
from grokspec.tracking.tracker import Tracker, loggable

ROOT = Path(__file__).resolve().parent.parent


def child(uri: str, parent: str, spec_hash: str, status: str = "FINISHED") -> str:
    t = Tracker(uri, "exp", f"run-{spec_hash}", tags={tags.LEARNER: "mlp",
                                                      tags.SPEC_HASH: spec_hash},
                parent_run_id=parent)
    t.log_metrics({"test/acc": 0.5}, step=0)
    t.log_metrics({"test/acc": 1.0, "train/acc": 1.0}, step=10)
    t.end(status, None if status == "FINISHED" else "broke")
    return t.run_id


def test_children_latest_and_parent_lookup(mlflow_uri: str, monkeypatch) -> None:  # noqa: ANN001
    parent = Tracker(mlflow_uri, "exp", "sweep", tags={tags.SWEEP_HASH: "h1",
                                                        tags.SWEEP_ROLE: "parent"})
    first = child(mlflow_uri, parent.run_id, "a")
    failed_retry = child(mlflow_uri, parent.run_id, "a", "FAILED")
    b_failed = child(mlflow_uri, parent.run_id, "b", "FAILED")
    b_ok = child(mlflow_uri, parent.run_id, "b")
    Tracker(mlflow_uri, "exp", "stranger", tags={tags.LEARNER: "gp"}).end()
    store = RunStore(mlflow_uri)
    exp_id = store.require_experiment("exp")
    kids = store.children(parent.run_id)
    assert [r.info.run_id for r in kids] == [first, failed_retry, b_failed, b_ok]
    assert store.finished_children(parent.run_id) == {"a": first, "b": b_ok}
    latest = store.latest_by_spec(kids)  # FINISHED beats a later failed retry
    assert {h: r.info.run_id for h, r in latest.items()} == {"a": first, "b": b_ok}
    assert store.sweep_parent(exp_id, "h1") == parent.run_id
    assert store.sweep_parent(exp_id, "other") is None
    assert [r.info.run_id for r in store.sweep_parents(exp_id)] == [parent.run_id]
    assert store.latest_finished(exp_id, "b").info.run_id == b_ok
    assert store.parent_of(store.run(first)) == parent.run_id
    assert len(store.grokspec_runs("exp")) == 5  # the parent trains nothing: not a run here
    assert store.metric_history(first, ["test/acc", "train/acc"]) == [
        {"step": 0, "test/acc": 0.5}, {"step": 10, "test/acc": 1.0, "train/acc": 1.0}]
    monkeypatch.setattr(store_module, "PAGE", 2)  # paging past a page of results
    assert len(store.search([exp_id])) == 6
    assert len(store.search([exp_id], limit=3)) == 3


def test_artifact_tables_and_attach(mlflow_uri: str) -> None:
    t = Tracker(mlflow_uri, "exp", "r")
    t.log_files({"history.csv": b"step,test/acc\n0,0.25\n10,1.0\n",
                 "summary.json": json.dumps({"phase": "grokking"}).encode()})
    t.end()
    store = RunStore(mlflow_uri)
    assert store.history_table(t.run_id) == [{"step": 0.0, "test/acc": 0.25},
                                             {"step": 10.0, "test/acc": 1.0}]
    assert store.summary(t.run_id) == {"phase": "grokking"}
    other = Tracker(mlflow_uri, "exp", "no-artifacts")
    assert store.summary(other.run_id) == {}
    again = Tracker.attach(mlflow_uri, t.run_id)
    again.reopen()
    assert store.run(t.run_id).info.status == "RUNNING"
    again.describe("**hello**")
    again.end()
    run = store.run(t.run_id)
    assert run.info.status == "FINISHED" and run.data.tags[tags.NOTE] == "**hello**"


def test_loggable_params() -> None:
    assert loggable("train.steps", 10) and loggable("tracking.experiment", "x")
    assert not loggable("tracking.uri", "sqlite:////abs/mlflow.db")
    assert not loggable("tracking.tags.owner", "me") and not loggable("tracking.tags", {})
    assert not loggable("tracking.run_name", "r") and not loggable("dataset.noise", None)


def test_only_the_tracking_package_talks_to_mlflow() -> None:
    """Issue 10: one gateway. grep, as the issue states it."""
    out = subprocess.run(
        ["grep", "-rln", "-E", r"MlflowClient|import mlflow|from mlflow", "grokspec/"],
        cwd=ROOT, capture_output=True, text=True,
    ).stdout.split()
    outside = [p for p in out if not p.startswith("grokspec/tracking/") and p.endswith(".py")]
    assert outside == []
