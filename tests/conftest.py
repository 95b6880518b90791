"""Shared fixtures: a real MLflow SQLite store per test, copied from one migrated template.

A fresh MLflow database runs its schema migrations (seconds); doing that once per session
and copying the file per test keeps the suite fast while every test gets a real, isolated
store (never a mock).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

# One thread: the test models are tiny (threads cost more than they save) and results do
# not depend on how many cores the machine happens to have.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def _template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mlflow import MlflowClient

    db = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    client.search_experiments()  # creates and migrates the schema
    return db


@pytest.fixture
def mlflow_uri(tmp_path: Path, _template_db: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh, migrated SQLite store under tmp_path; also set as $MLFLOW_TRACKING_URI."""
    db = tmp_path / "mlflow.db"
    shutil.copy(_template_db, db)
    uri = f"sqlite:///{db}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)  # anything written relative to cwd stays in tmp_path
    return uri


@pytest.fixture
def client(mlflow_uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=mlflow_uri)
