"""One optimizer step for many members at once, each member with its own hyperparameters.

Why this exists: a Liu-style lr x weight-decay phase diagram is dozens of runs of the *same*
model that differ only in optimizer settings. Stacked along a leading member dimension (the
vmapped loop of :mod:`grokspec.training.loop`), their forward and backward passes are one
batched computation; what torch's optimizers cannot do is give each slice of a stacked
tensor its own learning rate. Here every per-member hyperparameter is a tensor of shape
``(members,)``, broadcast over the member dimension, so one update serves every member.

Which settings may differ per member: ``lr``, ``weight_decay``, ``betas``, ``momentum`` and
``warmup_steps`` (each is an elementwise coefficient). ``kind`` must be the same for all:
the update rule itself is the computation being batched.

Equality with torch: each member's trajectory follows ``torch.optim.AdamW`` / ``Adam`` /
``SGD`` (single-tensor implementation, the CPU default) plus the loop's linear warmup
(``LambdaLR`` with ``min(1, (s + 1) / warmup_steps)``), operation for operation: scalar
coefficients are computed in float64 exactly as torch computes its Python-float ones, then
rounded to the parameter dtype, which is what torch's scalar kernels do. The warmup schedule is
folded into :meth:`BatchedOptimizer.step` (step ``t``, 1-based, uses ``min(1, t / warmup)``),
so there is no separate scheduler to step or checkpoint. A coefficient every member shares
(typically the betas in an lr x wd grid) is passed as torch's Python-float scalar: torch's own
arithmetic, and one pass over the state less. The hyperparameters live on the CPU, so none of
this waits for a GPU; per-member columns are copied to the device asynchronously.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from grokspec.spec.train import OptimizerSpec

#: torch's default Adam(W) epsilon; the spec does not expose it.
EPS = 1e-8

#: Optimizer kinds that are SGD updates (``gd`` is full-batch SGD where the spec has it).
SGD_KINDS = frozenset({"sgd", "gd"})


def _hyper(specs: Sequence[OptimizerSpec], device: torch.device) -> dict[str, torch.Tensor]:
    """Per-member hyperparameters as float64 tensors of shape (members,)."""

    def col(values: list[float]) -> torch.Tensor:
        return torch.tensor(values, dtype=torch.float64, device=device)

    return {
        "lr": col([s.lr for s in specs]),
        "weight_decay": col([s.weight_decay for s in specs]),
        "beta1": col([s.betas[0] for s in specs]),
        "beta2": col([s.betas[1] for s in specs]),
        "momentum": col([getattr(s, "momentum", 0.0) for s in specs]),
        "warmup": col([float(s.warmup_steps) for s in specs]),
    }


def _in_group(spec: OptimizerSpec, group: str) -> OptimizerSpec:
    """``spec`` with parameter group ``group``'s own lr / weight decay in place."""
    own = spec.groups[group].model_dump(exclude_none=True)
    return spec.model_copy(update=own)


def settings_differ(specs: Sequence[OptimizerSpec]) -> bool:
    """Whether the members need per-member coefficients (else one torch optimizer will do)."""
    first = specs[0].model_dump()
    return any(s.model_dump() != first for s in specs[1:])


