"""A noisy sine on (-1.5, 1.5): Miller et al. 2023's Gaussian-process regression toy.

"Grokking Beyond Neural Networks" shows a GP regressor, its hyperparameters optimised by
marginal likelihood, fitting the noisy training points long before it fits the function;
with ``spurious_dims`` the input is concealed as in their other experiments.
Training targets are sin(frequency * x) + N(0, noise^2); test targets are noise-free, so test
accuracy (|prediction - sin| <= acc_tolerance) measures the learnt function. Miller et al.'s
frequency is not given in the material we have; it is a field.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field, model_validator

from grokspec.datasets.base import CLEAN_TARGET, Pool, RegressionSpecBase
from grokspec.spec.base import field_error
from grokspec.spec.lazy import lazy_module

if TYPE_CHECKING:
    import torch
else:  # imported when a dataset is built, not when a spec is validated
    torch = lazy_module("torch")


class RegressionSineSpec(RegressionSpecBase):
    """Miller et al. 2023's GP regression toy: x ~ U(low, high), y = sin(frequency x) +
    noise; 1-d features (plus spurious dims); test targets are noise-free.

    Default training set: train_size 100 of the n_examples pool.
    """

    kind: Literal["regression_sine"] = "regression_sine"
    default_train_size: ClassVar[int | None] = 100

    n_examples: int = Field(
        default=400, ge=2, le=10_000_000, description="Pool size (training + test points)."
    )
    low: float = Field(default=-1.5, description="Left end of the input interval.")
    high: float = Field(default=1.5, description="Right end of the input interval.")
    frequency: float = Field(
        default=math.pi, gt=0.0, description="Angular frequency: y = sin(frequency * x)."
    )
    noise: float = Field(
        default=0.1, ge=0.0, description="Std of the Gaussian noise on training targets."
    )

    @model_validator(mode="after")
    def _interval(self) -> RegressionSineSpec:
        if self.high <= self.low:
            raise field_error(
                "high", f"high={self.high} must be greater than low={self.low}"
            )
        return self

    def pool_size(self) -> int:
        return self.n_examples

    def build_pool(self, generator: torch.Generator) -> Pool:
        x = self.low + (self.high - self.low) * torch.rand(self.n_examples, 1, generator=generator)
        clean = torch.sin(self.frequency * x[:, 0])
        y = clean + self.noise * torch.randn(self.n_examples, generator=generator)
        return Pool(
            x=x, y=y, task="regression", input_kind="features", meta={CLEAN_TARGET: clean}
        )
