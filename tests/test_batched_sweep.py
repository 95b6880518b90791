"""Batched sweeps: an lr x weight-decay grid trains as one computation, each point its own
MLflow child with the numbers it has alone (issue 14)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import yaml

from grokspec.sweep.expand import load_sweep
from grokspec.sweep.launch import plan_tasks, run_sweep
from grokspec.training import cost
from grokspec.training.batched_optim import BatchedOptimizer
from tests.helpers import TINY_GROK, interrupted_at

CORE = ("train/loss", "train/acc", "test/loss", "test/acc")


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _grid_spec(tmp_path: Path, vectorize: object, **train: object) -> Path:
    spec = {**TINY_GROK, "analysis": {"metrics": []},
            "train": {**TINY_GROK["train"], "steps": 150, "eval_every": 50, "stop": None,
                      "batch_size": 64, **train},
            "sweep": {"grid": {"train.optimizer.lr": [1e-3, 3e-3],
                               "train.optimizer.weight_decay": [0.1, 1.0]},
                      "vectorize": vectorize}}
    path = tmp_path / f"grid-{vectorize}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _curves(client, run_id: str) -> dict[str, list[tuple[int, float]]]:  # noqa: ANN001
    return {m: [(x.step, x.value) for x in client.get_metric_history(run_id, m)] for m in CORE}


def test_lr_wd_grid_batched_equals_each_point_alone(
    tmp_path: Path, client, monkeypatch: pytest.MonkeyPatch  # noqa: ANN001
) -> None:
    path = _grid_spec(tmp_path, True, grokfast={"alpha": 0.9, "lamb": 1.0})
    sweep = load_sweep(path)
    notes: list[str] = []
    tasks = plan_tasks(sweep.points, sweep, "p", "cpu", False, "sqlite://", notes.append)
    assert [len(t.experiments) for t in tasks] == [4] and tasks[0].vectorize, notes
    steps = {"n": 0}
    real_step = BatchedOptimizer.step

    def counted(self: BatchedOptimizer) -> None:
        steps["n"] += 1
        real_step(self)

    monkeypatch.setattr(BatchedOptimizer, "step", counted)
    batched = run_sweep(sweep, device="cpu", echo=lambda m: None)
    assert steps["n"] == 150  # one batched computation, per-member optimizer settings
    monkeypatch.setattr(BatchedOptimizer, "step", real_step)
    alone = run_sweep(load_sweep(_grid_spec(tmp_path, False,
                                            grokfast={"alpha": 0.9, "lamb": 1.0})),
                      device="cpu", echo=lambda m: None)
    assert batched.status == alone.status == "FINISHED"
    assert len({r["run_id"] for r in batched.table}) == 4  # one child run per point
    finals = []
    for rb, ra in zip(batched.table, alone.table, strict=True):
        run = client.get_run(rb["run_id"])
        assert run.data.tags["mlflow.parentRunId"] == batched.parent_run_id
        lr, wd = float(run.data.params["train.optimizer.lr"]), float(
            run.data.params["train.optimizer.weight_decay"])
        # its own params, not the batch's
        assert (lr, wd) == (rb["train.optimizer.lr"], rb["train.optimizer.weight_decay"])
        cb, ca = _curves(client, rb["run_id"]), _curves(client, ra["run_id"])
        for metric in CORE:
            assert [s for s, _ in cb[metric]] == [s for s, _ in ca[metric]]
            for (_, vb), (_, va) in zip(cb[metric], ca[metric], strict=True):
                assert vb == pytest.approx(va, rel=1e-4, abs=1e-6), (lr, wd, metric)
        finals.append(cb["train/loss"][-1][1])
    assert len({round(f, 4) for f in finals}) == 4  # the four points really trained apart


def test_auto_decides_from_the_probe_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep = load_sweep(_grid_spec(tmp_path, "auto"))
    for batch, expected in ((True, [4]), (False, [1, 1, 1, 1])):
        verdict = cost.Verdict(batch, alone_s=0.02, batched_s=0.01 if batch else 0.03, n=4,
                               device="cpu", clock="test")
        monkeypatch.setattr(cost, "decide", lambda exps, dev, v=verdict: v)
        notes: list[str] = []
        tasks = plan_tasks(sweep.points, sweep, "p", "cpu", False, "sqlite://", notes.append)
        assert [len(t.experiments) for t in tasks] == expected
        assert any("probe" in n and "ms/step" in n for n in notes), notes


def test_the_probe_measures_both_sides_on_this_device(tmp_path: Path) -> None:
    sweep = load_sweep(_grid_spec(tmp_path, "auto"))
    verdict = cost.probe([p.experiment for p in sweep.points], torch.device("cpu"))
    assert verdict.alone_s > 0 and verdict.batched_s > 0 and verdict.n == 4
    assert verdict.batch == (verdict.batched_s <= cost.MARGIN * verdict.alone_s)
    assert "4 members" in verdict.explain()


def test_batched_grid_resumes_from_its_checkpoint(
    client, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture  # noqa: ANN001
) -> None:
    """Per-member optimizer and Grokfast state are in the batch's checkpoint: a killed batch
    resumes to the histories of an uninterrupted one, bit for bit on CPU."""
    from grokspec.run import run_batch
    from grokspec.training.checkpoint import checkpoint_path
    from tests.helpers import experiment

    exps = [experiment(seed=0, analysis={"metrics": []}, tracking={"checkpoint_every": 50},
                       train={"steps": 150, "eval_every": 25, "stop": None, "batch_size": 64,
                              "optimizer": {"kind": "adamw", "lr": lr, "weight_decay": wd,
                                            "warmup_steps": 60},
                              "grokfast": {"alpha": a, "lamb": 2.0}})
            for lr, wd, a in ((1e-3, 0.1, 0.9), (3e-3, 1.0, 0.8))]
    full = run_batch(exps, "cpu")
    with interrupted_at(monkeypatch, 125):
        run_batch(exps, "cpu")
    assert checkpoint_path(exps).exists()
    capfd.readouterr()
    resumed = run_batch(exps, "cpu", resume=True)
    assert "at step 100" in capfd.readouterr().err  # continued, not started again
    for a, b in zip(full, resumed, strict=True):
        assert b.status == "FINISHED"
        assert b.history == a.history
    assert full[0].history[-1]["train/loss"] != full[1].history[-1]["train/loss"]
