"""A linear teacher: the solvable model of Levi et al. 2023 ("Grokking in Linear Estimators").

x ~ N(0, I_dim), y = w . x / sqrt(dim) (+ noise) with w ~ N(0, I_dim) drawn from the seed, so
y has variance about 1. A linear student trained by gradient descent fits the training set
before the test set; with a thresholded accuracy (here: |prediction - y| <= acc_tolerance)
the smooth decay of the test loss shows up as a late jump in test accuracy, which Levi et al.
argue is grokking "without understanding". Their grokking regime has more training samples
than dimensions (dim / train_size < 1), which the defaults respect.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from grokspec.datasets.base import CLEAN_TARGET, Pool, RegressionSpecBase
from grokspec.spec.lazy import lazy_module

if TYPE_CHECKING:
    import torch
else:  # imported when a dataset is built, not when a spec is validated
    torch = lazy_module("torch")


class LinearTeacherSpec(RegressionSpecBase):
    """Levi et al. 2023's solvable model: regression on x ~ N(0, I_dim) with a random linear
    teacher, y = w . x / sqrt(dim) (+ noise).

    Default training set: train_size 200 of the n_examples pool (d / n_train = 0.5).
    """

    kind: Literal["linear_teacher"] = "linear_teacher"
    default_train_size: ClassVar[int | None] = 200

    dim: int = Field(default=100, ge=1, le=100_000, description="Input dimension d.")
    n_examples: int = Field(
        default=1200,
        ge=2,
        le=10_000_000,
        description="Pool size: training examples (train_size, default 200) plus test examples.",
    )
    noise: float = Field(
        default=0.0,
        ge=0.0,
        description="Std of Gaussian noise on the training targets (test targets are "
        "noise-free).",
    )

    def pool_size(self) -> int:
        return self.n_examples

    def build_pool(self, generator: torch.Generator) -> Pool:
        w = torch.randn(self.dim, generator=generator)
        x = torch.randn(self.n_examples, self.dim, generator=generator)
        clean = x @ w / math.sqrt(self.dim)
        y = clean + self.noise * torch.randn(self.n_examples, generator=generator)
        return Pool(
            x=x,
            y=y,
            task="regression",
            input_kind="features",
            meta={CLEAN_TARGET: clean},
            info={"teacher_w": w},
        )
