"""Signals and dead processes (issue 12): real `grokspec run` processes, a real store.

- SIGTERM (kill, timeout, Slurm preemption, docker stop): exit 143, the run KILLED with the
  reason, every evaluation up to the signal in MLflow (flushed), partial artifacts.
- SIGKILL (OOM killer, node loss), then `grokspec run --resume`: the dead run is closed
  FAILED "process died (...)", the resumed run continues from the checkpoint and its history
  equals an uninterrupted run's exactly (also with Grokfast, whose filter state is in the
  checkpoint).
- `grokspec gc` closes a dead run and leaves a live one alone (negative control).
"""

from __future__ import annotations

import csv
import io
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from grokspec.cli.main import main
from grokspec.tracking import liveness
from tests.helpers import TINY_GROK

KEYS = ("train/acc", "test/acc", "train/loss", "test/loss")


def spec_file(folder: Path, name: str = "sig", **train: object) -> Path:
    spec = {**TINY_GROK, "name": name, "analysis": {"metrics": []},
            "train": {**TINY_GROK["train"], "stop": None, **train},
            "tracking": {"experiment": "signals", "checkpoint_every": 100}}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def start(spec: Path, uri: str, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "grokspec.cli", "run", str(spec), "--no-progress", *extra],
        cwd=spec.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(cond, proc: subprocess.Popen, timeout: float = 180.0):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        assert proc.poll() is None, f"the run ended first: {proc.communicate()[1][-2000:]}"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def logging_run(client, name: str):  # noqa: ANN001, ANN201
    """The RUNNING run called ``name`` once its first checkpoint is on disk."""
    if not list(Path("grokspec_out/checkpoints").glob(f"{name}-*.pt")):
        return None
    exp = client.get_experiment_by_name("signals")
    runs = client.search_runs([exp.experiment_id], f"attributes.run_name = '{name}'",
                              order_by=["attributes.start_time DESC"], max_results=1)
    return runs[0] if runs else None


def history(client, run_id: str) -> dict[str, list[tuple[int, float]]]:  # noqa: ANN001
    return {k: sorted((m.step, m.value) for m in client.get_metric_history(run_id, k))
            for k in KEYS}


def test_sigterm_closes_killed_with_flushed_metrics(tmp_path: Path, client, mlflow_uri: str
                                                    ) -> None:
    proc = start(spec_file(tmp_path, steps=10**6), mlflow_uri)
    try:
        run = wait_for(lambda: logging_run(client, "sig"), proc)
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 143, err[-2000:]
    assert "Traceback" not in err
    run = client.get_run(run.info.run_id)
    assert run.info.status == "KILLED"
    assert run.data.tags["grokspec.failure_reason"].startswith("terminated (SIGTERM) after step")
    path = client.download_artifacts(run.info.run_id, "history.csv", str(tmp_path))
    rows = list(csv.DictReader(io.StringIO(Path(path).read_text())))
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "train/acc")]
    assert steps == [int(float(r["step"])) for r in rows]  # nothing buffered was dropped
    last = int(run.data.tags["grokspec.failure_reason"].rsplit(" ", 1)[1])
    assert steps[-1] == last


