"""The one Dataset object every family builds, and the transforms shared by all families.

A family only enumerates its *pool* of examples (inputs, targets, per-example metadata);
how much of the pool is used for training (``train_fraction`` / ``train_size``) is decided
here, once, so every family splits the same deterministic way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field, model_validator

from grokspec.specbase import StrictModel

Task = Literal["classification", "regression"]
InputKind = Literal["tokens", "features"]


@dataclass
class Dataset:
    """Train/test tensors plus what learners and metrics need to interpret them.

    ``input_kind == "tokens"``: inputs are int64 token ids of shape (N, L) from a vocabulary
    of ``vocab_size``; ``"features"``: float32 vectors of shape (N, D).
    ``meta_train`` / ``meta_test`` hold per-example tensors (operands, subclass ids, ...)
    aligned with the rows of the inputs.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    task: Task
    input_kind: InputKind
    n_classes: int | None = None
    vocab_size: int | None = None
    meta_train: dict[str, torch.Tensor] = field(default_factory=dict)
    meta_test: dict[str, torch.Tensor] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])

    @property
    def n_test(self) -> int:
        return int(self.x_test.shape[0])

    @property
    def input_dim(self) -> int:
        """Feature dimension (features) or sequence length (tokens)."""
        return int(self.x_train.shape[1])


@dataclass
class Pool:
    """Every example a family can produce, before the train/test split."""

    x: torch.Tensor
    y: torch.Tensor
    task: Task
    input_kind: InputKind
    n_classes: int | None = None
    vocab_size: int | None = None
    meta: dict[str, torch.Tensor] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.x.shape[0])


class DatasetSpecBase(StrictModel):
    """Fields every dataset family shares: how much of the pool is used for training.

    ``input_kind`` and ``task`` are class constants so an experiment can check, at
    validation, that its learner can consume the dataset without building it.
    """

    input_kind: ClassVar[InputKind] = "features"
    task: ClassVar[Task] = "classification"

    train_fraction: float | None = Field(
        default=None,
        gt=0.0,
        lt=1.0,
        description="Fraction of the pool used for training (0 < f < 1); the rest is the "
        "test set. Give this or train_size, not both. Default 0.3 when neither is given.",
    )
    train_size: int | None = Field(
        default=None,
        ge=1,
        description="Absolute number of training examples; the rest of the pool is the test "
        "set. Give this or train_fraction, not both.",
    )

    @model_validator(mode="before")
    @classmethod
    def _default_fraction(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("train_fraction") is None and data.get(
            "train_size"
        ) is None:
            data = {**data, "train_fraction": 0.3}
        return data

    @model_validator(mode="after")
    def _one_size(self) -> DatasetSpecBase:
        if self.train_fraction is not None and self.train_size is not None:
            raise ValueError("give either train_fraction or train_size, not both")
        return self

    def pool_size(self) -> int | None:
        """Number of examples in the pool, if known without building (for validation)."""
        return None

    @model_validator(mode="after")
    def _train_size_fits(self) -> DatasetSpecBase:
        n = self.pool_size()
        if n is not None and self.train_size is not None and self.train_size >= n:
            raise ValueError(
                f"train_size={self.train_size} leaves no test examples: the pool has {n} "
                f"(use at most {n - 1})"
            )
        return self

    def n_train_for(self, n: int) -> int:
        """Training-set size for a pool of ``n`` examples (at least 1, at most n - 1)."""
        if self.train_size is not None:
            k = self.train_size
        else:
            k = round((self.train_fraction or 0.3) * n)
        return min(max(k, 1), n - 1)

    def build_pool(self, generator: torch.Generator) -> Pool:  # pragma: no cover - abstract
        raise NotImplementedError

    def build(self, seed: int) -> Dataset:
        """Build the dataset deterministically from ``seed``."""
        g = torch.Generator().manual_seed(seed)
        pool = self.build_pool(g)
        return split_pool(pool, self.n_train_for(len(pool)), g)


def split_pool(pool: Pool, n_train: int, generator: torch.Generator) -> Dataset:
    """Random train/test split without replacement: train and test never share an example."""
    perm = torch.randperm(len(pool), generator=generator)
    tr, te = perm[:n_train], perm[n_train:]
    return Dataset(
        x_train=pool.x[tr],
        y_train=pool.y[tr],
        x_test=pool.x[te],
        y_test=pool.y[te],
        task=pool.task,
        input_kind=pool.input_kind,
        n_classes=pool.n_classes,
        vocab_size=pool.vocab_size,
        meta_train={k: v[tr] for k, v in pool.meta.items()},
        meta_test={k: v[te] for k, v in pool.meta.items()},
        info=dict(pool.info),
    )
