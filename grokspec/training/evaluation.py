"""Losses and the uniform evaluation every learner goes through.

:func:`standard_metrics` is what "same names everywhere" rests on: a transformer, an MLP and a
GP are all evaluated by it, so ``train/acc`` means the same thing on every chart.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from grokspec.datasets.base import Dataset
from grokspec.metrics import names
from grokspec.metrics.capture import eval_chunk
from grokspec.metrics.subsets import subset_metrics
from grokspec.spec.train import TrainSpec


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


@torch.inference_mode()
def evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, dataset: Dataset, train: TrainSpec
) -> tuple[float, float, torch.Tensor]:
    """Mean loss, mean accuracy and per-example correctness over (x, y), in eval mode."""
    was_training = model.training
    model.eval()
    total, correct = 0.0, []
    chunk = eval_chunk(x)  # bounds memory; on a CPU also keeps the activations in cache
    for i in range(0, x.shape[0], chunk):
        out = model(x[i : i + chunk])
        yb = y[i : i + chunk]
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
    the model's own ``extra_metrics()`` where it has them (e.g. the Bayesian net's KL).

    ``tensors`` without ``x_train``: the test side only (the loop supplies the train metrics
    from the training batches, ``train.train_metrics: batches``)."""
    # The training set first, then the test set: the progress measures reuse this forward
    # pass through the capture (grokspec.metrics.capture) when it ran their inputs first
    # (the Fourier measure: every p^2 pair, train then test; feature rank: training rows).
    metrics: dict[str, float] = {}
    tr_ok = None
    if "x_train" in tensors:
        tr_loss, tr_acc, tr_ok = evaluate(model, tensors["x_train"], tensors["y_train"],
                                          dataset, train)
        metrics.update({names.TRAIN_LOSS: tr_loss, names.TRAIN_ACC: tr_acc})
    te_loss, te_acc, te_ok = evaluate(model, tensors["x_test"], tensors["y_test"], dataset, train)
    metrics.update({names.TEST_LOSS: te_loss, names.TEST_ACC: te_acc,
                    names.WEIGHT_NORM: weight_norm(model)})
    if tr_ok is not None:
        # Per-subclass test accuracy, accuracy on corrupted labels: from the correctness.
        metrics.update(
            subset_metrics(dataset.meta_train, dataset.meta_test, dataset.y_test, tr_ok, te_ok,
                           dataset.y_train)
        )
    extra = getattr(model, "extra_metrics", None)
    if callable(extra):
        metrics.update(extra())
    return metrics
