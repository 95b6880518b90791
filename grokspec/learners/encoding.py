"""Turning a dataset's inputs into the real feature vectors that non-sequence learners read.

The linear model, the Bayesian net and the GP have no notion of a token sequence: they see
token inputs as the concatenated one-hot codes of the tokens (as the one-hot MLP does), so
``x + y mod p`` becomes a 2p-dimensional 0/1 vector with exactly two ones. Feature inputs are
used as they are. Defined once so all of them read the same features.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from grokspec.datasets.base import Dataset


def feature_dim(dataset: Dataset) -> int:
    """Width of the encoded input: sequence length x vocabulary for tokens, else D."""
    if dataset.input_kind == "tokens":
        assert dataset.vocab_size is not None
        return dataset.input_dim * dataset.vocab_size
    return dataset.input_dim


def output_dim(dataset: Dataset) -> int:
    """Logits per class for classification; one output per target column for regression."""
    if dataset.task == "classification":
        assert dataset.n_classes is not None
        return dataset.n_classes
    return 1 if dataset.y_train.ndim == 1 else int(dataset.y_train.shape[1])


def encode(x: torch.Tensor, vocab: int | None, dtype: torch.dtype) -> torch.Tensor:
    """One-hot tokens (``vocab`` set) or cast features, as ``dtype``, shape (N, feature_dim)."""
    if vocab is not None:
        return F.one_hot(x, vocab).flatten(1).to(dtype)
    return x.to(dtype)


def vocab_of(dataset: Dataset) -> int | None:
    """The vocabulary to one-hot encode with, or None for feature inputs."""
    return dataset.vocab_size if dataset.input_kind == "tokens" else None
