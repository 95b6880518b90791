"""Teacher targets on Gaussian inputs: Kumar et al. 2024's polynomial, Omnigrok's random MLP.

``target: polynomial`` is the task of "Grokking as the Transition from Lazy to Rich Training
Dynamics" (Kumar et al. 2024): x ~ N(0, I_D), y = (beta . x / sqrt(D))^2, D = 100 and 550
training points by default. A two-layer network started in the lazy regime (large
``init_scale`` or output scale) first fits it like a kernel and generalises only once it learns
the feature direction beta: grokking without weight decay.

``target: mlp`` is a random teacher network as in the teacher-student experiments of
Omnigrok (Liu et al. 2022) and Kumar et al.: a student MLP learns a fixed random MLP.
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


class TeacherSpec(RegressionSpecBase):
    """Kumar et al. 2024's polynomial teacher, or Omnigrok's random MLP teacher: regression
    on x ~ N(0, I_dim) with a fixed random teacher drawn from the seed.

    Default training set: train_size 550 of the n_examples pool (Kumar et al.).
    """

    kind: Literal["teacher"] = "teacher"
    default_train_size: ClassVar[int | None] = 550

    target: Literal["polynomial", "kumar2024", "mlp"] = Field(
        default="polynomial",
        description="`polynomial`: y = (beta . x / sqrt(dim))^2 with beta a random direction "
        "of norm sqrt(dim), so beta . x / sqrt(dim) ~ N(0, 1) and y has mean 1, std sqrt(2) "
        "(grokspec's normalisation of Kumar et al.'s task). `kumar2024`: Kumar et al. 2024's "
        "Fig. 1 task as written: x ~ N(0, I/dim), beta ~ N(0, I), y = (beta . x)^2 / 2. "
        "`mlp`: y is a random tanh MLP of x, scaled to unit standard "
        "deviation over the pool (Omnigrok's teacher-student task).",
    )
    dim: int = Field(default=100, ge=1, le=100_000, description="Input dimension D.")
    n_examples: int = Field(
        default=1550,
        ge=2,
        le=10_000_000,
        description="Pool size: training examples (train_size, default 550 as in Kumar et "
        "al.) plus test examples.",
    )
    noise: float = Field(
        default=0.0,
        ge=0.0,
        description="Std of Gaussian noise added to the training targets (test targets stay "
        "noise-free: the test set measures the learnt function).",
    )
    teacher_width: int = Field(default=64, ge=1, description="target: mlp - hidden units.")
    teacher_depth: int = Field(default=1, ge=1, le=16, description="target: mlp - hidden layers.")

    def pool_size(self) -> int:
        return self.n_examples

    def build_pool(self, generator: torch.Generator) -> Pool:
        x = torch.randn(self.n_examples, self.dim, generator=generator)
        if self.target == "kumar2024":
            x = x / math.sqrt(self.dim)
            beta = torch.randn(self.dim, generator=generator)
            y = 0.5 * (x @ beta) ** 2
            info: dict = {"beta": beta}
        elif self.target == "polynomial":
            beta = torch.randn(self.dim, generator=generator)
            beta = beta / beta.norm() * math.sqrt(self.dim)
            y = (x @ beta / math.sqrt(self.dim)) ** 2
            info = {"beta": beta}
        else:
            h = x
            for _ in range(self.teacher_depth):
                w = torch.randn(h.shape[1], self.teacher_width, generator=generator)
                h = torch.tanh(h @ w / math.sqrt(h.shape[1]))
            v = torch.randn(self.teacher_width, generator=generator)
            y = h @ v
            y = y / y.std()
            info = {}
        clean = y.clone()
        if self.noise > 0:
            y = y + self.noise * torch.randn(y.shape, generator=generator)
        return Pool(
            x=x,
            y=y,
            task="regression",
            input_kind="features",
            meta={CLEAN_TARGET: clean},
            info={"target": self.target, **info},
        )
