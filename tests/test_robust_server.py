"""A tracking server that is down, or dies mid-run (issue 12). Real `mlflow server` processes
on 127.0.0.1, started by the test and stopped by their process group id.

Down at start: one line naming the URI and what to do, exit 2, within seconds, nothing
trained (before: silent for minutes, then a traceback). Dying mid-run: training completes,
the run's writes are spooled under grokspec_out/spool/, `grokspec sync` replays them into
the restarted server (before: training froze at the next metric flush).
"""

from __future__ import annotations

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
from tests.helpers import TINY_GROK


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_spec(folder: Path, uri: str, **train: object) -> Path:
    spec = {**TINY_GROK, "analysis": {"metrics": []},
            "train": {**TINY_GROK["train"], "stop": None, **train},
            "tracking": {"experiment": "served", "uri": uri}}
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_server_down_at_start_exits_2_fast(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    spec = write_spec(tmp_path, uri)
    start = time.monotonic()
    assert main(["run", str(spec), "--no-progress"]) == 2
    elapsed = time.monotonic() - start
    err = capsys.readouterr().err
    assert elapsed < 10, elapsed
    assert err.count("\n") == 1 and f"cannot reach the MLflow tracking server at {uri}" in err
    assert "mlflow server" in err and not (tmp_path / "grokspec_out").exists()


def test_server_down_at_start_cli_has_no_traceback(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, f"http://127.0.0.1:{free_port()}")
    proc = subprocess.run([sys.executable, "-m", "grokspec.cli", "run", str(spec),
                           "--no-progress"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: cannot reach the MLflow tracking server")


class Server:
    """`mlflow server` on 127.0.0.1 with a SQLite store in ``folder``."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder, self.port = folder, port
        self.uri = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        cmd = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1",
               "--port", str(self.port), "--workers", "1",
               "--backend-store-uri", f"sqlite:///{self.folder / 'server.db'}",
               "--artifacts-destination", str(self.folder / "server-artifacts")]
        self.proc = subprocess.Popen(cmd, cwd=self.folder, start_new_session=True,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        from grokspec.tracking.health import server_problem

        while server_problem(self.uri, timeout=1.0) is not None:
            assert self.proc.poll() is None, "mlflow server exited"
            assert time.monotonic() < deadline, "mlflow server did not come up"
            time.sleep(0.5)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the server and its workers
            self.proc.wait(timeout=30)


@pytest.mark.slow
def test_server_dies_mid_run_then_sync_restores(tmp_path: Path) -> None:
    from mlflow import MlflowClient

    server = Server(tmp_path, free_port())
    server.start()
    spec = write_spec(tmp_path, server.uri, steps=3000, eval_every=25)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.Popen([sys.executable, "-m", "grokspec.cli", "run", str(spec),
                             "--no-progress"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        client = MlflowClient(tracking_uri=server.uri)
        deadline = time.monotonic() + 180
        run = None
        while run is None:
            assert time.monotonic() < deadline and proc.poll() is None, "no metrics reached"
            time.sleep(0.5)
            exp = client.get_experiment_by_name("served")
            runs = client.search_runs([exp.experiment_id]) if exp else []
            run = runs[0] if runs and runs[0].data.metrics else None
        server.kill()
        out, err = proc.communicate(timeout=600)
    finally:
        proc.kill()
        server.kill()
    assert proc.returncode == 0, err[-3000:]
    assert "Traceback" not in err and "stopped answering" in err and "grokspec sync" in err
    spool = tmp_path / "grokspec_out" / "spool" / run.info.run_id
    assert (spool / "ops.jsonl").exists()

    server.start()  # the same store, back up
    try:
        sync = subprocess.run([sys.executable, "-m", "grokspec.cli", "sync"], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=300)
        assert sync.returncode == 0, sync.stderr[-3000:]
        assert f"synced run {run.info.run_id}" in sync.stdout
        restored = client.get_run(run.info.run_id)
        history = client.get_metric_history(run.info.run_id, "train/acc")
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    finally:
        server.kill()
    assert restored.info.status == "FINISHED"
    assert sorted(m.step for m in history) == list(range(0, 3001, 25))  # every evaluation
    assert {"history.csv", "summary.json"} <= artifacts
    assert not spool.exists()


class _Partial:
    """A local HTTP server that answers ``/health`` with 200 and every API call with
    ``api_status``, or never (``None``: it holds the connection past the client's timeout)."""

    def __init__(self, api_status: int | None) -> None:
        import http.server
        import threading

        api = api_status

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                if self.path == "/health":
                    self.send_response(200)
                    self.end_headers()
                    self.wfile.write(b"OK")
                elif api is None:
                    time.sleep(6)
                else:
                    self.send_response(api)
                    self.end_headers()
                    self.wfile.write(b"Invalid Host header - possible DNS rebinding attack")

            def log_message(self, *args: object) -> None:
                return None

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.uri = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize(("api_status", "expect"), [
    (None, "answers its health check but not its API"),
    (403, "--allowed-hosts"),
])
def test_a_server_answering_only_health_is_down_at_start(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch,
    api_status: int | None, expect: str,
) -> None:
    """Issue 21 item 3 and issue 19 item 4: `/health` is exempt from MLflow's checks, so the
    start-up check makes one real API call: a hung API or a 403 is exit 2 and one line."""
    monkeypatch.setattr("grokspec.tracking.health.CHECK_TIMEOUT_S", 1.0)
    server = _Partial(api_status)
    try:
        spec = write_spec(tmp_path, server.uri)
        start = time.monotonic()
        assert main(["run", str(spec), "--no-progress"]) == 2
        assert time.monotonic() - start < 10
    finally:
        server.close()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expect in err and not (tmp_path / "grokspec_out").exists()


def test_a_tracking_uri_with_a_garbage_port_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    spec = write_spec(tmp_path, "http://127.0.0.1:notaport")
    assert main(["run", str(spec), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot be parsed" in err


def test_ray_on_a_cluster_refuses_stores_other_nodes_cannot_share(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """A SQLite file, or a server whose artifact root is a local path: exit 2, one line, no
    Ray started, nothing trained; --shared-filesystem says every node mounts the path."""
    import yaml

    from grokspec.cli.main import main
    from grokspec.tracking import health
    from tests.helpers import TINY_GROK

    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump({**TINY_GROK, "sweep": {"seeds": [0, 1]},
                                    "tracking": {"uri": f"sqlite:///{tmp_path / 'm.db'}"}}))
    assert main(["sweep", str(spec), "--executor", "ray", "--address", "auto"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "is a file on this machine" in err[-1] and "--shared-filesystem" in err[-1]
    from mlflow import MlflowClient

    def located(where: str) -> None:  # a server that hands out this artifact location
        for method in ("get_experiment_by_name", "get_experiment"):
            real = getattr(MlflowClient, method)

            def get(self, key, real=real):  # noqa: ANN001, ANN202
                exp = real(self, key)
                if exp is not None:
                    object.__setattr__(exp, "_artifact_location", where)
                return exp
            monkeypatch.setattr(MlflowClient, method, get)

    # A server started with a local --default-artifact-root hands out plain paths.
    located("/srv/mlruns/1")
    monkeypatch.setattr(health, "is_http", lambda uri: True)
    problem = health.local_paths_problem(f"sqlite:///{tmp_path / 'm.db'}", "e")
    assert problem and "/srv/mlruns/1" in problem and "--artifacts-destination" in problem
    monkeypatch.undo()
    monkeypatch.setattr(health, "is_http", lambda uri: True)
    located("mlflow-artifacts:/1")
    assert health.local_paths_problem(f"sqlite:///{tmp_path / 'm.db'}", "e") is None
