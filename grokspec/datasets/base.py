"""The one Dataset object every family builds, and the transforms shared by all families.

A family only enumerates its *pool* of examples (inputs, targets, per-example metadata);
how much of the pool is used for training (``train_fraction`` / ``train_size``) is decided
here, once, so every family splits the same deterministic way. After the split,
:meth:`DatasetSpecBase.build` applies the shared transforms (``spurious_dims``,
``label_noise``, see :mod:`grokspec.datasets.transforms`), so no family re-implements them.
A family whose test set is not a random part of one pool (a balanced test set, noise-free
test targets) overrides :meth:`DatasetSpecBase.build_split` instead of ``build_pool``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, model_validator

from grokspec.datasets.transforms import SpuriousSpec, apply_transforms
from grokspec.spec.base import StrictModel, field_error
from grokspec.spec.lazy import lazy_module

if TYPE_CHECKING:
    import torch
else:  # imported when a dataset is built, not when a spec is validated
    torch = lazy_module("torch")

Task = Literal["classification", "regression"]
#: Pool metadata of a regression family with target noise: the noise-free target. The test
#: set uses it (generalisation is judged against the true function, not the noise).
CLEAN_TARGET = "clean_target"
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
    #: Used when a spec gives neither train_fraction nor train_size: a family whose paper
    #: fixes a training-set size (Kumar et al.'s 550 points) sets default_train_size.
    default_train_fraction: ClassVar[float] = 0.3
    default_train_size: ClassVar[int | None] = None
    #: Token families: is every class one of the input tokens (x op y mod p: yes)? A learner
    #: that unembeds to its input vocabulary checks this at validation.
    classes_are_tokens: ClassVar[bool] = True

    train_fraction: float | None = Field(
        default=None,
        gt=0.0,
        lt=1.0,
        description="Fraction of the pool used for training (0 < f < 1); the rest is the "
        "test set. Give this or train_size, not both. When neither is given, the family's "
        "default applies (0.3 of the pool unless the family's description says otherwise).",
    )
    train_size: int | None = Field(
        default=None,
        ge=1,
        description="Absolute number of training examples; the rest of the pool is the test "
        "set. Give this or train_fraction, not both.",
    )
    spurious_dims: SpuriousSpec | None = Field(
        default=None,
        description="Concealment (Miller et al. 2023): append `count` random input dimensions "
        "(token inputs: random tokens) that carry no label information, drawn once per "
        "example; by default random 0/1 bits as in Miller et al.'s code (`distribution`). "
        "Miller et al. report that the grokking delay grows with `count`.",
    )
    label_noise: float = Field(
        default=0.0,
        ge=0.0,
        lt=1.0,
        description="Fraction of training labels replaced by a uniformly random other class "
        "(classification only; the test set stays clean). The corrupted rows are recorded in "
        "the dataset metadata and `train/acc_corrupted` reports how well they are memorised.",
    )

    @model_validator(mode="before")
    @classmethod
    def _default_fraction(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("train_fraction") is None and data.get(
            "train_size"
        ) is None:
            if cls.default_train_size is not None:
                data = {**data, "train_size": cls.default_train_size}
            else:
                data = {**data, "train_fraction": cls.default_train_fraction}
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
            raise field_error(
                "train_size",
                f"train_size={self.train_size} leaves no test examples: the pool has {n} "
                f"(use at most {n - 1})",
            )
        return self

    @model_validator(mode="after")
    def _transforms_fit(self) -> DatasetSpecBase:
        if self.label_noise > 0 and self.task != "classification":
            raise field_error(
                "label_noise",
                f"label_noise needs a classification dataset; kind '{getattr(self, 'kind', '?')}'"
                " is a regression task (use label_noise: 0, or add target noise with the "
                "family's own noise field)",
            )
        sp = self.spurious_dims
        if sp is not None and self.input_kind == "tokens" and sp.distribution not in (
            "binary", "uniform"
        ):
            raise field_error(
                "spurious_dims.distribution",
                f"'{sp.distribution}' is for feature inputs; this family's inputs are tokens, "
                "whose spurious tokens are 'binary' (tokens 0/1, Miller et al.'s random bits) "
                "or 'uniform' (uniform over the vocabulary)",
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

    def build_split(self, seed: int) -> Dataset:
        """The family's train/test split, before the shared transforms (default: a random
        split of :meth:`build_pool`)."""
        g = torch.Generator().manual_seed(seed)
        pool = self.build_pool(g)
        return split_pool(pool, self.n_train_for(len(pool)), g)

    def build(self, seed: int) -> Dataset:
        """Build the dataset deterministically from ``seed``: split, then shared transforms.

        Families override :meth:`build_pool` or :meth:`build_split`, never this method, so
        every family gets ``spurious_dims`` and ``label_noise``.
        """
        ds = self.build_split(seed)
        return apply_transforms(ds, self.spurious_dims, self.label_noise, seed)


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


class RegressionSpecBase(DatasetSpecBase):
    """A regression family: real-valued targets, trained with MSE.

    Accuracy is not defined for regression, yet every runner logs ``train/acc`` and
    ``test/acc`` so curves of any two experiments overlay. The surrogate is the fraction of
    examples whose prediction is within ``acc_tolerance`` of the target (Levi et al. 2023 use
    this kind of thresholded accuracy; it is what makes a smooth loss curve look like a jump).
    """

    task: ClassVar[Task] = "regression"

    acc_tolerance: float = Field(
        default=0.1,
        gt=0.0,
        description="Accuracy surrogate for regression: an example counts as correct when "
        "|prediction - target| <= acc_tolerance (absolute, in target units; targets of the "
        "built-in regression families have standard deviation about 1).",
    )

    def build_split(self, seed: int) -> Dataset:
        """The random split; test targets become noise-free where the pool has them."""
        ds = super().build_split(seed)
        clean = ds.meta_test.get(CLEAN_TARGET)
        if clean is not None:
            ds.y_test = clean
        return ds

    def build(self, seed: int) -> Dataset:
        ds = super().build(seed)
        ds.info["acc_tolerance"] = self.acc_tolerance
        return ds
