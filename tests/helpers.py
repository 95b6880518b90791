"""Small builders for tests: experiments from dicts with test-sized defaults."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from grokspec.spec.experiment import Experiment
from grokspec.spec.loading import validate_data


def deep_update(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        nested = isinstance(v, dict) and isinstance(out.get(k), dict)
        out[k] = deep_update(out[k], v) if nested else v
    return out


#: p=31 (half the table) one-hot quadratic MLP: fits by ~75 steps, groks by ~2000 steps
#: in a few CPU seconds. (At train_fraction 0.3, p=31 does not grok within 4000 steps.)
TINY_GROK: dict[str, Any] = {
    "name": "tiny-grok",
    "seed": 0,
    "dataset": {"kind": "modular", "op": "x+y", "p": 31, "train_fraction": 0.5},
    "learner": {"kind": "mlp", "depth": 1, "width": 256, "activation": "quadratic"},
    "train": {
        "optimizer": {"kind": "adamw", "lr": 3e-3, "weight_decay": 1.0},
        "steps": 4000,
        "eval_every": 25,
        "stop": {"test_acc": 0.99, "patience_evals": 4},
    },
    "tracking": {"experiment": "tests"},
}


def experiment(**over: Any) -> Experiment:
    """TINY_GROK with nested overrides, validated like a spec file."""
    return validate_data(deep_update(TINY_GROK, over))


@contextmanager
def interrupted_at(monkeypatch: Any, step: int) -> Iterator[None]:
    """Within the block, the loop raises KeyboardInterrupt (as Ctrl-C or SIGTERM would) when
    it records the evaluation at ``step``; the block must raise it (a run killed mid-way)."""
    import pytest

    from grokspec.training.loop import Member

    record = Member.record

    def killed(self: Member, at: int, metrics: dict, model: object = None) -> None:
        if at == step:
            raise KeyboardInterrupt
        record(self, at, metrics, model)

    monkeypatch.setattr(Member, "record", killed)
    try:
        with pytest.raises(KeyboardInterrupt):
            yield
    finally:
        monkeypatch.setattr(Member, "record", record)
