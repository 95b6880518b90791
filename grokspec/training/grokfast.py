"""Grokfast (Lee et al. 2024, "Grokfast: Accelerated Grokking by Amplifying Slow Gradients").

Why it works, in the paper's reading: the parameter trajectory under gradient descent is a
signal whose fast-varying part fits the training set and whose slow-varying part drives
generalization. Adding an amplified low-pass filtered copy of the gradient to the gradient
before the optimizer step pushes along the slow component and shortens the grokking delay.

Two filters, as in the paper's Algorithms 1 and 2:

- ``ema``: ``mu <- alpha * mu + (1 - alpha) * g`` (``mu`` starts at the first gradient), then
  ``g <- g + lamb * mu``.
- ``ma``: ``g <- g + lamb * mean(last window gradients)``, applied only once ``window``
  gradients have been seen (the reference code's ``warmup=True``: the mean of a short,
  early history is dominated by the memorization transient).

Parameters without a gradient this step (``p.grad is None``: frozen, or unused by this
batch's forward pass, e.g. an MoE expert no token was routed to) are skipped and keep their
filter state. The filter state is part of a checkpoint (:meth:`GradFilter.state_dict`), so a
resumed run continues with the same filtered gradients as an uninterrupted one.

Applied to stacked parameters (seeds trained as one vmapped batch, leading member dimension)
the filter is the same per member: both filters are elementwise in the gradient.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import torch
from torch import nn

from grokspec.spec.train import GrokfastSpec


class FilterState:
    """What both filters keep (per parameter index: EMA, MA history and its running sum, the
    call count) and how: the parameter loop, the moving-average window, the checkpoint
    state. :class:`GradFilter` (one setting) and
    :class:`grokspec.training.batched_grokfast.BatchedGradFilter` (per-member settings over
    stacked parameters) differ only in how they scale, in :meth:`ema_step` and
    :meth:`add_window`."""

    def __init__(self, params: list[nn.Parameter] | list[torch.Tensor]) -> None:
        self.params = list(params)
        self.ema: dict[int, torch.Tensor] = {}
        self.history: dict[int, deque[torch.Tensor]] = {}
        self.total: dict[int, torch.Tensor] = {}  # running sum of `history` (ma)
        self.calls = 0

    def filter_kind(self) -> str | None:
        """``ema``, ``ma``, or None when the filter is off."""
        raise NotImplementedError

    def window(self) -> int:
        raise NotImplementedError

    def ema_step(self, mu: torch.Tensor, g: torch.Tensor, first: bool = False) -> None:
        """mu <- alpha * mu + (1 - alpha) * g (skipped when ``first``: mu is g), then
        g <- g + lamb * mu (in place)."""
        raise NotImplementedError

    def add_window(self, g: torch.Tensor, total: torch.Tensor) -> None:
        """g <- g + lamb * total / window (in place)."""
        raise NotImplementedError

    @torch.no_grad()
    def __call__(self) -> None:
        kind = self.filter_kind()
        if kind is None:
            return
        self.calls += 1
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            g = p.grad
            if kind == "ema":
                mu = self.ema.get(i)
                if mu is None:  # mu starts at the first gradient
                    self.ema[i] = mu = g.detach().clone()
                    self.ema_step(mu, g, first=True)
                else:
                    self.ema_step(mu, g)
            else:
                total = self._window_sum(i, g)
                if total is not None:
                    self.add_window(g, total)

    def _window_sum(self, i: int, g: torch.Tensor) -> torch.Tensor | None:
        """Sum of the last ``window`` gradients (None until there are that many): a running
        sum over a deque, re-summed exactly every ``window`` calls so float rounding cannot
        drift (stacking ``window`` copies every step would cost window x model size)."""
        window = self.window()
        hist = self.history.setdefault(i, deque())
        hist.append(g.detach().clone())
        total = self.total.get(i)
        total = self.total[i] = hist[-1].clone() if total is None else total.add_(hist[-1])
        if len(hist) > window:
            total.sub_(hist.popleft())
        if self.calls % window == 0:
            total.copy_(torch.stack(tuple(hist)).sum(0))
        return total if len(hist) == window else None

    def state_dict(self) -> dict[str, Any]:
        """Everything the filter's future depends on (for checkpoints)."""
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


class GradFilter(FilterState):
    """Stateful gradient filter over one model's parameters; call it after ``backward()``."""

    def __init__(self, spec: GrokfastSpec | None, params: list[nn.Parameter]) -> None:
        super().__init__(params)
        self.spec = spec

    def filter_kind(self) -> str | None:
        spec = self.spec
        return None if spec is None or spec.lamb == 0.0 else spec.filter

    def window(self) -> int:
        assert self.spec is not None
        return self.spec.window

    def ema_step(self, mu: torch.Tensor, g: torch.Tensor, first: bool = False) -> None:
        spec = self.spec
        assert spec is not None
        if not first:
            mu.mul_(spec.alpha).add_(g, alpha=1.0 - spec.alpha)
        g.add_(mu, alpha=spec.lamb)

    def add_window(self, g: torch.Tensor, total: torch.Tensor) -> None:
        assert self.spec is not None
        g.add_(total, alpha=self.spec.lamb / self.spec.window)
