"""One optimisation step, as the loop takes it — and as the cost probe and benches time it.

Kept as one function so that the loop (:mod:`grokspec.training.loop`), the ``vectorize:
auto`` probe (:mod:`grokspec.training.cost`) and ``bench/gpu.py`` all run the same step,
never a copy of it.
"""

from __future__ import annotations

from typing import Any

import torch

from grokspec.training.batches import Batch


def optimisation_step(
    learner: Any, opt: Any, sched: Any, grokfast: Any, batches: list[Batch]
) -> torch.Tensor:
    """The runner's loss (one value per member) -> backward -> Grokfast -> optimizer ->
    learning-rate schedule. Returns the per-member losses (for the NaN check)."""
    losses = learner.losses(batches)
    opt.zero_grad(set_to_none=True)
    losses.sum().backward()
    grokfast()
    opt.step()
    sched.step()
    return losses
