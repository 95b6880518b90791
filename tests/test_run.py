"""End to end: a tiny spec really groks, and the MLflow run reads back complete."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from grokspec.cli.main import main
from grokspec.metrics import names
from grokspec.run import run_experiment
from tests.helpers import TINY_GROK, experiment


@pytest.fixture(scope="module")
def grokked(tmp_path_factory: pytest.TempPathFactory, _template_db: Path):
    """One real grokking run shared by the assertions below (a few CPU seconds)."""
    import shutil

    from mlflow import MlflowClient

    db = tmp_path_factory.mktemp("grok") / "mlflow.db"
    shutil.copy(_template_db, db)
    uri = f"sqlite:///{db}"
    exp = experiment(tracking={"uri": uri})
    return run_experiment(exp), MlflowClient(tracking_uri=uri), exp


def test_tiny_modular_addition_really_groks(grokked) -> None:
    result, _, _ = grokked
    s = result.summary
    assert result.status == "FINISHED"
    assert s["train_fit_step"] is not None and s["train_fit_step"] <= 500
    assert s["test_fit_step"] is not None and s["delay"] >= 500  # generalization comes late
    # The plateau is real: well after train fit, test accuracy was still low.
    at_fit = [h for h in result.history if h["step"] == s["train_fit_step"]][0]
    assert at_fit[names.TEST_ACC] < 0.5
    assert result.history[-1][names.TEST_ACC] >= 0.99
    # Early stop: held for patience_evals evaluations, then stopped before the step budget.
    assert s["final_step"] < TINY_GROK["train"]["steps"]


def test_mlflow_run_has_params_metrics_artifacts_and_status(grokked) -> None:
    result, client, exp = grokked
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    p = run.data.params
    assert p["dataset.p"] == "31" and p["learner.activation"] == "quadratic"
    assert p["train.optimizer.lr"] == "0.003" and p["seed"] == "0"
    assert p["dataset.train_fraction"] == "0.5"
    t = run.data.tags
    assert t["grokspec.learner"] == "mlp" and t["grokspec.dataset"] == "modular"
    assert t["grokspec.spec_hash"] == exp.spec_hash() and t["grokspec.version"]
    for name in names.UNIFORM:
        hist = client.get_metric_history(result.run_id, name)
        assert [m.step for m in hist] == [int(h["step"]) for h in result.history]
    assert run.data.metrics[names.GROK_DELAY] == result.summary["delay"]
    assert run.data.metrics[names.GROK_TEST_FIT_STEP] == result.summary["test_fit_step"]
    arts = {a.path for a in client.list_artifacts(result.run_id)}
    assert arts == {"spec.yaml", "history.csv", "summary.json", "curves.png", "grok"}
    local = Path(client.download_artifacts(result.run_id, "summary.json"))
    assert json.loads(local.read_text())["delay"] == result.summary["delay"]
    spec = yaml.safe_load(Path(client.download_artifacts(result.run_id, "spec.yaml")).read_text())
    assert spec["learner"]["width"] == 256
    csv_lines = Path(client.download_artifacts(result.run_id, "history.csv")).read_text().split()
    assert len(csv_lines) == len(result.history) + 1


def test_same_seed_same_history(mlflow_uri: str) -> None:
    short = {"train": {"steps": 60, "eval_every": 20, "stop": None}}
    a = run_experiment(experiment(**short)).history
    b = run_experiment(experiment(**short)).history
    assert a == b
    c = run_experiment(experiment(seed=1, **short)).history
    assert a != c


def test_divergence_marks_run_failed(client) -> None:
    sgd = {"kind": "sgd", "lr": 1e4, "weight_decay": 0.0}
    exp = experiment(train={"optimizer": sgd, "steps": 200, "eval_every": 50, "stop": None})
    result = run_experiment(exp)
    assert result.status == "FAILED" and result.reason.startswith("diverged at step")
    run = client.get_run(result.run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags["grokspec.failure_reason"].startswith("diverged at step")


def test_crash_marks_run_failed_with_reason(client, monkeypatch: pytest.MonkeyPatch) -> None:
    import grokspec.training.evaluation as evaluation

    def boom(*args, **kwargs):
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(evaluation, "standard_metrics", boom)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_experiment(experiment(train={"steps": 10}))
    (run,) = client.search_runs([client.get_experiment_by_name("tests").experiment_id])
    assert run.info.status == "FAILED"
    assert "RuntimeError: simulated crash" in run.data.tags["grokspec.failure_reason"]


def test_cli_run_prints_summary_and_run_id(
    tmp_path: Path, client, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump(TINY_GROK))
    code = main(["run", str(spec), "--no-progress", "--set", "train.steps=50",
                 "--set", "train.optimizer.weight_decay=0.1"])
    out = capsys.readouterr().out
    assert code == 0
    assert "train fit step" in out and "mlflow ui --backend-store-uri sqlite:///" in out
    (run,) = client.search_runs([client.get_experiment_by_name("tests").experiment_id])
    assert run.info.run_id in out
    assert run.data.params["train.optimizer.weight_decay"] == "0.1"


def test_transformer_last_position_shortcut_is_exact() -> None:
    from grokspec.datasets.modular import ModularSpec
    from grokspec.learners.transformer import TransformerSpec

    ds = ModularSpec(p=13).build(0)
    spec = TransformerSpec(layers=2, d_model=32, heads=4, d_mlp=64, layer_norm=True)
    torch.manual_seed(0)
    fast = spec.build(ds)
    slow = TransformerSpec(**{**spec.model_dump(), "last_position_only": False}).build(ds)
    slow.load_state_dict(fast.state_dict())
    torch.testing.assert_close(fast(ds.x_test), slow(ds.x_test), rtol=1e-5, atol=1e-5)


def test_mlp_one_hot_gather_equals_one_hot_matmul() -> None:
    import torch.nn.functional as F

    from grokspec.datasets.modular import ModularSpec
    from grokspec.learners.mlp import MLPSpec

    ds = ModularSpec(p=13).build(0)
    model = MLPSpec(width=32, depth=2, activation="quadratic", dtype="float64").build(ds)
    one_hot = F.one_hot(ds.x_train, 13).flatten(1).double()
    torch.testing.assert_close(model(ds.x_train), model.net(one_hot), rtol=0, atol=1e-12)
