"""Checkpoints mirrored through the tracking store (issue 19): a point continued on another
machine (a Ray re-queue, or ``--resume`` elsewhere) finds no local file and fetches the last
checkpoint its earlier attempt uploaded, then ends with the uninterrupted run's numbers.

The mirror is on for ``http(s)://`` tracking URIs only; here the test's local store stands in
for a server (``is_http`` patched), so the test runs in seconds. The real server and a real
second Ray node: tests/test_ray_cluster.py (slow).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from grokspec.run import run_experiment
from grokspec.tracking import checkpoints
from grokspec.training.checkpoint import checkpoint_path
from tests.helpers import experiment, interrupted_at


def _exp():  # noqa: ANN202
    return experiment(train={"steps": 200, "eval_every": 10, "stop": None},
                      tracking={"experiment": "mirror", "checkpoint_every": 50},
                      analysis={"metrics": []})


@pytest.mark.parametrize("served", [True, False])
def test_resume_on_another_machine_fetches_the_checkpoint(
    served: bool, client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,  # noqa: ANN001
    capsys: pytest.CaptureFixture,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(checkpoints, "is_http", lambda uri: served)
    exp = _exp()
    whole = run_experiment(exp, device="cpu")
    with interrupted_at(monkeypatch, 120):
        run_experiment(exp, device="cpu")
    killed = client.search_runs([whole.experiment_id], "attributes.status = 'KILLED'")[0]
    uploaded = [a.path for a in client.list_artifacts(killed.info.run_id, "checkpoint")]
    assert uploaded == ([f"checkpoint/{checkpoint_path(exp).name}"] if served else [])
    shutil.rmtree(tmp_path / "grokspec_out" / "checkpoints")  # "another machine"
    capsys.readouterr()
    resumed = run_experiment(exp, device="cpu", resume=True)
    err = capsys.readouterr().err
    assert resumed.status == "FINISHED"
    if served:  # continued at step 100 from the server's copy: the same numbers
        assert f"from run {killed.info.run_id}" in err and "resumed from" in err
        assert resumed.history == whole.history
    else:  # negative control: nothing to fetch, so it started again from step 0
        assert "no checkpoint at" in err and "resumed from" not in err
        assert resumed.history == whole.history  # (deterministic: step 0 gives them too)
