"""The optimizer and learning-rate schedule a spec's ``train.optimizer`` describes."""

from __future__ import annotations

import torch
from torch import nn

from grokspec.spec.train import OptimizerSpec


def build_optimizer(
    params: list[nn.Parameter], spec: OptimizerSpec
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """Optimizer plus a linear warmup schedule (constant after ``warmup_steps``).

    Always torch's multi-tensor (``foreach``) step: on CPU torch defaults to the per-tensor
    loop, which is 2-3x slower for the papers' many small tensors, and both give the same
    numbers (tests/test_golden.py holds the histories recorded with the per-tensor loop).
    """
    if spec.kind == "adamw":
        opt: torch.optim.Optimizer = torch.optim.AdamW(
            params, lr=spec.lr, weight_decay=spec.weight_decay, betas=spec.betas, foreach=True
        )
    elif spec.kind == "adam":
        opt = torch.optim.Adam(params, lr=spec.lr, weight_decay=spec.weight_decay,
                               betas=spec.betas, foreach=True)
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
