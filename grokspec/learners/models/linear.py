"""The torch modules of :mod:`grokspec.learners.linear` (its spec is there: validating a
spec must not import torch)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from grokspec.datasets.base import Dataset
from grokspec.learners.contract import PARAMETERS, TOKEN_EMBEDDINGS, Probed
from grokspec.learners.encoding import encode, feature_dim, output_dim, vocab_of

if TYPE_CHECKING:
    from grokspec.learners.linear import LinearSpec


class Linear(Probed, nn.Module):
    def __init__(self, spec: LinearSpec, dataset: Dataset) -> None:
        super().__init__()
        self.vocab = vocab_of(dataset)
        self.provides = frozenset({PARAMETERS}) | (
            frozenset({TOKEN_EMBEDDINGS}) if self.vocab is not None else frozenset()
        )
        self.dtype_ = torch.float64 if spec.dtype == "float64" else torch.float32
        self.squeeze = dataset.task == "regression" and dataset.y_train.ndim == 1
        self.linear = nn.Linear(feature_dim(dataset), output_dim(dataset), bias=spec.bias)
        self.to(self.dtype_)
        with torch.no_grad():
            for p in self.parameters():
                p.mul_(spec.init_scale)

    def token_embeddings(self) -> list[torch.Tensor]:
        """One-hot inputs: the weight's (vocab, outputs) column block per position."""
        if self.vocab is None:
            return []
        return list(self.linear.weight.T.split(self.vocab, dim=0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.linear(encode(x, self.vocab, self.dtype_))
        return out.squeeze(-1) if self.squeeze else out
