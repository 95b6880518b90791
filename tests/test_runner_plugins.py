"""Runners are found through the `grokspec.runners` entry-point group, the way a third-party
package registers one: here a dist-info folder on sys.path, exactly what pip would install."""

from __future__ import annotations

from pathlib import Path

import pytest

from grokspec.run import run_experiment
from grokspec.spec.features import available_runners
from grokspec.spec.loading import SpecError
from grokspec.training.runner import load_runner
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
        "oldstyle = tests.plugin_runners:OldStyleRunner\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path / "site"))


def test_builtin_runner_is_registered() -> None:
    assert "gradient" in available_runners()


def test_third_party_runner_is_found_and_chosen(plugin: None, client) -> None:
    assert {"gradient", "majority"} <= set(available_runners())
    before = MajorityRunner.used
    # The runner builds its own model, which provides only its parameters (learner
    # contract): the spec asks for the one measure that reads them.
    result = run_experiment(experiment(runner="majority", train={"stop": None, "steps": 50},
                                       analysis={"metrics": ["weight_norm"]}))
    assert MajorityRunner.used == before + 1
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED" and run.data.tags["grokspec.runner"] == "majority"
    assert run.data.metrics["test/acc"] < 0.2  # the baseline does not generalize


def test_unknown_runner_fails_at_validation(client) -> None:  # noqa: ANN001
    with pytest.raises(SpecError, match="runner: no runner named 'nope'.*installed: .*gradient"):
        experiment(runner="nope")
    assert client.search_runs([e.experiment_id for e in client.search_experiments()]) == []
    with pytest.raises(LookupError):
        load_runner("nope")


def test_a_runner_without_the_interface_is_rejected_with_advice(plugin: None) -> None:
    with pytest.raises(SpecError, match="lacks build, loss, evaluate"):
        experiment(runner="oldstyle")


def test_features_a_runner_does_not_declare_are_rejected(plugin: None) -> None:
    """The majority runner declares no optional feature: asking for Grokfast, early stop or
    checkpoints is an error at the field, not a silently plain run."""
    for over, field in (
        ({"train": {"grokfast": {"lamb": 2.0}}}, "train.grokfast"),
        ({"train": {"stop": {"test_acc": 0.9}}}, "train.stop"),
        ({"tracking": {"checkpoint_every": 100}}, "tracking.checkpoint_every"),
    ):
        with pytest.raises(SpecError, match=f"{field}: runner 'majority' does not apply"):
            experiment(runner="majority", **{**over, "train": {
                "stop": None, **over.get("train", {})}})


def test_ctrl_c_marks_run_killed(plugin: None, client) -> None:  # noqa: ANN001
    with pytest.raises(KeyboardInterrupt):
        run_experiment(experiment(runner="interrupted", train={"stop": None},
                                  analysis={"metrics": []}))
    (run,) = client.search_runs([client.get_experiment_by_name("tests").experiment_id])
    assert run.info.status == "KILLED"
    assert run.data.tags["grokspec.failure_reason"] == "interrupted (Ctrl-C) after step 25"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")] == [0, 25]
