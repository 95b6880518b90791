"""``--only``: one arm of a comparison re-run, or one point's resolved fields printed."""

from __future__ import annotations

from pathlib import Path

import pytest

from grokspec.cli.main import main

SPEC = """\
name: only
dataset: {kind: modular, p: 7, train_fraction: 0.6}
learner: {kind: mlp, width: 8}
train: {steps: 4, eval_every: 2, batch_size: full}
analysis: {metrics: []}
tracking: {experiment: only}
sweep:
  variants:
    plain: {}
    decay: {train: {optimizer: {weight_decay: 0.5}}}
  seeds: [0, 1]
"""


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "only.yaml"
    path.write_text(SPEC)
    return path


def test_validate_resolved_only_prints_that_point(spec: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(spec), "--resolved", "--only", "decay seed=1"]) == 0
    out = capsys.readouterr().out
    assert "--only: decay seed=1" in out
    assert out.count("  point #") == 1 and "train.optimizer.weight_decay = 0.5" in out
    assert "    seed = 1" in out


def test_only_unknown_name_is_a_usage_error(spec: Path, capsys: pytest.CaptureFixture[str]
                                            ) -> None:
    assert main(["validate", str(spec), "--only", "decya"]) == 2
    err = capsys.readouterr().err
    assert "no point named 'decya'" in err and "variants: decay, plain" in err


def test_only_on_a_plain_spec_is_a_usage_error(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    plain = tmp_path / "plain.yaml"
    plain.write_text(SPEC.split("sweep:")[0])
    assert main(["validate", str(plain), "--only", "x"]) == 2
    assert "has no sweep: block" in capsys.readouterr().err


def test_sweep_only_runs_the_named_points_under_the_sweeps_parent(
    spec: Path, mlflow_uri: str, client, capsys: pytest.CaptureFixture[str]  # noqa: ANN001
) -> None:
    assert main(["sweep", str(spec), "--only", "decay"]) == 0
    exp = client.get_experiment_by_name("only")
    runs = client.search_runs([exp.experiment_id])
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert sorted(r.info.run_name for r in children) == ["decay s0", "decay s1"]
    parents = {r.data.tags["mlflow.parentRunId"] for r in children}
    # the other arm, run later, joins the same parent (the whole sweep's identity)
    assert main(["sweep", str(spec), "--only", "plain seed=0"]) == 0
    runs = client.search_runs([exp.experiment_id])
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(children) == 3
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == parents
