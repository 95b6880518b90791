"""The learner as the loop sees it: one model, or several stacked into one vmapped batch.

Why N seeds batched give the numbers of N separate runs: every member gets its own split,
init and batch order from its own seed, exactly as alone; the loss summed over members has,
for each member's slice of the stacked parameters, exactly that member's gradient; and Adam,
AdamW, SGD and Grokfast act on each element independently, so one optimizer (and one filter)
over the stacked tensors is the batched optimizer. Differences are float rounding of batched
matmuls only (tests: batched == sequential within rtol 1e-4).

Sweep points that differ in optimizer or Grokfast settings batch the same way, with
per-member hyperparameters (:func:`grokspec.training.optim.build_update`).

When it pays is measured, not assumed: ``vectorize: auto`` times one step batched vs alone on
the device (:mod:`grokspec.training.cost`); bench/sweep.py has the end-to-end numbers.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from grokspec.training.batches import Batch
from grokspec.training.optim import parameter_groups

if TYPE_CHECKING:
    from grokspec.training.runner import Runner


class SingleLearner:
    """One model: ``losses`` is its loss as a one-element vector.

    ``keep_outputs``: remember the training forward's outputs (``outputs``, detached), for
    train metrics taken from the training batches (``train.train_metrics: batches``)."""

    def __init__(self, model: nn.Module, runner: Runner, keep_outputs: bool = False) -> None:
        self.model, self.runner = model, runner
        self.outputs: list[torch.Tensor] = []
        if keep_outputs:
            model.register_forward_hook(self._keep)

    def _keep(self, _module: nn.Module, _inputs: Any, out: torch.Tensor) -> None:
        if torch.is_grad_enabled():  # the training forward, not an evaluation's
            self.outputs = [out.detach()]

    def parameters(self) -> list[nn.Parameter]:
        return list(self.model.parameters())

    def groups(self) -> dict[str, list[torch.Tensor]]:
        """The model's declared parameter groups (train.optimizer.groups)."""
        return parameter_groups(list(self.model.named_parameters()),
                                getattr(self.model, "parameter_group_prefixes", {}))

    def losses(self, batches: list[Batch]) -> torch.Tensor:
        return self.runner.loss(self.model, batches[0]).reshape(1)

    def member_model(self, j: int) -> nn.Module:
        return self.model

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])


class _Functional:
    """Calls a meta-device module with given parameters: what the runner's ``loss`` sees
    under vmap, so a runner writes one loss for both the single and the stacked case."""

    def __init__(self, base: nn.Module, params: dict, buffers: dict) -> None:
        self.base, self.params, self.buffers = base, params, buffers
        self.out: torch.Tensor | None = None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.out = functional_call(self.base, (self.params, self.buffers), (x,))
        return self.out


class StackedLearner:
    """N models of one architecture as stacked tensors (leading member dimension)."""

    def __init__(self, models: list[nn.Module], runner: Runner, template: Batch,
                 keep_outputs: bool = False) -> None:
        self.models, self.runner = models, runner
        self.params, self.buffers = stack_module_state(models)
        base = copy.deepcopy(models[0]).to("meta")
        self.keep_outputs = keep_outputs
        self.outputs: list[torch.Tensor] = []

        def one(p: dict, b: dict, x: torch.Tensor, y: torch.Tensor) -> Any:
            batch = Batch(None, x, y, template.dataset, template.train)
            model = _Functional(base, p, b)
            loss = runner.loss(model, batch)  # type: ignore[arg-type]
            if keep_outputs:  # returned through vmap: one (rows, ...) slice per member
                assert model.out is not None, "the runner's loss never called the model"
                return loss, model.out.detach()
            return loss

        self._losses = vmap(one)

    def parameters(self) -> list[torch.Tensor]:
        return list(self.params.values())

    def groups(self) -> dict[str, list[torch.Tensor]]:
        """The declared parameter groups, as stacked tensors (same names as one member's)."""
        return parameter_groups(list(self.params.items()),
                                getattr(self.models[0], "parameter_group_prefixes", {}))

    def losses(self, batches: list[Batch]) -> torch.Tensor:
        xb = torch.stack([b.x for b in batches])
        yb = torch.stack([b.y for b in batches])
        out = self._losses(self.params, self.buffers, xb, yb)
        if self.keep_outputs:
            out, outputs = out
            self.outputs = list(outputs.unbind(0))
        return out

    def member_model(self, j: int) -> nn.Module:
        """Member ``j`` as a real module (its slice copied in), for evaluation and measures."""
        model = self.models[j]
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(self.params[name][j])
            for name, b in model.named_buffers():
                b.copy_(self.buffers[name][j])
        return model

    def state_dict(self) -> dict[str, Any]:
        return {"params": dict(self.params), "buffers": dict(self.buffers)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            for name, t in state["params"].items():
                self.params[name].copy_(t)
            for name, t in state["buffers"].items():
                self.buffers[name].copy_(t)


def model_vectorizable(model: nn.Module) -> str | None:
    """Why this built model cannot run under vmap with the same numbers as alone."""
    from grokspec.learners.contract import PENALTY

    if PENALTY in getattr(model, "provides", ()):
        return "the model adds its own loss term (penalty), computed outside forward"
    for m in model.modules():
        if isinstance(m, nn.Dropout) and m.p > 0:
            return "dropout draws different random masks per call"
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            return "batch norm updates running statistics in place"
    return None
