"""Helpers every torch runner shares: optimizers, losses, evaluation, batches.

Kept out of the runners so each runner's loop reads top to bottom in one screen.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from grokspec.datasets.base import Dataset
from grokspec.metrics import names
from grokspec.metrics.subsets import subset_metrics
from grokspec.spec.train import OptimizerSpec, TrainSpec

EVAL_CHUNK = 16384  # rows per forward pass at evaluation (bounds memory on big test sets)


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> cuda when present, else cpu."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


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
    else:
        opt = torch.optim.SGD(
            params, lr=spec.lr, weight_decay=spec.weight_decay, momentum=spec.momentum
        )
    warm = spec.warmup_steps
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) if warm else 1.0
    )
    return opt, sched


def loss_fn(out: torch.Tensor, y: torch.Tensor, dataset: Dataset, train: TrainSpec) -> torch.Tensor:
    """Cross-entropy, or MSE on one-hot targets; regression is always MSE."""
    if dataset.task == "regression":
        return F.mse_loss(out, y.to(out.dtype))
    if train.loss == "mse":
        return F.mse_loss(out, F.one_hot(y, out.shape[-1]).to(out.dtype))
    return F.cross_entropy(out, y)


def accuracy(out: torch.Tensor, y: torch.Tensor, dataset: Dataset) -> torch.Tensor:
    """Per-example correctness (float). For regression: |pred - y| <= tolerance.

    The regression tolerance is ``dataset.info["acc_tolerance"]`` when the family sets one,
    else 0.1 times the standard deviation of the training targets.
    """
    if dataset.task == "regression":
        tol = dataset.info.get("acc_tolerance")
        if tol is None:
            tol = 0.1 * float(dataset.y_train.float().std())
        return ((out - y.to(out.dtype)).abs() <= tol).float()
    return (out.argmax(-1) == y).float()


@torch.no_grad()
def evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, dataset: Dataset, train: TrainSpec
) -> tuple[float, float, torch.Tensor]:
    """Mean loss, mean accuracy and per-example correctness over (x, y), in eval mode."""
    was_training = model.training
    model.eval()
    total, correct = 0.0, []
    for i in range(0, x.shape[0], EVAL_CHUNK):
        out = model(x[i : i + EVAL_CHUNK])
        yb = y[i : i + EVAL_CHUNK]
        total += float(loss_fn(out, yb, dataset, train)) * yb.shape[0]
        correct.append(accuracy(out, yb, dataset))
    model.train(was_training)
    c = torch.cat(correct)
    return total / x.shape[0], float(c.mean()), c


def weight_norm(model: nn.Module) -> float:
    """L2 norm of all parameters together (Power et al.; Omnigrok track it).

    A model whose parameters are not all weights (the Bayesian net also holds posterior
    standard deviations) defines ``weight_norm()`` to say what its weights are.
    """
    own = getattr(model, "weight_norm", None)
    if callable(own):
        return float(own())
    with torch.no_grad():
        return float(torch.sqrt(sum((p.double() ** 2).sum() for p in model.parameters())))


def standard_metrics(
    model: nn.Module, dataset: Dataset, train: TrainSpec, tensors: dict[str, torch.Tensor]
) -> dict[str, float]:
    """The uniform metric set for a torch model (see :mod:`grokspec.metrics.names`), plus
    the model's own ``extra_metrics()`` where it has them (e.g. the Bayesian net's KL)."""
    tr_loss, tr_acc, tr_ok = evaluate(model, tensors["x_train"], tensors["y_train"], dataset, train)
    te_loss, te_acc, te_ok = evaluate(model, tensors["x_test"], tensors["y_test"], dataset, train)
    metrics = {
        names.TRAIN_LOSS: tr_loss,
        names.TRAIN_ACC: tr_acc,
        names.TEST_LOSS: te_loss,
        names.TEST_ACC: te_acc,
        names.WEIGHT_NORM: weight_norm(model),
    }
    # Per-subclass test accuracy, accuracy on corrupted labels: from the correctness above.
    metrics.update(
        subset_metrics(dataset.meta_train, dataset.meta_test, dataset.y_test, tr_ok, te_ok)
    )
    extra = getattr(model, "extra_metrics", None)
    if callable(extra):
        metrics.update(extra())
    return metrics


def batches(n: int, batch_size: int | str, generator: torch.Generator, device: torch.device):
    """Endless index batches: ``None`` for full batch, else reshuffled each epoch."""
    if batch_size == "full" or int(batch_size) >= n:
        while True:
            yield None
    bs = int(batch_size)
    while True:
        perm = torch.randperm(n, generator=generator).to(device)
        for i in range(0, n - bs + 1, bs):
            yield perm[i : i + bs]