@pytest.mark.parametrize("grokfast", [False, True], ids=["plain", "grokfast"])
def test_sigkill_then_resume_equals_uninterrupted(tmp_path: Path, client, mlflow_uri: str,
                                                  grokfast: bool) -> None:
    train = {"steps": 1500, "eval_every": 25}
    if grokfast:
        train["grokfast"] = {"filter": "ema", "alpha": 0.98, "lamb": 2.0}
    name = "gf" if grokfast else "plain"
    spec = spec_file(tmp_path, name, **train)
    proc = start(spec, mlflow_uri)
    try:
        killed = wait_for(lambda: logging_run(client, name), proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        proc.kill()
    assert client.get_run(killed.info.run_id).info.status == "RUNNING"  # what SIGKILL leaves

    resumed = start(spec, mlflow_uri, "--resume")
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err[-3000:]
    assert "resumed from" in err and "process died" in err
    dead = client.get_run(killed.info.run_id)
    assert dead.info.status == "FAILED"
    assert dead.data.tags["grokspec.failure_reason"].startswith("process died (no heartbeat")

    exp = client.get_experiment_by_name("signals")
    runs = client.search_runs([exp.experiment_id], f"attributes.run_name = '{name}'",
                              order_by=["attributes.start_time ASC"])
    resumed_run = runs[-1]
    assert resumed_run.info.status == "FINISHED"
    assert not list(Path("grokspec_out/checkpoints").glob(f"{name}-*.pt"))

    # The same spec, uninterrupted, in this process (one torch thread, as the subprocess).
    fresh = spec.with_name(f"{name}-fresh.yaml")
    data = yaml.safe_load(spec.read_text())
    data["tracking"] = {"experiment": "signals-fresh"}
    fresh.write_text(yaml.safe_dump(data))
    assert main(["run", str(fresh), "--no-progress"]) == 0
    ref = client.search_runs([client.get_experiment_by_name("signals-fresh").experiment_id])[0]
    got, want = history(client, resumed_run.info.run_id), history(client, ref.info.run_id)
    assert [s for s, _ in got["train/acc"]] == list(range(0, 1501, 25))
    assert got == want


@pytest.mark.slow
def test_gc_closes_the_dead_and_spares_the_living(tmp_path: Path, client, mlflow_uri: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    alive = start(spec_file(tmp_path, "alive", steps=10**6), mlflow_uri)
    doomed = start(spec_file(tmp_path, "doomed", steps=10**6), mlflow_uri)
    try:
        live_run = wait_for(lambda: logging_run(client, "alive"), alive)
        dead_run = wait_for(lambda: logging_run(client, "doomed"), doomed)
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=60)
        assert main(["gc", "--dry-run"]) == 0
        assert client.get_run(dead_run.info.run_id).info.status == "RUNNING"
        assert main(["gc"]) == 0
        out = capsys.readouterr().out
        assert f"closed run {dead_run.info.run_id}" in out and live_run.info.run_id not in out
        assert client.get_run(dead_run.info.run_id).info.status == "FAILED"
        assert client.get_run(live_run.info.run_id).info.status == "RUNNING"
        alive.send_signal(signal.SIGTERM)
        alive.communicate(timeout=120)
    finally:
        alive.kill()
        doomed.kill()
    assert client.get_run(live_run.info.run_id).info.status == "KILLED"


def test_liveness_verdicts() -> None:
    """Same host: a live pid is alive, a dead or recycled one is not; other host: heartbeat
    age; no owner tags: never judged."""
    me = liveness.owner_tags()
    assert not liveness.judge(me).dead
    recycled = {**me, liveness.PID_START: "1"}
    assert liveness.judge(recycled).dead
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    gone = {**me, liveness.PID: str(child.pid), liveness.PID_START: ""}
    verdict = liveness.judge(gone)
    assert verdict.dead and verdict.reason.startswith("process died (no heartbeat since")
    other = {**me, liveness.HOST: socket.gethostname() + "-elsewhere"}
    assert not liveness.judge(other).dead
    old = {**other, liveness.HEARTBEAT: liveness.heartbeat_value(time.time() - 7200)}
    assert liveness.judge(old).dead and "120 min ago" in liveness.judge(old).reason
    assert not liveness.judge({"mlflow.runName": "x"}).dead
    # The limit follows the run's own heartbeat interval (a lost node: minutes, not an hour);
    # runs logged before the interval was recorded keep the hour; --stale-after overrides.
    quiet = {**other, liveness.HEARTBEAT: liveness.heartbeat_value(time.time() - 660)}
    assert liveness.judge(quiet).dead and "limit 10 min" in liveness.judge(quiet).reason
    recent = {**other, liveness.HEARTBEAT: liveness.heartbeat_value(time.time() - 300)}
    assert not liveness.judge(recent).dead
    legacy = {k: v for k, v in quiet.items() if k != liveness.HEARTBEAT_EVERY}
    assert not liveness.judge(legacy).dead
    assert liveness.judge(legacy, stale_after=600).dead


def test_a_run_beats_while_it_is_quiet(mlflow_uri: str, client) -> None:  # noqa: ANN001
    """The heartbeat thread refreshes the tag between metric flushes and stops at the end."""
    from grokspec.tracking.tracker import Tracker, _Heartbeat

    run = Tracker(mlflow_uri, "signals", "quiet")
    assert run._heart is not None
    run._heart.stop()
    run._heart = _Heartbeat(run, every=0.2)
    client.set_tag(run.run_id, liveness.HEARTBEAT, "0")
    deadline = time.time() + 10
    while client.get_run(run.run_id).data.tags[liveness.HEARTBEAT] == "0":
        assert time.time() < deadline, "no heartbeat within 10 s"
        time.sleep(0.1)
    run.end()
    assert not run._heart._thread.is_alive() or (run._heart._thread.join(2) is None
                                                and not run._heart._thread.is_alive())


def test_gc_in_process(client, mlflow_uri: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The same verdicts through `grokspec gc`, without subprocess start-up: a run owned by a
    finished process is closed, one owned by this (live) process is not."""
    from grokspec.tracking.tracker import Tracker

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = Tracker(mlflow_uri, "signals", "dead")
    dead.set_tags({liveness.PID: str(child.pid), liveness.PID_START: ""})
    live = Tracker(mlflow_uri, "signals", "live")
    assert main(["gc"]) == 0
    out = capsys.readouterr().out
    assert f"closed run {dead.run_id}" in out and live.run_id not in out
    assert client.get_run(dead.run_id).info.status == "FAILED"
    assert client.get_run(live.run_id).info.status == "RUNNING"
    live.end()
