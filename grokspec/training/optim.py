"""The update a spec's ``train`` describes: optimizer, learning-rate schedule and Grokfast
filter (:func:`build_update`), for one run and for the members of a batch alike."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from grokspec.spec.train import OptimizerSpec, TrainSpec
from grokspec.training.batched_optim import BatchedOptimizer, FoldedSchedule, settings_differ
from grokspec.training.grokfast import GradFilter


def build_update(
    params: list[torch.Tensor], trains: Sequence[TrainSpec],
    groups: dict[str, list[torch.Tensor]] | None = None,
) -> tuple[Any, Any, Any]:
    """Optimizer, LR schedule and Grokfast filter for the loop's members (one per TrainSpec).

    Members with identical settings (one run, or N seeds of one spec) get torch's optimizer
    and :class:`~grokspec.training.grokfast.GradFilter` over the (stacked) tensors: both act
    elementwise, so they already are the batched update, and a single run's numbers stay
    exactly torch's. Members whose settings differ (a batched sweep) get
    :class:`~grokspec.training.batched_optim.BatchedOptimizer`; the filter takes per-member
    columns then.
    """
    specs = [t.optimizer for t in trains]
    if settings_differ(specs):
        # in torch's param-group order, so member state maps to a solo run's optimizer
        ordered, names = grouped_order(params, specs[0], groups or {})
        opt: Any = BatchedOptimizer(ordered, specs, names)
        sched: Any = FoldedSchedule()
    else:
        opt, sched = build_optimizer(params, specs[0], groups)  # type: ignore[arg-type]
    return opt, sched, GradFilter([t.grokfast for t in trains], params)


def build_optimizer(
    params: list[nn.Parameter], spec: OptimizerSpec,
    groups: dict[str, list[nn.Parameter]] | None = None,
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """Optimizer plus a linear warmup schedule (constant after ``warmup_steps``).

    ``groups``: the learner's parameter groups by name (:func:`parameter_groups`); those
    ``spec.groups`` names become torch param groups with their own lr / weight decay, as
    nanoGPT gives its no-decay parameters their own group. The warmup multiplies every
    group's own lr.

    Adam and AdamW take torch's fused step on a CPU or CUDA (one kernel over every tensor:
    0.45 vs 1.48 ms per step at the papers' transformer on a CPU, issue 23), other
    optimizers and devices the multi-tensor (``foreach``) step: on CPU torch defaults to the
    per-tensor loop, 2-3x slower for the papers' many small tensors. All three give the same
    numbers up to float rounding (fused vs foreach: 2e-7 after 20 steps);
    tests/test_golden.py holds histories recorded with the per-tensor loop.
    """
    fast = {"fused": True} if {p.device.type for p in params} <= {"cpu", "cuda"} else {
        "foreach": True}
    params = _param_groups(params, spec, groups or {})  # type: ignore[assignment]
    if spec.kind == "adamw":
        opt: torch.optim.Optimizer = torch.optim.AdamW(
            params, lr=spec.lr, weight_decay=spec.weight_decay, betas=spec.betas, **fast
        )
    elif spec.kind == "adam":
        opt = torch.optim.Adam(params, lr=spec.lr, weight_decay=spec.weight_decay,
                               betas=spec.betas, **fast)
    elif spec.kind == "gd":
        # Plain gradient descent: torch's SGD step without momentum; validation has made sure
        # the batch is the whole training set (train.batch_size: full) and momentum is 0.
        opt = torch.optim.SGD(params, lr=spec.lr, weight_decay=spec.weight_decay, momentum=0.0,
                              foreach=True)
    else:
        opt = torch.optim.SGD(params, lr=spec.lr, weight_decay=spec.weight_decay,
                              momentum=spec.momentum, foreach=True)
    warm = spec.warmup_steps
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) if warm else 1.0
    )
    return opt, sched


def _param_groups(
    params: list[nn.Parameter], spec: OptimizerSpec, groups: dict[str, list[nn.Parameter]]
) -> list[nn.Parameter] | list[dict[str, Any]]:
    """``params`` as torch param groups: one per ``spec.groups`` entry, then the rest."""
    if not spec.groups:
        return params
    taken: set[int] = set()
    out: list[dict[str, Any]] = []
    for name, group in spec.groups.items():
        members = groups.get(name, [])
        if not members:  # validation checks the name; a model that maps it to nothing is a bug
            raise ValueError(f"train.optimizer.groups.{name}: the model has no parameters in "
                             f"group '{name}' (it maps: {sorted(groups) or 'no groups'})")
        settings = {k: v for k, v in group.model_dump().items() if v is not None}
        out.append({"params": members, **settings})
        taken |= {id(p) for p in members}
    rest = [p for p in params if id(p) not in taken]
    return [*out, {"params": rest}] if rest else out


def grouped_order(
    params: list[torch.Tensor], spec: OptimizerSpec, groups: dict[str, list[torch.Tensor]]
) -> tuple[list[torch.Tensor], list[str | None]]:
    """``params`` in the order torch's optimizer holds them under ``spec.groups`` (group by
    group, then the rest), with each one's group name (None: the rest)."""
    split = _param_groups(params, spec, groups)
    if not spec.groups:
        return list(params), [None] * len(params)
    names = [*spec.groups, None]
    ordered, owner = [], []
    for name, group in zip(names, split, strict=False):
        assert isinstance(group, dict)
        ordered += group["params"]
        owner += [name] * len(group["params"])
    return ordered, owner


def parameter_groups(
    named: list[tuple[str, torch.Tensor]], prefixes: dict[str, tuple[str, ...]]
) -> dict[str, list[torch.Tensor]]:
    """The model's declared groups (``parameter_group_prefixes``: group -> name prefixes,
    :mod:`grokspec.learners.contract`) as lists of its parameters."""
    return {g: [p for n, p in named if n.startswith(pre)] for g, pre in prefixes.items()}
