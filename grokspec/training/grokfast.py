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

Applied to stacked parameters (members trained as one vmapped batch, leading member
dimension) the filter acts per member: both filters are elementwise in the gradient. One
class serves a single run and a batch: members with the same settings (one run, N seeds)
use torch's scalar arithmetic, members with their own ``alpha`` / ``lamb`` (a batched
sweep; off is ``lamb = 0``, which adds exactly zero) use per-member columns. The kind and an
``ma`` window must agree: :func:`grokspec.spec.train.grokfast_incompatible`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from grokspec.spec.train import GrokfastSpec, grokfast_incompatible


class GradFilter:
    """Stateful gradient filter over a model's (or a stacked batch's) parameters; call it
    after ``backward()``, before the optimizer step.

    ``spec``: one setting for every member, or one per member (``None`` or ``lamb: 0`` = off
    for that member). State per parameter index: the EMA, the MA history and its running
    sum, the call count; :meth:`state_dict` holds it for checkpoints.
    """

    def __init__(
        self,
        spec: GrokfastSpec | None | Sequence[GrokfastSpec | None],
        params: list[nn.Parameter] | list[torch.Tensor],
    ) -> None:
        specs = list(spec) if isinstance(spec, Sequence) else [spec]
        why = grokfast_incompatible(specs)
        if why:
            raise ValueError(why)
        self.params = list(params)
        self.ema: dict[int, torch.Tensor] = {}
        self.history: dict[int, deque[torch.Tensor]] = {}
        self.total: dict[int, torch.Tensor] = {}  # running sum of `history` (ma)
        self.calls = 0
        on = [s for s in specs if s is not None and s.active]
        self.kind = on[0].filter if on else None
        self.window = on[0].window if on and on[0].filter == "ma" else 1
        if all(s == specs[0] for s in specs):  # torch's Python-float arithmetic
            self.alpha: float | torch.Tensor = on[0].alpha if on else 0.0
            self.lamb: float | torch.Tensor = on[0].lamb if on else 0.0
        else:  # per-member columns, broadcast over the stacked member dimension
            device = self.params[0].device if self.params else torch.device("cpu")

            def col(values: list[float]) -> torch.Tensor:
                return torch.tensor(values, dtype=torch.float64, device=device)

            self.alpha = col([s.alpha if s is not None and s.active else 0.0 for s in specs])
            self.lamb = col([s.lamb if s is not None and s.active else 0.0 for s in specs])

    @torch.no_grad()
    def __call__(self) -> None:
        if self.kind is None:
            return
        self.calls += 1
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            g = p.grad
            if self.kind == "ema":
                mu = self.ema.get(i)
                if mu is None:  # mu starts at the first gradient
                    self.ema[i] = mu = g.detach().clone()
                else:
                    self._mix(mu, g)
                self._add(g, mu, self.lamb)
            else:
                total = self._window_sum(i, g)
                if total is not None:
                    self._add(g, total, self.lamb / self.window)

    def _mix(self, mu: torch.Tensor, g: torch.Tensor) -> None:
        """mu <- alpha * mu + (1 - alpha) * g, in place."""
        a = self.alpha
        if isinstance(a, float):
            mu.mul_(a).add_(g, alpha=1.0 - a)
        else:
            mu.mul_(_col(a, g)).add_(g * _col(1.0 - a, g))

    @staticmethod
    def _add(g: torch.Tensor, x: torch.Tensor, scale: float | torch.Tensor) -> None:
        """g <- g + scale * x, in place."""
        if isinstance(scale, float):
            g.add_(x, alpha=scale)
        else:
            g.add_(x * _col(scale, g))

    def _window_sum(self, i: int, g: torch.Tensor) -> torch.Tensor | None:
        """Sum of the last ``window`` gradients (None until there are that many): a running
        sum over a deque, re-summed exactly every ``window`` calls so float rounding cannot
        drift (stacking ``window`` copies every step would cost window x model size)."""
        window = self.window
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


def _col(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(members,) float64 -> ``like``'s dtype, shaped to broadcast over its member dim."""
    return values.to(like.dtype).view(-1, *([1] * (like.dim() - 1)))