class BatchedOptimizer:
    """AdamW, Adam or SGD over stacked parameters, hyperparameters per member.

    ``params`` are leaf tensors whose dimension 0 is the member; ``specs[j]`` is member j's
    :class:`~grokspec.spec.train.OptimizerSpec`. Call :meth:`step` after ``backward()``.
    """

    def __init__(
        self, params: Sequence[torch.Tensor], specs: Sequence[OptimizerSpec],
        groups: Sequence[str | None] | None = None,
    ) -> None:
        """``groups[i]``: the ``train.optimizer.groups`` entry parameter i belongs to (None:
        the optimizer's own settings); each group's coefficients are its own columns."""
        kinds = {s.kind for s in specs}
        if len(kinds) != 1:
            raise ValueError(f"members must share the optimizer kind, got {sorted(kinds)}")
        self.kind = kinds.pop()
        self.params = list(params)
        self.n = len(specs)
        for p in self.params:
            if p.dim() == 0 or p.shape[0] != self.n:
                raise ValueError(
                    f"stacked parameter of shape {tuple(p.shape)} has no member dimension "
                    f"of size {self.n}"
                )
        # on the CPU whatever the device: checking which coefficients all members share, and
        # reading them as Python floats, must not wait for the GPU
        self.hyper = _hyper(specs, torch.device("cpu"))
        self.groups = list(groups) if groups is not None else [None] * len(self.params)
        self.tables = {None: self.hyper} | {
            g: _hyper([_in_group(s, g) for s in specs], torch.device("cpu"))
            for g in dict.fromkeys(self.groups) if g is not None
        }
        #: parameter indices per group, fixed at construction (not re-derived every step)
        self._indices = {g: [i for i, own in enumerate(self.groups) if own == g]
                         for g in self.tables}
        self.steps = 0
        self.state: list[dict[str, torch.Tensor]] = [{} for _ in self.params]
        self._uniform: dict[int, tuple[float, bool]] = {}
        self._cols: dict[tuple[int, torch.dtype, torch.device], torch.Tensor] = {}

    # ------------------------------------------------------------------ coefficients

    def lr_now(self, step: int | None = None, group: str | None = None) -> torch.Tensor:
        """Each member's learning rate at optimizer step ``step`` (1-based; default: next)
        in parameter group ``group`` (None: the optimizer's own)."""
        t = self.steps + 1 if step is None else step
        h = self.tables[group]
        warm = h["warmup"]
        factor = torch.where(warm > 0, (t / warm.clamp(min=1.0)).clamp(max=1.0), 1.0)
        return h["lr"] * factor

    def _col(self, values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """(members,) float64 -> the parameter's dtype and device, shaped to broadcast over
        ``like`` (one asynchronous copy per coefficient and step)."""
        key = (id(values), like.dtype, like.device)
        if key not in self._cols:
            self._cols[key] = values.to(like.dtype).to(like.device, non_blocking=True)
        return self._cols[key].view(-1, *([1] * (like.dim() - 1)))

    # ------------------------------------------------------------------ update

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        """One update of every member (parameters without a gradient are left alone)."""
        self.steps += 1
        for group, hyper in self.tables.items():
            # keyed by ids of this group's coefficient tensors (freed ids get reused)
            self._uniform, self._cols = {}, {}
            lr = self.lr_now(self.steps, group)
            mine = self._indices[group]
            if self.kind in SGD_KINDS:
                self._sgd(hyper, lr, mine)
            else:
                self._adam(hyper, lr, mine, decoupled=self.kind == "adamw")

    def _coef(self, values: torch.Tensor, like: torch.Tensor) -> float | torch.Tensor:
        """A coefficient as torch's scalar (a Python float) when every member has the same
        value, which is torch's own arithmetic and one pass less; else a broadcast column."""
        key = id(values)
        if key not in self._uniform:
            self._uniform[key] = (float(values[0]), bool((values == values[0]).all()))
        first, same = self._uniform[key]
        return first if same else self._col(values, like)

    def _adam(self, h: dict[str, torch.Tensor], lr: torch.Tensor, mine: list[int],
              decoupled: bool) -> None:
        t = self.steps
        wd = h["weight_decay"]
        shrink = 1.0 - lr * wd  # torch: param.mul_(1 - lr * weight_decay)
        bc1 = 1.0 - h["beta1"] ** t
        bc2_sqrt = (1.0 - h["beta2"] ** t) ** 0.5
        neg_step = -(lr / bc1)
        one_minus_b1, one_minus_b2 = 1.0 - h["beta1"], 1.0 - h["beta2"]
        # (every coefficient is a local: the caches key on ids, which must stay unique)
        for i in mine:
            p, st = self.params[i], self.state[i]
            if p.grad is None:
                continue
            g = p.grad
            if not st:
                st["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                st["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            if decoupled:
                p.mul_(self._coef(shrink, p))
            else:
                g = g.add(p * self._col(wd, p))  # L2 coupled into the gradient
            st["exp_avg"].lerp_(g, self._coef(one_minus_b1, p))
            b2, c2 = self._coef(h["beta2"], p), self._coef(one_minus_b2, p)
            if isinstance(c2, float):
                st["exp_avg_sq"].mul_(b2).addcmul_(g, g, value=c2)
            else:
                st["exp_avg_sq"].mul_(b2).addcmul_(g * c2, g)
            denom = (st["exp_avg_sq"].sqrt() / self._coef(bc2_sqrt, p)).add_(EPS)
            step = self._coef(neg_step, p)
            if isinstance(step, float):
                p.addcdiv_(st["exp_avg"], denom, value=step)
            else:
                p.add_((st["exp_avg"] / denom).mul_(step))

    def _sgd(self, h: dict[str, torch.Tensor], lr: torch.Tensor, mine: list[int]) -> None:
        use_momentum = bool((h["momentum"] != 0).any())
        neg_lr = -lr
        for i in mine:
            p, st = self.params[i], self.state[i]
            if p.grad is None:
                continue
            g = p.grad.add(p * self._col(h["weight_decay"], p))
            if use_momentum:  # a member with momentum 0 gets buf = grad exactly
                buf = st.get("momentum_buffer")
                if buf is None:
                    buf = st["momentum_buffer"] = g.clone().detach()
                else:
                    buf.mul_(self._col(h["momentum"], p)).add_(g)
                g = buf
            p.add_(g * self._col(neg_lr, p))

    # ------------------------------------------------------------------ checkpoints

    def state_dict(self) -> dict[str, Any]:
        """The whole batch: step count, per-parameter buffers and the members' settings."""
        return {
            "kind": self.kind,
            "steps": self.steps,
            "hyper": {k: v.cpu() for k, v in self.hyper.items()},
            "state": [dict(st) for st in self.state],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output, onto this optimizer's device (cuda <-> cpu)."""
        if state["kind"] != self.kind or len(state["state"]) != len(self.params):
            raise ValueError(
                f"checkpoint is for {state['kind']} over {len(state['state'])} tensors, this "
                f"optimizer is {self.kind} over {len(self.params)}"
            )
        self.steps = int(state["steps"])
        self.state = [
            {k: v.to(device=p.device, dtype=p.dtype) for k, v in st.items()}
            for p, st in zip(self.params, state["state"], strict=True)
        ]

    def member_state_dict(self, j: int) -> dict[str, Any]:
        """Member j's buffers in ``torch.optim`` layout (``state`` of a solo run's optimizer
        state_dict, Adam's ``step`` included), so a batched run's checkpoint can resume alone
        (``opt.load_state_dict({**opt.state_dict(), "state": ...})``) and a solo one join a
        batch (:meth:`load_member_state_dict`)."""
        state: dict[int, dict[str, torch.Tensor]] = {}
        for i, st in enumerate(self.state):
            if st:
                one = {k: v[j].clone() for k, v in st.items()}
                if self.kind not in SGD_KINDS:
                    one["step"] = torch.tensor(float(self.steps))
                state[i] = one
        return {"state": state, "steps": self.steps}

    def load_member_state_dict(self, j: int, state: dict[str, Any]) -> None:
        """Put one member's torch-format optimizer state into slot j (see above).

        ``state["steps"]`` (or the ``step`` of its Adam buffers) must equal this batch's step
        count: the members of one batch advance together.
        """
        steps = state.get("steps")
        if steps is None:
            steps = next((int(s["step"]) for s in state["state"].values() if "step" in s), 0)
        if self.steps == 0 and all(not st for st in self.state):
            self.steps = int(steps)
        if int(steps) != self.steps:
            raise ValueError(f"member state is at step {steps}, the batch at {self.steps}")
        for i, st in state["state"].items():
            p = self.params[int(i)]
            for k, v in st.items():
                if k == "step":
                    continue
                if k not in self.state[int(i)]:
                    self.state[int(i)][k] = torch.zeros_like(p)
                self.state[int(i)][k][j] = v.to(device=p.device, dtype=p.dtype)


class FoldedSchedule:
    """Stands where the loop keeps its LR scheduler: BatchedOptimizer applies the warmup
    itself, so stepping this does nothing (and it has no state to checkpoint)."""

    def step(self) -> None:
        return None

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        return None
