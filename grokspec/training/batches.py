"""Minibatch order: a stream of index batches whose position is part of a checkpoint.

The order is a pure function of the seed (a torch ``Generator`` reshuffles once per epoch), and
:meth:`BatchStream.state_dict` captures the generator, the current permutation and the position
in it, so a resumed run draws exactly the batches an uninterrupted run would have drawn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class Batch:
    """One optimisation step's data, as a runner's ``loss`` sees it.

    ``x`` and ``y`` are the batch's examples (already selected), ``idx`` their row indices in
    the training set (None: the whole set; a GP's objective selects by index), ``dataset``
    and ``train`` what the loss depends on (task, number of classes, ``train.loss``).
    """

    idx: torch.Tensor | None
    x: torch.Tensor
    y: torch.Tensor
    dataset: Any
    train: Any


class BatchStream:
    """Endless index batches: ``None`` for full batch, else reshuffled each epoch.

    ``last_batch="drop"``: trailing examples that do not fill a batch are dropped for that
    epoch (every step sees exactly ``batch_size`` examples). ``"keep"``: the epoch ends with
    the smaller remainder batch, as ``torch.split`` over a shuffled epoch gives it (the
    Grokfast code's loop).
    """

    def __init__(
        self, n: int, batch_size: int | str, seed: int, device: torch.device,
        last_batch: str = "drop",
    ) -> None:
        self.n, self.device = n, device
        self.keep_last = last_batch == "keep"
        self.full = batch_size == "full" or int(batch_size) >= n
        self.bs = n if self.full else int(batch_size)
        self.generator = torch.Generator().manual_seed(seed)
        self.perm: torch.Tensor | None = None
        self.pos = 0

    def next(self) -> torch.Tensor | None:
        if self.full:
            return None
        used_up = self.pos >= self.n if self.keep_last else self.pos + self.bs > self.n
        if self.perm is None or used_up:
            self.perm = torch.randperm(self.n, generator=self.generator)
            self.pos = 0
        idx = self.perm[self.pos : self.pos + self.bs]
        self.pos += self.bs
        return idx.to(self.device)

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "perm": self.perm, "pos": self.pos}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # .cpu(): a checkpoint loaded with map_location="cuda" moved the (CPU) generator state
        self.generator.set_state(state["generator"].cpu())
        self.perm, self.pos = state["perm"], int(state["pos"])
