"""Linear and logistic models trained by gradient descent (Miller et al. 2023; Levi et al. 2023).

The simplest learner that groks: Levi et al. 2023 ("Grokking in linear estimators") train a
linear student on a linear teacher's outputs by gradient descent and count a test output as
correct when it lies within a tolerance of the teacher's; test accuracy then jumps long after
train accuracy, with no feature learning at all. Miller et al. 2023 show the same for linear
regression with spurious input dimensions.

Regression: ``y = W x + b`` (one output per target column), trained on MSE. Classification:
multinomial logistic regression (one logit per class, cross-entropy or ``train.loss: mse``).
Token inputs are one-hot encoded and concatenated (:mod:`grokspec.learners.encoding`), so on
modular arithmetic this runs, but cannot generalize (the answer is not linear in the one-hot
operands) - a useful negative control in a cross-model comparison.

L2 regularisation is ``train.optimizer.weight_decay``: with ``kind: sgd`` or ``adam`` it is
added to the gradient (coupled L2, the ridge penalty ``wd/2 * ||W||^2``); with ``adamw`` it is
decoupled decay.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from pydantic import Field
from torch import nn

from grokspec.datasets.base import Dataset
from grokspec.learners.base import LearnerSpecBase
from grokspec.learners.contract import PARAMETERS, TOKEN_EMBEDDINGS, Probed
from grokspec.learners.encoding import encode, feature_dim, output_dim, vocab_of


class LinearSpec(LearnerSpecBase):
    """A linear map from inputs to outputs (Levi et al. 2023): regression, or logistic
    regression for classes. Token inputs are read as concatenated one-hot codes."""

    kind: Literal["linear"] = "linear"
    provides: ClassVar[frozenset[str]] = frozenset({TOKEN_EMBEDDINGS, PARAMETERS})
    bias: bool = Field(default=True, description="Learn an intercept per output.")
    init_scale: float = Field(
        default=1.0,
        ge=0.0,
        description="Multiplier on PyTorch's default initial weights (uniform in "
        "+-1/sqrt(fan_in)); 0 starts from the zero map, as a student in Levi et al. 2023 "
        "that starts at the origin.",
    )
    dtype: Literal["float32", "float64"] = Field(
        default="float32",
        description="Parameter precision. float64 resolves the slow late phase of gradient "
        "descent on an ill-conditioned design (small eigenvalues) without rounding noise.",
    )

    def build(self, dataset: Dataset) -> nn.Module:
        return Linear(self, dataset)


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
