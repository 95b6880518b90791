"""A killed run resumes from its checkpoint to the same final metrics (CPU, bit for bit)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from grokspec.run import run_experiment
from grokspec.training.checkpoint import checkpoint_path
from tests.helpers import experiment, interrupted_at


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_resume_from_checkpoint_matches_an_uninterrupted_run(
    client, monkeypatch: pytest.MonkeyPatch  # noqa: ANN001
) -> None:
    exp = experiment(
        train={"steps": 400, "stop": None, "batch_size": 64, "eval_every": 25},
        tracking={"checkpoint_every": 100},
        analysis={"metrics": []},
    )
    full = run_experiment(exp, device="cpu")
    ckpt = checkpoint_path(exp)
    assert not ckpt.exists()  # a finished run leaves no checkpoint behind

    with interrupted_at(monkeypatch, 250):
        run_experiment(exp, device="cpu")
    assert ckpt.exists() and Path(ckpt).stat().st_size > 0  # written at step 200

    resumed = run_experiment(exp, device="cpu", resume=True)
    assert resumed.status == "FINISHED"
    assert resumed.history == full.history  # every evaluation, including the replayed ones
    assert resumed.summary["train_fit_step"] == full.summary["train_fit_step"]
    assert not ckpt.exists()
    for metric in ("test/acc", "train/loss"):
        a = [(m.step, m.value) for m in client.get_metric_history(full.run_id, metric)]
        b = [(m.step, m.value) for m in client.get_metric_history(resumed.run_id, metric)]
        assert a == b  # the resumed MLflow run carries the whole curve


def test_resume_without_a_checkpoint_starts_from_zero(client) -> None:  # noqa: ANN001
    exp = experiment(train={"steps": 50, "stop": None}, analysis={"metrics": []})
    result = run_experiment(exp, device="cpu", resume=True)
    assert result.status == "FINISHED" and result.history[0]["step"] == 0
