"""Grokfast over stacked parameters with per-member settings (batched sweeps).

:class:`grokspec.training.grokfast.GradFilter` is elementwise in the gradient, so applied to
stacked parameters (leading member dimension) it already filters each member separately, but
with one ``alpha`` / ``lamb`` for all. Here ``alpha`` and ``lamb`` are tensors of shape
``(members,)``, so a sweep over Grokfast settings (or Grokfast on vs off: off is ``lamb = 0``,
which adds exactly zero) trains as one batch.

What must agree across members: the filter kind (``ema`` / ``ma`` are different
computations) and, for ``ma``, the ``window`` (the history length is one deque for the whole
batch). :func:`filters_compatible` says why members cannot share a batch.

The state has the same layout as ``GradFilter.state_dict`` (``calls``, ``ema``, ``history``,
``total``), over the stacked tensors.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from grokspec.spec.train import GrokfastSpec
from grokspec.training.grokfast import FilterState


def _active(spec: GrokfastSpec | None) -> bool:
    return spec is not None and spec.lamb != 0.0


def filters_compatible(specs: Sequence[GrokfastSpec | None]) -> str | None:
    """Why these members' Grokfast settings cannot be one batched filter (None: they can)."""
    on = [s for s in specs if _active(s)]
    kinds = {s.filter for s in on}
    if len(kinds) > 1:
        return "members mix the ema and ma Grokfast filters"
    windows = {s.window for s in on if s.filter == "ma"}
    if len(windows) > 1:
        return f"members use different Grokfast ma windows {sorted(windows)}"
    return None


class BatchedGradFilter(FilterState):
    """Grokfast for stacked parameters; call it after ``backward()``, before the step."""

    def __init__(
        self, specs: Sequence[GrokfastSpec | None], params: Sequence[torch.Tensor]
    ) -> None:
        why = filters_compatible(specs)
        if why:
            raise ValueError(why)
        super().__init__(list(params))
        on = [s for s in specs if _active(s)]
        self._filter = on[0].filter if on else None
        self._window = on[0].window if on and on[0].filter == "ma" else 1
        device = self.params[0].device if self.params else torch.device("cpu")
        self.alpha = torch.tensor(
            [s.alpha if _active(s) else 0.0 for s in specs], dtype=torch.float64, device=device
        )
        self.lamb = torch.tensor(
            [s.lamb if _active(s) else 0.0 for s in specs], dtype=torch.float64, device=device
        )

    @staticmethod
    def _col(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return values.to(like.dtype).view(-1, *([1] * (like.dim() - 1)))

    def filter_kind(self) -> str | None:
        return self._filter

    def window(self) -> int:
        return self._window

    def ema_step(self, mu: torch.Tensor, g: torch.Tensor, first: bool = False) -> None:
        if not first:  # GradFilter: mu.mul_(alpha).add_(g, alpha=1 - alpha), per member
            mu.mul_(self._col(self.alpha, g)).add_(g * self._col(1.0 - self.alpha, g))
        g.add_(mu * self._col(self.lamb, g))

    def add_window(self, g: torch.Tensor, total: torch.Tensor) -> None:
        g.add_(total * self._col(self.lamb / self._window, g))
