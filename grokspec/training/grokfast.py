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


class GradFilter:
    """Stateful gradient filter over one model's parameters; call it after ``backward()``."""

    def __init__(self, spec: GrokfastSpec | None, params: list[nn.Parameter]) -> None:
        self.spec = spec
        self.params = list(params)
        self.ema: dict[int, torch.Tensor] = {}
        self.history: dict[int, deque[torch.Tensor]] = {}
        self.total: dict[int, torch.Tensor] = {}  # running sum of `history` (ma)
        self.calls = 0

    @torch.no_grad()
    def __call__(self) -> None:
        spec = self.spec
        if spec is None or spec.lamb == 0.0:
            return
        self.calls += 1
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            g = p.grad
            if spec.filter == "ema":
                mu = self.ema.get(i)
                if mu is None:
                    mu = self.ema[i] = g.detach().clone()
                else:
                    mu.mul_(spec.alpha).add_(g, alpha=1.0 - spec.alpha)
                g.add_(mu, alpha=spec.lamb)
            else:
                self._moving_average(i, g, spec)

    def _moving_average(self, i: int, g: torch.Tensor, spec: GrokfastSpec) -> None:
        """Running sum over a deque, re-summed exactly every `window` calls so float
        rounding cannot drift (stacking `window` copies every step would cost window x
        model size per step)."""
        hist = self.history.setdefault(i, deque())
        hist.append(g.detach().clone())
        total = self.total.get(i)
        total = self.total[i] = hist[-1].clone() if total is None else total.add_(hist[-1])
        if len(hist) > spec.window:
            total.sub_(hist.popleft())
        if self.calls % spec.window == 0:
            total.copy_(torch.stack(tuple(hist)).sum(0))
        if len(hist) == spec.window:
            g.add_(total, alpha=spec.lamb / spec.window)

    def state_dict(self) -> dict[str, Any]:
        """Everything the filter's future depends on (for checkpoints)."""
        return {
            "calls": self.calls,
            "ema": dict(self.ema),
            "history": {i: list(h) for i, h in self.history.items()},
            "total": dict(self.total),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.calls = int(state["calls"])
        self.ema = {int(i): t for i, t in state["ema"].items()}
        self.history = {int(i): deque(h) for i, h in state["history"].items()}
        self.total = {int(i): t for i, t in state["total"].items()}
