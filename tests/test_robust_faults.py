"""Faults of issue 21 beyond the spec: a corrupt checkpoint, a foreign or half-built store.
Each ends in one line naming the cause and what to do, exit 2, before any run exists, and
the file is left as it was."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from grokspec.cli.main import main
from grokspec.run import run_experiment
from grokspec.spec.loading import load_spec
from grokspec.training.checkpoint import checkpoint_path
from tests.helpers import TINY_GROK, interrupted_at


def spec_file(folder: Path, **tracking: object) -> Path:
    spec = {**TINY_GROK, "analysis": {"metrics": []},
            "train": {**TINY_GROK["train"], "stop": None, "steps": 60, "eval_every": 10},
            "tracking": {"experiment": "faults", **tracking}}
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_a_corrupt_checkpoint_is_refused_before_a_run_exists(
    mlflow_uri: str, client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,  # noqa: ANN001
    capsys: pytest.CaptureFixture,
) -> None:
    path = spec_file(tmp_path, checkpoint_every=10)
    exp = load_spec(path)
    with interrupted_at(monkeypatch, 30):
        run_experiment(exp, device="cpu")
    ckpt = checkpoint_path(exp)
    data = ckpt.read_bytes()
    ckpt.write_bytes(data[: len(data) // 2])  # cut to half, as a full disk or a kill might
    capsys.readouterr()
    runs_before = len(client.search_runs([client.get_experiment_by_name("faults").experiment_id]))
    assert main(["run", str(path), "--resume", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: checkpoint {ckpt} cannot be read")
    assert "delete it" in err[0] and "without --resume" in err[0]
    assert ckpt.read_bytes() == data[: len(data) // 2]  # untouched
    exp_id = client.get_experiment_by_name("faults").experiment_id
    assert len(client.search_runs([exp_id])) == runs_before  # no run opened


def _store_error(folder: Path, capsys: pytest.CaptureFixture) -> str:
    path = spec_file(folder, uri=f"sqlite:///{folder / 'mlflow.db'}")
    assert main(["run", str(path), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err  # one line: no MLflow INFO/ERROR lines, no traceback
    return err[0]


def test_another_tools_sqlite_database_is_refused_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    import sqlite3

    db = tmp_path / "mlflow.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE notes (x)")
    con.commit()
    con.close()
    before = db.read_bytes()
    assert "not an MLflow store (tables: notes)" in _store_error(tmp_path, capsys)
    assert db.read_bytes() == before


def test_a_half_created_store_says_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    import sqlite3

    db = tmp_path / "mlflow.db"  # what an older grokspec left when killed mid-migration
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE experiments (experiment_id INTEGER PRIMARY KEY, name TEXT)")
    con.commit()
    con.close()
    before = db.read_bytes()
    err = _store_error(tmp_path, capsys)
    assert "interrupted half-way (no schema revision)" in err and f"rm {db}" in err
    assert db.read_bytes() == before


def test_store_creation_killed_leaves_no_half_store(tmp_path: Path) -> None:
    """SIGKILL at any moment of the first store creation: afterwards there is either no
    mlflow.db or a complete one, and the next creation works."""
    import signal
    import subprocess
    import sys
    import time

    from grokspec.tracking.store_lock import prepare_store

    db = tmp_path / "mlflow.db"
    code = f"from grokspec.tracking.store_lock import prepare_store; prepare_store('sqlite:///{db}')"
    proc = subprocess.Popen([sys.executable, "-c", code])
    time.sleep(2.5)  # imports take ~2 s: the kill lands in or near the migration
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if db.exists():
        import sqlite3

        con = sqlite3.connect(db)
        n = con.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()[0]
        con.close()
        assert n > 30  # complete: the rename happens only after the migration
    prepare_store(f"sqlite:///{db}")
    from mlflow import MlflowClient

    assert MlflowClient(tracking_uri=f"sqlite:///{db}").search_experiments()


def test_a_full_disk_closes_the_run_failed_with_one_line(
    mlflow_uri: str, client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,  # noqa: ANN001
    capsys: pytest.CaptureFixture,
) -> None:
    """Issue 21 item 1: the checkpoint write meets a full disk (torch.save raising ENOSPC,
    as on a 3 MB filesystem): the half-written file is removed, the run is closed FAILED
    naming the cause, the CLI prints one line (exit 1), nothing is left RUNNING."""
    import errno

    import grokspec.training.checkpoint as ckpt_mod

    def full(obj: object, f: object) -> None:
        Path(str(f)).write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ckpt_mod.torch, "save", full)
    path = spec_file(tmp_path, checkpoint_every=10)
    assert main(["run", str(path), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: no space left on the device (") and ".tmp" in err[-1]
    assert not any("Traceback" in line for line in err)
    assert not list((tmp_path / "grokspec_out" / "checkpoints").glob("*.tmp"))
    [run] = client.search_runs([client.get_experiment_by_name("faults").experiment_id])
    assert run.info.status == "FAILED"
    assert "No space left" in run.data.tags["grokspec.failure_reason"]
