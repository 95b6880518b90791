"""Vectorized seeds: one batched computation, the same numbers as one run per seed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import yaml

from grokspec.metrics import names
from grokspec.run import run_batch
from grokspec.sweep.executors import Task, run_one
from grokspec.sweep.expand import load_sweep
from grokspec.sweep.launch import plan_tasks, run_sweep
from tests.helpers import TINY_GROK, experiment


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def history(client, run_id: str) -> dict[str, list[tuple[int, float]]]:  # noqa: ANN001
    return {
        m: [(x.step, x.value) for x in client.get_metric_history(run_id, m)]
        for m in names.UNIFORM
    }


@pytest.mark.parametrize("batch_size", [64, "full"])
def test_vectorized_seeds_match_sequential_runs(client, batch_size: int | str) -> None:  # noqa: ANN001
    exps = [
        experiment(seed=s, train={"steps": 300, "eval_every": 50, "stop": None,
                                  "batch_size": batch_size}, analysis={"metrics": []})
        for s in (0, 1, 2)
    ]
    alone = [run_one(e, Task([], "", "cpu")) for e in exps]
    batched = run_batch(exps, "cpu")
    assert [o.status for o in batched] == ["FINISHED"] * 3
    assert len({o.run_id for o in alone + batched}) == 6  # each seed is its own run
    for exp, a, b in zip(exps, alone, batched, strict=True):
        ha, hb = history(client, a.run_id), history(client, b.run_id)
        for metric in names.UNIFORM:
            assert [s for s, _ in ha[metric]] == [s for s, _ in hb[metric]], metric
            va = torch.tensor([v for _, v in ha[metric]])
            vb = torch.tensor([v for _, v in hb[metric]])
            torch.testing.assert_close(vb, va, rtol=1e-4, atol=1e-5, msg=metric)
        assert a.summary["train_fit_step"] == b.summary["train_fit_step"]
        assert a.summary["test_fit_step"] == b.summary["test_fit_step"]
        assert client.get_run(b.run_id).data.params["seed"] == str(exp.seed)


def test_early_stopping_and_grokking_per_seed_in_a_batch(client) -> None:  # noqa: ANN001
    """Seeds that grok stop at their own step, as they would alone; the batch goes on."""
    exps = [experiment(seed=s, train={"batch_size": 128}, analysis={"metrics": []}) for s in (0, 1)]
    alone = [run_one(e, Task([], "", "cpu")) for e in exps]
    batched = run_batch(exps, "cpu")
    for a, b in zip(alone, batched, strict=True):
        assert b.status == "FINISHED"
        assert b.summary["test_fit_step"] is not None  # it grokked
        assert b.summary["test_fit_step"] == a.summary["test_fit_step"]
        assert b.summary["final_step"] == a.summary["final_step"]  # stopped where alone did


def test_sweep_vectorize_groups_seeds_and_says_when_it_will_not_help(
    tmp_path: Path, client, monkeypatch: pytest.MonkeyPatch  # noqa: ANN001
) -> None:
    quick = {**TINY_GROK, "train": {**TINY_GROK["train"], "steps": 100, "batch_size": 64},
             "analysis": {"metrics": []}}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({**quick, "sweep": {
        "grid": {"train.optimizer.weight_decay": [0.5, 1.0]}, "seeds": 3, "vectorize": True,
    }}))
    sweep = load_sweep(path)
    notes: list[str] = []
    tasks = plan_tasks(sweep.points, sweep, "parent", "cpu", False, "sqlite://", notes.append)
    # seeds and weight decays differ only in per-member settings: one batch (issue 14)
    assert [len(t.experiments) for t in tasks] == [6] and all(t.vectorize for t in tasks)
    assert not notes
    result = run_sweep(sweep, echo=lambda m: None)
    assert result.status == "FINISHED" and len(result.table) == 6
    assert all(r["status"] == "FINISHED" and r["final_test_acc"] is not None
               for r in result.table)
    assert len({r["run_id"] for r in result.table}) == 6  # one child run per seed

    # `auto` batches only where its timing probe measures a gain, and says what it measured
    from grokspec.training import cost

    slower = cost.Verdict(False, alone_s=0.01, batched_s=0.02, n=6, device="cpu", clock="t")
    monkeypatch.setattr(cost, "decide", lambda exps, dev: slower)
    full = load_sweep(path, ["train.batch_size=full", "sweep.vectorize=auto"])
    tasks = plan_tasks(full.points, full, "p", "cpu", False, "sqlite://", notes.append)
    assert [len(t.experiments) for t in tasks] == [1] * 6
    assert any("0.50x" in n and "one after another" in n for n in notes), notes
    notes.clear()
    forced = load_sweep(path, ["train.batch_size=full"])
    tasks = plan_tasks(forced.points, forced, "p", "cpu", False, "sqlite://", notes.append)
    assert [len(t.experiments) for t in tasks] == [6]  # true: batched, no probe

    # dropout draws different masks per call: never batched, and the note says why
    notes.clear()
    tf = load_sweep(path, ['learner={"kind": "transformer", "d_model": 32, "dropout": 0.1, '
                           '"activation": "relu"}'])  # the base MLP's x^2 is kept (merge)
    tasks = plan_tasks(tf.points, tf, "p", "cpu", False, "sqlite://", notes.append)
    assert [len(t.experiments) for t in tasks] == [1] * 6
    assert any("dropout" in n for n in notes)
