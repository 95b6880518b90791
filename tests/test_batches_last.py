"""``train.last_batch``: the epoch's remainder dropped (grokspec's default) or kept as a
smaller batch (the Grokfast code's ``torch.split`` over a shuffled epoch)."""

from __future__ import annotations

import pytest
import torch

from grokspec.spec.loading import SpecError, validate_data
from grokspec.training.batches import BatchStream
from grokspec.training.loop import fit


def epoch(stream: BatchStream, steps: int) -> list[torch.Tensor]:
    return [stream.next() for _ in range(steps)]


def test_keep_covers_every_example_once_per_epoch_with_a_short_last_batch() -> None:
    s = BatchStream(4656, 512, seed=0, device=torch.device("cpu"), last_batch="keep")
    first, second = epoch(s, 10), epoch(s, 10)
    assert [len(b) for b in first] == [512] * 9 + [48]
    for ep in (first, second):
        assert torch.equal(torch.cat(ep).sort().values, torch.arange(4656))
    assert not torch.equal(torch.cat(first), torch.cat(second))  # reshuffled


def test_drop_is_the_default_and_unchanged() -> None:
    s = BatchStream(4656, 512, seed=0, device=torch.device("cpu"))
    batches = epoch(s, 18)
    assert all(len(b) == 512 for b in batches)
    assert len(torch.cat(batches[:9]).unique()) == 9 * 512  # one epoch of 9, then a new one


def test_keep_resumes_mid_epoch_exactly() -> None:
    a = BatchStream(100, 32, seed=3, device=torch.device("cpu"), last_batch="keep")
    epoch(a, 6)
    state = a.state_dict()
    b = BatchStream(100, 32, seed=99, device=torch.device("cpu"), last_batch="keep")
    b.load_state_dict(state)
    for x, y in zip(epoch(a, 9), epoch(b, 9), strict=True):
        assert torch.equal(x, y)


def test_keep_trains_and_differs_from_drop() -> None:
    data = {"name": "lb", "dataset": {"kind": "modular", "p": 11, "train_fraction": 0.5},
            "learner": {"kind": "mlp", "width": 16},
            "train": {"steps": 12, "eval_every": 6, "batch_size": 16},
            "analysis": {"metrics": []}, "tracking": {"experiment": "tests"}}
    drop = fit(validate_data(data), "cpu", measures=False)
    data["train"]["last_batch"] = "keep"
    keep = fit(validate_data(data), "cpu", measures=False)
    assert drop.error is None and keep.error is None
    assert keep.history[-1]["train/loss"] != drop.history[-1]["train/loss"]


def test_last_batch_with_full_batch_is_rejected() -> None:
    with pytest.raises(SpecError, match="last_batch"):
        validate_data({"name": "x", "dataset": {"kind": "modular", "p": 7},
                       "learner": {"kind": "mlp"}, "train": {"last_batch": "keep"}})
