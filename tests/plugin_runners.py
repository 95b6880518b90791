"""Runners a third party might ship, registered by entry point in tests/test_runner_plugins.py."""

from __future__ import annotations

import torch

from grokspec.metrics import names
from grokspec.training.runner import RunContext


class MajorityRunner:
    """Predicts the most frequent training label: a baseline that never trains."""

    used = 0

    def run(self, ctx: RunContext) -> None:
        MajorityRunner.used += 1
        data = ctx.dataset
        label = torch.mode(data.y_train).values
        acc = {
            s: float((getattr(data, f"y_{s}") == label).float().mean()) for s in ("train", "test")
        }
        for step in (0, 1):
            ctx.on_eval(step, {names.TRAIN_ACC: acc["train"], names.TEST_ACC: acc["test"],
                               names.TRAIN_LOSS: 1.0, names.TEST_LOSS: 1.0,
                               names.WEIGHT_NORM: 0.0})


class InterruptedRunner:
    """Evaluates twice, then behaves as if the user pressed Ctrl-C."""

    def run(self, ctx: RunContext) -> None:
        for step in (0, 10):
            ctx.on_eval(step, {names.TRAIN_LOSS: 1.0, names.TRAIN_ACC: 0.0})
        raise KeyboardInterrupt
