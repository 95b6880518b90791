"""A real two-node Ray cluster on one machine with a real `mlflow server` (issue 19).

Two `ray start` processes (head and a second node), each with its own temp dir, and the
sweep's driver as a third process, as a user would run them. Ray binds every node to the
machine's interface address (it turns 127.0.0.1 into that address unless told it is on a
Mac/Windows, which then forbids a second node), so both nodes join ``<interface IP>:PORT``.
Token authentication (on by default for `ray start --head` in Ray 2.60, its token not shared
with processes that did not start the head) is off for this private test cluster:
``RAY_AUTH_MODE=disabled``.

Faults: the second node's raylet is SIGKILLed mid-point (every point ends FINISHED exactly
once, the lost attempt's child FAILED with the reason, nothing RUNNING, the parent agrees);
then Ctrl-C on a second sweep (the child closes KILLED with its flushed history).
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from tests.helpers import TINY_GROK
from tests.test_robust_server import Server, free_port

pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[ray]'")
pytestmark = pytest.mark.slow


def _env() -> dict[str, str]:
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "OMP_NUM_THREADS": "1",
           "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


class Node:
    """One `ray start` (head, or a node joining ``address``) with its own short temp dir
    (Ray's socket paths must stay under 107 characters)."""

    def __init__(self, address: str | None = None) -> None:
        self.temp = tempfile.mkdtemp(prefix="gsray", dir="/tmp")
        port = free_port()
        cmd = ["ray", "start", "--temp-dir", self.temp, "--num-cpus", "1",
               "--disable-usage-stats"]
        cmd += ["--address", address] if address else [
            "--head", "--port", str(port), "--include-dashboard", "false"]
        out = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=180)
        assert out.returncode == 0, out.stderr[-3000:]
        ip = re.search(r"Local node IP: (\S+)", out.stdout + out.stderr)
        assert ip, out.stdout + out.stderr
        self.address = f"{ip.group(1)}:{port}"

    def pids(self, name: str = "") -> list[int]:
        """Processes of this node: their command line names its temp dir."""
        found = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if self.temp in cmd and name in cmd:
                found.append(int(proc.name))
        return found

    def kill(self, name: str = "") -> None:
        for pid in self.pids(name):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        self.kill()
        shutil.rmtree(self.temp, ignore_errors=True)


def _spec(folder: Path, uri: str, experiment: str, points: list[float]) -> Path:
    spec = {**TINY_GROK, "analysis": {"metrics": []},
            "train": {**TINY_GROK["train"], "stop": None, "steps": 12000, "eval_every": 200},
            "tracking": {"experiment": experiment, "uri": uri, "checkpoint_every": 1000},
            "sweep": {"grid": {"train.optimizer.weight_decay": points},
                      "resources": {"cpus": 1}}}
    path = folder / f"{experiment}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _sweep(path: Path, address: str, folder: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "grokspec.cli", "sweep", str(path), "--executor", "ray",
         "--address", address], cwd=folder, env=_env(), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _children(client, experiment: str):  # noqa: ANN001, ANN202
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return [], None
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if r.data.tags.get("grokspec.sweep.role") == "parent"]
    kids = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return kids, (parents[0] if parents else None)


def _wait_running(client, experiment: str, n: int, evals: int, proc) -> list:  # noqa: ANN001
    deadline = time.monotonic() + 300
    while True:
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the sweep's children never got going"
        kids, _ = _children(client, experiment)
        going = [k for k in kids if k.info.status == "RUNNING"
                 and len(client.get_metric_history(k.info.run_id, "test/acc")) >= evals]
        if len(going) >= n:
            return going
        time.sleep(1.0)


def _history_rows(client, run_id: str) -> list[dict]:  # noqa: ANN001
    folder = client.download_artifacts(run_id, "history.csv", tempfile.mkdtemp())
    return list(csv.DictReader(io.StringIO(Path(folder).read_text())))


def test_two_node_cluster_survives_a_lost_node_and_ctrl_c(tmp_path: Path) -> None:
    from mlflow import MlflowClient

    server = Server(tmp_path, free_port())
    server.start()
    head = Node()
    second = Node(head.address)
    try:
        client = MlflowClient(tracking_uri=server.uri)
        # 1. the second node dies mid-point
        proc = _sweep(_spec(tmp_path, server.uri, "lost", [0.5, 1.0]), head.address, tmp_path)
        _wait_running(client, "lost", 2, evals=8, proc=proc)  # one point on each node
        second.kill("raylet")
        out, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err[-3000:]
        assert "[state-dump]" not in err, err[-3000:]
        kids, parent = _children(client, "lost")
        by_status: dict[str, list] = {}
        for k in kids:
            by_status.setdefault(k.info.status, []).append(k)
        assert "RUNNING" not in by_status
        finished = by_status["FINISHED"]
        hashes = [k.data.tags["grokspec.spec_hash"] for k in finished]
        assert len(hashes) == len(set(hashes)) == 2  # every point FINISHED exactly once
        lost = by_status["FAILED"]
        assert len(lost) == 1
        assert "lost" in lost[0].data.tags["grokspec.failure_reason"]
        assert "re-queued" in lost[0].data.tags["grokspec.failure_reason"]
        ckpts = [a.path for a in client.list_artifacts(lost[0].info.run_id, "checkpoint")]
        assert ckpts, "the lost attempt mirrored no checkpoint through the server"
        for k in finished:  # complete histories, the resumed one included
            steps = [m.step for m in client.get_metric_history(k.info.run_id, "test/acc")]
            assert sorted(steps) == list(range(0, 12001, 200))
            assert len(_history_rows(client, k.info.run_id)) == len(steps)
        assert parent.info.status == "FINISHED"
        assert "grokspec.failure_reason" not in parent.data.tags
        assert "2 finished" in (parent.data.tags.get("mlflow.note.content") or "")

        # 2. Ctrl-C on a second sweep (the head alone now): KILLED with flushed history
        proc = _sweep(_spec(tmp_path, server.uri, "stopped", [0.1]), head.address, tmp_path)
        _wait_running(client, "stopped", 1, evals=4, proc=proc)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 130, err[-3000:]
        kids, parent = _children(client, "stopped")
        assert [k.info.status for k in kids] == ["KILLED"]
        kid = kids[0]
        steps = [m.step for m in client.get_metric_history(kid.info.run_id, "test/acc")]
        assert len(steps) >= 4
        assert len(_history_rows(client, kid.info.run_id)) == len(steps)
        assert parent.info.status == "KILLED"
    finally:
        second.stop()
        head.stop()
        server.kill()
