"""Accuracy on the subsets a dataset's metadata names: subclasses, corrupted labels.

Computed from the per-example correctness that evaluation already produces, so a subset
metric costs two ``bincount`` calls on the evaluated rows, never another forward pass.
Carvalho et al. 2025 read grokking off exactly these curves: the dense subclasses of a class
reach high test accuracy early, a sparse one long after.
"""

from __future__ import annotations

import torch

#: ``test/acc_subclass/<class>.<subclass>``: test accuracy on one subclass of one class.
SUBCLASS_PREFIX = "test/acc_subclass/"
#: ``train/acc_subclass/<class>.<subclass>``: training accuracy on one subclass (has the model
#: memorised a sparse subclass's few training points before its test accuracy rises?).
TRAIN_SUBCLASS_PREFIX = "train/acc_subclass/"
#: Training accuracy, against the *noisy* labels, on the rows label_noise corrupted (how far
#: the model memorises the wrong labels).
TRAIN_ACC_CORRUPTED = "train/acc_corrupted"


def subclass_accuracy(
    correct: torch.Tensor, labels: torch.Tensor, subclass: torch.Tensor,
    prefix: str = SUBCLASS_PREFIX,
) -> dict[str, float]:
    """Mean of ``correct`` per (label, subclass) pair present, keyed ``<prefix><c>.<s>``."""
    c = correct.detach().to("cpu", torch.float64)
    y = labels.detach().to("cpu", torch.int64)
    s = subclass.detach().to("cpu", torch.int64)
    if c.numel() == 0:
        return {}
    n_sub = int(s.max()) + 1
    key = y * n_sub + s
    size = (int(y.max()) + 1) * n_sub
    hits = torch.bincount(key, weights=c, minlength=size)
    counts = torch.bincount(key, minlength=size)
    present = torch.nonzero(counts).flatten().tolist()
    acc = (hits / counts.clamp(min=1)).tolist()
    return {f"{prefix}{k // n_sub}.{k % n_sub}": acc[k] for k in present}


def subset_metrics(
    meta_train: dict[str, torch.Tensor],
    meta_test: dict[str, torch.Tensor],
    y_test: torch.Tensor,
    train_correct: torch.Tensor,
    test_correct: torch.Tensor,
    y_train: torch.Tensor | None = None,
) -> dict[str, float]:
    """Every subset metric the metadata allows (an empty dict for plain datasets)."""
    out: dict[str, float] = {}
    if "subclass" in meta_test:
        out.update(subclass_accuracy(test_correct, y_test, meta_test["subclass"]))
    if "subclass" in meta_train and y_train is not None:
        out.update(subclass_accuracy(train_correct, y_train, meta_train["subclass"],
                                     TRAIN_SUBCLASS_PREFIX))
    corrupted = meta_train.get("corrupted")
    if corrupted is not None and bool(corrupted.any()):
        mask = corrupted.to(train_correct.device)
        out[TRAIN_ACC_CORRUPTED] = float(train_correct[mask].float().mean())
    return out
