"""Sweeps stop when told (issue 12): real `grokspec sweep --workers 2` processes.

Before: SIGTERM killed the driver (143) but orphaned the workers, which kept training and
took further points from the queue, and the parent stayed RUNNING forever; a re-run after a
SIGKILL left the dead attempt's children RUNNING under the FINISHED parent.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from grokspec.tracking import liveness
from tests.helpers import TINY_GROK


def sweep_file(folder: Path, steps: int, n_points: int = 4) -> Path:
    decays = [0.5, 1.0, 1.5, 2.0][:n_points]
    spec = {**TINY_GROK, "name": "stoppable", "analysis": {"metrics": []},
            "train": {**TINY_GROK["train"], "steps": steps, "stop": None, "eval_every": 50},
            "tracking": {"experiment": "stoppable"},
            "sweep": {"grid": {"train.optimizer.weight_decay": decays}, "vectorize": False}}
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def start(path: Path, uri: str) -> subprocess.Popen:
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "grokspec.cli", "sweep", str(path), "--workers", "2"],
        cwd=path.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)


def runs_of(client):  # noqa: ANN001, ANN201
    exp = client.get_experiment_by_name("stoppable")
    return client.search_runs([exp.experiment_id]) if exp else []


def running_children(client, n: int, proc: subprocess.Popen, timeout: float = 240):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while True:
        kids = [r for r in runs_of(client) if "mlflow.parentRunId" in r.data.tags
                and r.info.status == "RUNNING"]
        if len(kids) >= n:
            return kids
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the children never started"
        time.sleep(0.2)


def gone(pid: int, start: str | None, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while liveness.pid_alive(pid, start):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


@pytest.mark.parametrize(
    ("how", "code", "reason"),
    [("SIGTERM", 143, "terminated (SIGTERM)"),
     pytest.param("Ctrl-C", 130, "interrupted (Ctrl-C)", marks=pytest.mark.slow)],
)
def test_a_signal_stops_workers_and_closes_everything(
    tmp_path: Path, client, mlflow_uri: str, how: str, code: int, reason: str  # noqa: ANN001
) -> None:
    """SIGTERM to the driver (kill, Slurm), or SIGINT to the whole process group (Ctrl-C in
    a terminal)."""
    proc = start(sweep_file(tmp_path, steps=10**6), mlflow_uri)
    try:
        kids = running_children(client, 2, proc)
        workers = {(int(r.data.tags[liveness.PID]), r.data.tags[liveness.PID_START]) for r in kids}
        sent = time.monotonic()
        if how == "SIGTERM":
            proc.send_signal(signal.SIGTERM)
        else:
            os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        took = time.monotonic() - sent
    finally:
        os.killpg(proc.pid, signal.SIGKILL) if proc.poll() is None else None
    assert proc.returncode == code, err[-3000:]
    assert "Traceback" not in err
    assert took < 60, took  # prompt: the workers are stopped, not waited for
    assert all(gone(pid, start) for pid, start in workers)  # no orphan keeps training
    runs = runs_of(client)
    parent = [r for r in runs if r.data.tags.get("grokspec.sweep.role") == "parent"]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parent) == 1 and parent[0].info.status == "KILLED"
    assert parent[0].data.tags["grokspec.failure_reason"].startswith(reason)
    assert len(children) == 2  # no queued point was started after the signal
    for child in children:
        assert child.info.status == "KILLED"
        assert reason in child.data.tags["grokspec.failure_reason"]


def kill_attempt(path: Path, client, uri: str) -> set[str]:  # noqa: ANN001
    """Start the sweep, SIGKILL driver and workers at once (a lost node) while two points
    run; the ids of the children it leaves RUNNING."""
    proc = start(path, uri)
    try:
        kids = running_children(client, 2, proc)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    dead = {r.info.run_id for r in kids}
    assert {client.get_run(r).info.status for r in dead} == {"RUNNING"}
    return dead


def check_rerun_closes(path: Path, client, uri: str, dead: set[str]) -> None:  # noqa: ANN001
    again = start(path, uri)
    _, err = again.communicate(timeout=900)
    assert again.returncode == 0, err[-3000:]
    assert "process died" in err
    for run_id in dead:
        run = client.get_run(run_id)
        assert run.info.status == "FAILED"
        assert run.data.tags["grokspec.failure_reason"].startswith("process died")
    runs = runs_of(client)
    assert not [r for r in runs if r.info.status == "RUNNING"]


def test_next_sweep_closes_a_dead_attempts_children(tmp_path: Path, client, mlflow_uri: str
                                                    ) -> None:
    """The dead attempt ran forever-long points; the next sweep in the experiment (short
    points, its own parent) closes the dead children and the dead parent FAILED."""
    dead = kill_attempt(sweep_file(tmp_path, steps=10**6), client, mlflow_uri)
    check_rerun_closes(sweep_file(tmp_path, steps=50, n_points=2), client, mlflow_uri, dead)
    parents = {r.info.status for r in runs_of(client)
               if r.data.tags.get("grokspec.sweep.role") == "parent"}
    assert parents == {"FAILED", "FINISHED"}  # the dead attempt's, the new one's


@pytest.mark.slow
def test_rerun_of_the_same_sweep_after_sigkill(tmp_path: Path, client, mlflow_uri: str) -> None:
    """The issue's scenario: the same sweep re-run finishes its points in its old parent and
    leaves none of the dead attempt's children RUNNING under the FINISHED parent."""
    path = sweep_file(tmp_path, steps=400)
    dead = kill_attempt(path, client, mlflow_uri)
    check_rerun_closes(path, client, mlflow_uri, dead)
    parent = [r for r in runs_of(client) if r.data.tags.get("grokspec.sweep.role") == "parent"]
    assert [p.info.status for p in parent] == ["FINISHED"]


@pytest.mark.slow
def test_sigkilled_driver_takes_its_workers_along(tmp_path: Path, client, mlflow_uri: str
                                                  ) -> None:
    """Only the driver is SIGKILLed: its workers are told (PR_SET_PDEATHSIG), close their
    points KILLED and exit instead of training on as orphans."""
    if not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux-only")
    proc = start(sweep_file(tmp_path, steps=10**6), mlflow_uri)
    try:
        kids = running_children(client, 2, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        for r in kids:
            assert gone(int(r.data.tags[liveness.PID]), r.data.tags[liveness.PID_START], 60)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
    assert {client.get_run(r.info.run_id).info.status for r in kids} == {"KILLED"}
