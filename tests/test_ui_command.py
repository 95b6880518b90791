"""`grokspec ui` (issue 20 item 3): MLflow's UI on the specs' store, a free port, the link
with that port, a clean stop on Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path


def test_grokspec_ui_serves_the_store_on_a_free_port_and_stops_on_ctrl_c(
    tmp_path: Path, mlflow_uri: str, client  # noqa: ANN001
) -> None:
    exp_id = client.create_experiment("shown")
    proc = subprocess.Popen(
        [sys.executable, "-m", "grokspec.cli", "ui", "--uri", mlflow_uri, "--experiment",
         "shown"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True, env={**os.environ, "MLFLOW_TRACKING_URI": mlflow_uri})
    try:
        first = proc.stdout.readline()
        link = proc.stdout.readline()
        port = int(re.search(r"http://127\.0\.0\.1:(\d+)", first).group(1))
        assert link.startswith(f"chart view: http://127.0.0.1:{port}/#/experiments/{exp_id}/")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as resp:
            assert resp.status == 200
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
        raise AssertionError("the UI server is still running")
    except OSError:
        pass


def test_printed_lines_name_grokspec_ui_with_the_store() -> None:
    from grokspec.tracking.naming import ui_lines

    lines = ui_lines("sqlite:////x/mlflow.db", "3", "abc")
    assert lines[0] == ("open the UI: grokspec ui --uri sqlite:////x/mlflow.db "
                        "--experiment-id 3 --parent abc")
