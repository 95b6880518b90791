"""The optimizer and learning-rate schedule a spec's ``train.optimizer`` describes."""

from __future__ import annotations

import torch
from torch import nn

from grokspec.spec.train import OptimizerSpec


def build_optimizer(
    params: list[nn.Parameter], spec: OptimizerSpec
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """Optimizer plus a linear warmup schedule (constant after ``warmup_steps``)."""
    if spec.kind == "adamw":
        opt: torch.optim.Optimizer = torch.optim.AdamW(
            params, lr=spec.lr, weight_decay=spec.weight_decay, betas=spec.betas
        )
    elif spec.kind == "adam":
        opt = torch.optim.Adam(params, lr=spec.lr, weight_decay=spec.weight_decay, betas=spec.betas)
    elif spec.kind == "gd":
        # Plain gradient descent: torch's SGD step without momentum; validation has made sure
        # the batch is the whole training set (train.batch_size: full) and momentum is 0.
        opt = torch.optim.SGD(params, lr=spec.lr, weight_decay=spec.weight_decay, momentum=0.0)
    else:
        opt = torch.optim.SGD(
            params, lr=spec.lr, weight_decay=spec.weight_decay, momentum=spec.momentum
        )
    warm = spec.warmup_steps
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) if warm else 1.0
    )
    return opt, sched
