"""Runners are found through the `grokspec.runners` entry-point group, the way a third-party
package registers one: here a dist-info folder on sys.path, exactly what pip would install."""

from __future__ import annotations

from pathlib import Path

import pytest

from grokspec.run import run_experiment
from grokspec.training.runner import available_runners, load_runner
from tests.helpers import experiment
from tests.plugin_runners import MajorityRunner


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dist = tmp_path / "site" / "grokspec_testplugin-0.1.dist-info"
    dist.mkdir(parents=True)
    meta = "Metadata-Version: 2.1\nName: grokspec-testplugin\nVersion: 0.1\n"
    (dist / "METADATA").write_text(meta)
    (dist / "entry_points.txt").write_text(
        "[grokspec.runners]\n"
        "majority = tests.plugin_runners:MajorityRunner\n"
        "interrupted = tests.plugin_runners:InterruptedRunner\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path / "site"))


def test_builtin_runner_is_registered() -> None:
    assert "gradient" in available_runners()


def test_third_party_runner_is_found_and_chosen(plugin: None, client) -> None:
    assert {"gradient", "majority"} <= set(available_runners())
    before = MajorityRunner.used
    result = run_experiment(experiment(runner="majority"))
    assert MajorityRunner.used == before + 1
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED" and run.data.tags["grokspec.runner"] == "majority"
    assert run.data.metrics["test/acc"] < 0.2  # the baseline does not generalize


def test_unknown_runner_fails_before_any_run(client) -> None:
    with pytest.raises(LookupError, match="no runner named 'nope'.*installed: .*gradient"):
        run_experiment(experiment(runner="nope"))
    assert client.search_runs([e.experiment_id for e in client.search_experiments()]) == []
    with pytest.raises(LookupError):
        load_runner("nope")


def test_ctrl_c_marks_run_killed(plugin: None, client) -> None:
    with pytest.raises(KeyboardInterrupt):
        run_experiment(experiment(runner="interrupted"))
    (run,) = client.search_runs([client.get_experiment_by_name("tests").experiment_id])
    assert run.info.status == "KILLED"
    assert run.data.tags["grokspec.failure_reason"] == "interrupted (Ctrl-C) after step 10"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")] == [0, 10]
