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

from collections import deque
from collections.abc import Sequence
from typing import Any

import torch

from grokspec.spec.train import GrokfastSpec


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


class BatchedGradFilter:
    """Grokfast for stacked parameters; call it after ``backward()``, before the step."""

    def __init__(
        self, specs: Sequence[GrokfastSpec | None], params: Sequence[torch.Tensor]
    ) -> None:
        why = filters_compatible(specs)
        if why:
            raise ValueError(why)
        self.params = list(params)
        on = [s for s in specs if _active(s)]
        self.filter = on[0].filter if on else None
        self.window = on[0].window if on and on[0].filter == "ma" else 1
        device = self.params[0].device if self.params else torch.device("cpu")
        self.alpha = torch.tensor(
            [s.alpha if _active(s) else 0.0 for s in specs], dtype=torch.float64, device=device
        )
        self.lamb = torch.tensor(
            [s.lamb if _active(s) else 0.0 for s in specs], dtype=torch.float64, device=device
        )
        self.ema: dict[int, torch.Tensor] = {}
        self.history: dict[int, deque[torch.Tensor]] = {}
        self.total: dict[int, torch.Tensor] = {}
        self.calls = 0

    @staticmethod
    def _col(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return values.to(like.dtype).view(-1, *([1] * (like.dim() - 1)))

    @torch.no_grad()
    def __call__(self) -> None:
        if self.filter is None:
            return
        self.calls += 1
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            g = p.grad
            if self.filter == "ema":
                mu = self.ema.get(i)
                if mu is None:
                    mu = self.ema[i] = g.detach().clone()
                else:  # GradFilter: mu.mul_(alpha).add_(g, alpha=1 - alpha)
                    mu.mul_(self._col(self.alpha, g)).add_(g * self._col(1.0 - self.alpha, g))
                g.add_(mu * self._col(self.lamb, g))
            else:
                self._moving_average(i, g)

    def _moving_average(self, i: int, g: torch.Tensor) -> None:
        """As GradFilter._moving_average: running sum, re-summed exactly every window calls."""
        hist = self.history.setdefault(i, deque())
        hist.append(g.detach().clone())
        total = self.total.get(i)
        total = self.total[i] = hist[-1].clone() if total is None else total.add_(hist[-1])
        if len(hist) > self.window:
            total.sub_(hist.popleft())
        if self.calls % self.window == 0:
            total.copy_(torch.stack(tuple(hist)).sum(0))
        if len(hist) == self.window:
            g.add_(total * self._col(self.lamb / self.window, g))

    def state_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "ema": dict(self.ema),
            "history": {i: list(h) for i, h in self.history.items()},
            "total": dict(self.total),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore onto the parameters' device (a checkpoint may come from cuda or cpu)."""

        def here(i: Any, t: torch.Tensor) -> torch.Tensor:
            return t.to(self.params[int(i)].device)

        self.calls = int(state["calls"])
        self.ema = {int(i): here(i, t) for i, t in state["ema"].items()}
        self.history = {
            int(i): deque(here(i, t) for t in h) for i, h in state["history"].items()
        }
        self.total = {int(i): here(i, t) for i, t in state["total"].items()}
