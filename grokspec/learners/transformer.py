"""Decoder-only transformer for token tasks (Power et al. 2022; Nanda et al. 2023).

Input ``x y =``: the dataset's operand tokens plus an ``=`` token appended here; the answer
is read from the last position. Because only that position's output is ever used, the last
layer computes its attention query, MLP and unembedding for that position alone: the same
function as running every position, at a fraction of the cost (see bench/throughput.py).
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from grokspec.datasets.base import Dataset
from grokspec.learners.base import LearnerSpecBase


class TransformerSpec(LearnerSpecBase):
    """A small causal transformer; defaults are Nanda et al.'s one-layer modular-addition model."""

    kind: Literal["transformer"] = "transformer"
    input_kinds: ClassVar[frozenset[str]] = frozenset({"tokens"})
    tasks: ClassVar[frozenset[str]] = frozenset({"classification"})
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
        self.check_dataset(dataset)
        assert dataset.vocab_size is not None and dataset.n_classes is not None
        return Transformer(self, dataset.vocab_size, dataset.input_dim + 1, dataset.n_classes)


class Block(nn.Module):
    def __init__(self, spec: TransformerSpec) -> None:
        super().__init__()
        d = spec.d_model
        self.heads = spec.heads
        self.q = nn.Linear(d, d, bias=False)
        self.kv = nn.Linear(d, 2 * d, bias=False)
        self.o = nn.Linear(d, d, bias=False)
        self._build_mlp(spec)
        self.ln1 = nn.LayerNorm(d) if spec.layer_norm else nn.Identity()
        self.ln2 = nn.LayerNorm(d) if spec.layer_norm else nn.Identity()
        self.drop = nn.Dropout(spec.dropout)

    def _build_mlp(self, spec: TransformerSpec) -> None:
        """The position-wise MLP; the mixture of experts overrides this and :meth:`mlp`."""
        self.mlp_in = nn.Linear(spec.d_model, spec.d_mlp)
        self.mlp_out = nn.Linear(spec.d_mlp, spec.d_model)
        self.act = nn.ReLU() if spec.activation == "relu" else nn.GELU()

    def mlp(self, a: torch.Tensor) -> torch.Tensor:
        return self.mlp_out(self.act(self.mlp_in(a)))

    def _split(self, t: torch.Tensor) -> torch.Tensor:  # (B, T, D) -> (B, H, T, D/H)
        b, n, d = t.shape
        return t.view(b, n, self.heads, d // self.heads).transpose(1, 2)

    def forward(self, h: torch.Tensor, last_only: bool) -> torch.Tensor:
        """``last_only``: return only the last position's output (B, 1, D)."""
        a = self.ln1(h)
        k, v = self.kv(a).chunk(2, dim=-1)
        if last_only:
            # The last position attends to every position: no mask is needed.
            q = self.q(a[:, -1:])
            att = F.scaled_dot_product_attention(self._split(q), self._split(k), self._split(v))
            h = h[:, -1:]
        else:
            q = self.q(a)
            att = F.scaled_dot_product_attention(
                self._split(q), self._split(k), self._split(v), is_causal=True
            )
        att = att.transpose(1, 2).reshape(h.shape[0], h.shape[1], -1)
        h = h + self.drop(self.o(att))
        return h + self.drop(self.mlp(self.ln2(h)))


class Transformer(nn.Module):
    """Token + learned position embeddings, ``layers`` blocks, an unembedding to classes."""

    def __init__(
        self,
        spec: TransformerSpec,
        vocab: int,
        seq_len: int,
        n_classes: int,
        block: type[Block] = Block,
    ) -> None:
        super().__init__()
        self.eq_token = vocab  # the appended "=" token
        self.last_position_only = spec.last_position_only
        self.embed = nn.Embedding(vocab + 1, spec.d_model)
        self.pos = nn.Parameter(torch.randn(seq_len, spec.d_model) / math.sqrt(spec.d_model))
        self.blocks = nn.ModuleList(block(spec) for _ in range(spec.layers))
        self.ln_f = nn.LayerNorm(spec.d_model) if spec.layer_norm else nn.Identity()
        self.unembed = nn.Linear(spec.d_model, n_classes, bias=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        eq = torch.full_like(tokens[:, :1], self.eq_token)
        h = self.embed(torch.cat([tokens, eq], dim=1)) + self.pos
        last = len(self.blocks) - 1
        for i, block in enumerate(self.blocks):
            h = block(h, last_only=self.last_position_only and i == last)
        return self.unembed(self.ln_f(h[:, -1]))
