"""A real Ctrl-C (SIGINT) to `grokspec run` marks the MLflow run KILLED and exits 130."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tests.helpers import TINY_GROK


def test_sigint_marks_run_killed(tmp_path: Path, client, mlflow_uri: str) -> None:
    spec = tmp_path / "long.yaml"
    long = {**TINY_GROK, "train": {**TINY_GROK["train"], "steps": 10**7, "stop": None}}
    spec.write_text(yaml.safe_dump(long))
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_uri}
    proc = subprocess.Popen(
        [sys.executable, "-m", "grokspec.cli", "run", str(spec), "--no-progress"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 120
        run = None
        while time.monotonic() < deadline and run is None:
            time.sleep(0.5)
            exp = client.get_experiment_by_name("tests")
            runs = client.search_runs([exp.experiment_id]) if exp else []
            run = runs[0] if runs and runs[0].data.metrics else None
        assert run is not None, "the run never started logging"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    run = client.get_run(run.info.run_id)
    assert run.info.status == "KILLED"
    assert run.data.tags["grokspec.failure_reason"].startswith("interrupted (Ctrl-C)")
