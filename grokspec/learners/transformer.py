"""Decoder-only transformer for token tasks (Power et al. 2022; Nanda et al. 2023).

Input ``x y =``: the dataset's operand tokens plus an ``=`` token appended here; the answer
is read from the last position. Two exact shortcuts make a step cheaper than the textbook
model's (bench/throughput.py; tests/test_learner_speedups.py checks both against it):

- Only the last position's output is ever used, so the last layer computes its attention
  query, MLP and unembedding for that position alone (``last_position_only``).
- The first layer's input at a position depends only on (position, token): there are
  ``operands x vocab + 1`` such pairs (the last position always holds ``=``), far fewer than
  the batch's positions. Its LayerNorm and Q/K/V projections are computed once on that table
  and gathered per sample, instead of once per sample and position.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, model_validator

from grokspec.learners.base import LearnerSpecBase
from grokspec.learners.contract import PARAMETERS, PROBES, TOKEN_EMBEDDINGS

if TYPE_CHECKING:
    from torch import nn

    from grokspec.datasets.base import Dataset


class TransformerSpec(LearnerSpecBase):
    """A small causal transformer; defaults are Nanda et al.'s one-layer modular-addition model."""

    kind: Literal["transformer"] = "transformer"
    input_kinds: ClassVar[frozenset[str]] = frozenset({"tokens"})
    tasks: ClassVar[frozenset[str]] = frozenset({"classification"})
    provides: ClassVar[frozenset[str]] = frozenset({PROBES, TOKEN_EMBEDDINGS, PARAMETERS})
    layers: int = Field(default=1, ge=1, le=24, description="Number of transformer blocks.")
    d_model: int = Field(default=128, ge=1, description="Residual stream width.")
    heads: int = Field(default=4, ge=1, description="Attention heads; must divide d_model.")
    d_mlp: int = Field(default=512, ge=1, description="Hidden width of each block's MLP.")
    activation: Literal["relu", "gelu"] = Field(default="relu", description="MLP activation.")
    layer_norm: bool = Field(
        default=False,
        description="Pre-layer-norm blocks and a final layer norm. Nanda et al. use none.",
    )
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0, description="Dropout probability.")
    last_position_only: bool = Field(
        default=True,
        description="Compute the last layer only at the answer position (same outputs, "
        "faster). False runs every position, as a naive implementation would.",
    )

    @model_validator(mode="after")
    def _heads_divide(self) -> TransformerSpec:
        if self.d_model % self.heads:
            divisors = [h for h in range(1, min(self.d_model, 16) + 1) if self.d_model % h == 0]
            raise ValueError(
                f"d_model={self.d_model} is not divisible by heads={self.heads} "
                f"(valid heads for this d_model: {divisors})"
            )
        return self

    def check_dataset(self, dataset: Dataset) -> None:
        if dataset.input_kind != "tokens" or dataset.task != "classification":
            raise ValueError(
                "the transformer reads token sequences and predicts a class; this dataset has "
                f"{dataset.input_kind} inputs for {dataset.task} (use kind: mlp)"
            )

    def build(self, dataset: Dataset) -> nn.Module:
        from grokspec.learners.models.transformer import Transformer

        self.check_dataset(dataset)
        assert dataset.vocab_size is not None and dataset.n_classes is not None
        return Transformer(self, dataset.vocab_size, dataset.input_dim + 1, dataset.n_classes)


def __getattr__(name: str) -> Any:
    """The torch modules live in :mod:`grokspec.learners.models.transformer`; importing one from
    here (``from grokspec.learners.transformer import Block``) still works and imports torch
    only then."""
    if name in _MODELS:
        from grokspec.learners.models import transformer as models

        return getattr(models, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_MODELS = frozenset({
    "Block", "Transformer"
})
