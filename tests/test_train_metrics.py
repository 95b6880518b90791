"""``train.train_metrics: batches``: train loss/accuracy from the training steps' own forward
passes (as the Grokfast and Power et al. loops report them), evaluation on the test set only.

Exact where it can be: with full-batch steps and an evaluation every step, the batch metrics
at step s are the full-set metrics of the model after s - 1 updates. The feature matrix:
vectorized == sequential, resumed == uninterrupted; rejected where it cannot apply.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from grokspec.metrics import names
from grokspec.run import run_batch, run_experiment
from grokspec.spec.loading import SpecError
from grokspec.training.checkpoint import checkpoint_path
from grokspec.training.loop import fit
from tests.helpers import experiment, interrupted_at

FULL_BATCH = {"steps": 30, "eval_every": 1, "stop": None, "batch_size": "full"}
MINI = {"steps": 120, "eval_every": 20, "stop": None, "batch_size": 64}


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def hist(exp) -> list[dict[str, float]]:  # noqa: ANN001
    return fit(exp, measures=False).history


def test_batch_metrics_are_the_previous_models_full_metrics() -> None:
    full = hist(experiment(train=FULL_BATCH, analysis={"metrics": []}))
    batch = hist(experiment(train={**FULL_BATCH, "train_metrics": "batches"},
                            analysis={"metrics": []}))
    assert [h[names.TEST_ACC] for h in batch] == [h[names.TEST_ACC] for h in full]
    assert batch[0] == full[0]  # step 0: no batch yet, a full evaluation
    for s in range(1, len(full)):
        assert batch[s][names.TRAIN_ACC] == pytest.approx(full[s - 1][names.TRAIN_ACC], abs=1e-6)
        assert batch[s][names.TRAIN_LOSS] == pytest.approx(full[s - 1][names.TRAIN_LOSS],
                                                           rel=1e-5)
    assert any(batch[s][names.TRAIN_ACC] != full[s][names.TRAIN_ACC] for s in range(len(full)))


def test_minibatch_means_cover_the_window_and_leave_training_alone() -> None:
    full_exp = experiment(train=MINI, analysis={"metrics": []})
    batch_exp = experiment(train={**MINI, "train_metrics": "batches"}, analysis={"metrics": []})
    assert full_exp.spec_hash() == batch_exp.spec_hash()  # logging only
    full, batch = hist(full_exp), hist(batch_exp)
    assert [h[names.TEST_LOSS] for h in batch] == [h[names.TEST_LOSS] for h in full]
    assert all(0.0 <= h[names.TRAIN_ACC] <= 1.0 for h in batch)
    assert [h[names.TRAIN_LOSS] for h in batch[1:]] != [h[names.TRAIN_LOSS] for h in full[1:]]


def test_batches_vectorized_equals_sequential(client) -> None:  # noqa: ANN001
    exps = [experiment(seed=s, train={**MINI, "train_metrics": "batches"},
                       analysis={"metrics": []}) for s in (0, 1, 2)]
    alone = [run_experiment(e, device="cpu") for e in exps]
    for a, b in zip(alone, run_batch(exps, "cpu"), strict=True):
        for ha, hb in zip(a.history, b.history, strict=True):
            for k in (names.TRAIN_LOSS, names.TRAIN_ACC, names.TEST_ACC):
                assert hb[k] == pytest.approx(ha[k], rel=1e-4, abs=1e-5)


def test_batches_resume_equals_uninterrupted(
    client, monkeypatch: pytest.MonkeyPatch  # noqa: ANN001
) -> None:
    exp = experiment(train={**MINI, "train_metrics": "batches"}, analysis={"metrics": []},
                     tracking={"checkpoint_every": 40})
    full = run_experiment(exp, device="cpu")
    with interrupted_at(monkeypatch, 80):
        run_experiment(exp, device="cpu")
    assert checkpoint_path(exp).exists()
    resumed = run_experiment(exp, device="cpu", resume=True)
    assert resumed.status == "FINISHED" and resumed.history == full.history


def test_batches_is_rejected_where_it_cannot_apply() -> None:
    from grokspec.spec.loading import validate_data

    with pytest.raises(SpecError, match="train_metrics_from_batches"):
        validate_data({"name": "gp", "dataset": {"kind": "parity", "n_bits": 8, "k": 2,
                                                 "train_size": 40, "n_examples": 104},
                       "learner": {"kind": "gp"},
                       "train": {"train_metrics": "batches", "batch_size": 20}})
    with pytest.raises(SpecError, match="per-subset train metrics"):
        experiment(dataset={"kind": "modular", "p": 31, "label_noise": 0.1},
                   train={"train_metrics": "batches"})
