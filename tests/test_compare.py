"""``grokspec compare`` on a real MLflow store holding a transformer, an MLP and a GP."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from grokspec.analysis.compare import compare, find_runs
from grokspec.cli.main import main
from grokspec.metrics import names
from grokspec.tracking.store import RunStore

SWEEP = """\
name: cmp
seed: 0
dataset: {kind: modular, op: x+y, p: 11, train_fraction: 0.5}
train:
  optimizer: {kind: adamw, lr: 3.0e-3, weight_decay: 1.0}
  steps: 20
  eval_every: 10
tracking: {experiment: cmp}
sweep:
  variants:
    mlp: {learner: {kind: mlp, width: 32, activation: quadratic}}
    transformer: {learner: {kind: transformer, d_model: 16, heads: 2, d_mlp: 32}}
    gp:
      learner: {kind: gp, inducing_points: 16, predictive_samples: 8}
      train: {optimizer: {kind: adam, lr: 0.1, weight_decay: 0.0}}
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, _template_db: Path) -> str:
    """One real store for the module: a sweep parent with three child runs (trained once)."""
    folder = tmp_path_factory.mktemp("compare-store")
    shutil.copy(_template_db, folder / "mlflow.db")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    spec = folder / "cmp.yaml"
    spec.write_text(SWEEP.replace("tracking: {experiment: cmp}",
                                  f"tracking: {{experiment: cmp, uri: '{uri}'}}"))
    assert main(["run", str(spec), "--no-progress"]) == 0
    return uri


@pytest.fixture
def store_client(store: str):  # noqa: ANN201
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=store)


def test_compare_table_png_csv_and_parent_log(
    store: str, store_client, tmp_path: Path, capsys  # noqa: ANN001
) -> None:
    client = store_client
    capsys.readouterr()
    out = tmp_path / "out"
    assert main(["compare", "--experiment", "cmp", "--out", str(out), "--uri", store]) == 0
    text = capsys.readouterr().out
    header, _, *lines = text.split("\n\n")[0].splitlines()
    assert header.split()[:3] == ["run", "learner", "dataset"] and "phase" in header
    assert sorted(line.split(") [")[0].rsplit("(", 1)[1] for line in lines) == [
        "gp", "mlp", "transformer"
    ]
    png = out / "compare.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"plot: {png}" in text
    rows = list(csv.DictReader((out / "compare.csv").open()))
    assert {r["learner"] for r in rows} == {"gp", "mlp", "transformer"}
    assert all(r["phase"] in {"comprehension", "grokking", "memorization", "confusion"}
               for r in rows)
    parent = {r["parent_run_id"] for r in rows}
    assert len(parent) == 1
    logged = {a.path for a in client.list_artifacts(parent.pop(), "compare")}
    assert logged == {"compare/compare.png", "compare/compare.csv"}


def test_filter_runs_and_errors(
    store: str, store_client, tmp_path: Path, capsys  # noqa: ANN001
) -> None:
    client = RunStore(store)
    only_mlp = compare(client, "cmp", filter_string="tags.`grokspec.learner` = 'mlp'")
    assert [r["learner"] for r in only_mlp.rows] == ["mlp"]
    run_id = only_mlp.rows[0]["run_id"]
    by_id = compare(client, run_ids=[run_id], metrics=[names.TEST_LOSS])
    assert by_id.rows[0]["run_id"] == run_id
    assert names.TEST_LOSS in by_id.histories[run_id][-1]
    assert len(find_runs(client)) == 3  # every experiment; the sweep parent is not a row
    capsys.readouterr()
    assert main(["compare", "--experiment", "nope", "--out", str(tmp_path), "--uri", store]) == 2
    assert "no MLflow experiment named 'nope'" in capsys.readouterr().err
    assert main(["compare", "--filter", "tags.`grok.phase` = 'none'", "--out", str(tmp_path),
                 "--uri", store]) == 2


def test_runs_without_a_summary_are_analysed_from_their_history(client) -> None:  # noqa: ANN001
    exp_id = client.create_experiment("old")
    run = client.create_run(exp_id, run_name="old-run", tags={"grokspec.learner": "mlp",
                                                              "grokspec.dataset": "modular"})
    rid = run.info.run_id
    for step in range(0, 2001, 100):
        client.log_metric(rid, names.TRAIN_ACC, 1.0 if step >= 100 else 0.0, step=step)
        client.log_metric(rid, names.TEST_ACC, 1.0 if step >= 2000 else 0.0, step=step)
    client.set_terminated(rid)
    row = compare(RunStore(client.tracking_uri), "old").rows[0]
    assert (row["train_fit_step"], row["test_fit_step"], row["phase"]) == (100, 2000, "grokking")
