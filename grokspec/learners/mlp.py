"""Multi-layer perceptron (Liu et al. 2022 "Omnigrok", Kumar et al. 2024, Fan et al. 2024).

Token inputs are one-hot encoded (or embedded) and concatenated; feature inputs are used
as they are. ``init_scale`` multiplies every initial weight: a large scale starts training in
the lazy regime, which is what delays generalization in Omnigrok and Kumar et al.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from grokspec.datasets.base import Dataset
from grokspec.learners.base import LearnerSpecBase


class Quadratic(nn.Module):
    """x -> x^2: the activation with which a one-hidden-layer MLP groks modular addition fast."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * x


ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "silu": nn.SiLU,
    "quadratic": Quadratic,
}


class OneHotLinear(nn.Linear):
    """A linear layer over the concatenated one-hot codes of ``seq`` tokens.

    Its weight is exactly that of ``nn.Linear(seq * vocab, out)`` (so weight-based measures
    read it the same way), but on token ids it gathers one weight column per position instead
    of multiplying by a mostly-zero matrix: the same values at about half the cost of a
    training step (bench/throughput.py). Float inputs (explicit one-hot vectors) still work.
    """

    def __init__(self, seq: int, vocab: int, out: int, bias: bool = True) -> None:
        super().__init__(seq * vocab, out, bias=bias)
        self.register_buffer("offsets", torch.arange(seq) * vocab, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.is_floating_point():
            return super().forward(x)
        h = F.embedding(x + self.offsets, self.weight.t()).sum(1)
        return h if self.bias is None else h + self.bias


class MLPSpec(LearnerSpecBase):
    """Fully connected network: ``depth`` hidden layers of ``width`` units."""

    kind: Literal["mlp"] = "mlp"
    depth: int = Field(default=1, ge=1, le=64, description="Number of hidden layers.")
    width: int = Field(default=512, ge=1, description="Units per hidden layer.")
    activation: Literal["relu", "gelu", "tanh", "silu", "quadratic"] = Field(
        default="relu", description="Hidden activation; `quadratic` is x^2."
    )
    input_encoding: Literal["one_hot", "embedding"] = Field(
        default="one_hot",
        description="For token inputs: one-hot per token, or a learned embedding per token "
        "(concatenated). Ignored for feature inputs.",
    )
    embed_dim: int = Field(
        default=128, ge=1, description="Embedding size (input_encoding: embedding)."
    )
    init_scale: float = Field(
        default=1.0, gt=0.0, description="Multiplier on PyTorch's default initial weights."
    )
    bias: bool = Field(default=True, description="Use biases in the linear layers.")
    dtype: Literal["float32", "float64"] = Field(
        default="float32", description="Parameter precision (float64 for very deep nets)."
    )

    def build(self, dataset: Dataset) -> nn.Module:
        return MLP(self, dataset)


class MLP(nn.Module):
    def __init__(self, spec: MLPSpec, dataset: Dataset) -> None:
        super().__init__()
        self.tokens = dataset.input_kind == "tokens"
        self.one_hot = self.tokens and spec.input_encoding == "one_hot"
        self.vocab = dataset.vocab_size or 0
        seq = dataset.input_dim
        if not self.tokens:
            d_in = seq
        elif self.one_hot:
            d_in = seq * self.vocab
        else:
            self.embed = nn.Embedding(self.vocab, spec.embed_dim)
            d_in = seq * spec.embed_dim
        d_out = dataset.n_classes if dataset.task == "classification" else 1
        assert d_out is not None
        dims = [d_in] + [spec.width] * spec.depth
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:], strict=True):
            linear = (
                OneHotLinear(seq, self.vocab, b, bias=spec.bias)
                if self.one_hot and not layers
                else nn.Linear(a, b, bias=spec.bias)
            )
            layers += [linear, ACTIVATIONS[spec.activation]()]
        layers.append(nn.Linear(dims[-1], d_out, bias=spec.bias))
        self.net = nn.Sequential(*layers)
        self.regression = dataset.task == "regression"
        dtype = torch.float64 if spec.dtype == "float64" else torch.float32
        self.to(dtype)
        self.dtype_ = dtype
        if spec.init_scale != 1.0:
            with torch.no_grad():
                for p in self.parameters():
                    p.mul_(spec.init_scale)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """What the first layer reads: token ids (one-hot, see OneHotLinear), embeddings or
        features."""
        if self.one_hot:
            return x
        if self.tokens:
            return self.embed(x).flatten(1)
        return x.to(self.dtype_)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(self.encode(x))
        return out.squeeze(-1) if self.regression else out
