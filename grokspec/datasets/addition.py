"""Integer addition without a modulus: Liu et al. 2022's toy task ("Towards understanding
grokking: an effective theory of representation learning", Sec. 2).

Symbols 0..p-1; an example is an unordered pair (i, j), i <= j, and its label is the integer
i + j in 0..2p-2. The pair is unordered because Liu et al.'s model reads the *sum* of the two
symbols' representations (E_i + E_j), which cannot tell (i, j) from (j, i): listing both orders
would put every test pair's twin in the training set. With p = 10 the pool is 55 pairs; the
paper trains on 45 of them.

Why a family of its own: unlike ``modular`` (x + y mod p, p classes), the label space has
2p - 1 classes and the structure to learn is a line, not a circle, which is what Liu et al.'s
effective theory (parallelograms E_i + E_j = E_m + E_n when i + j = m + n) is about.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from grokspec.datasets.base import DatasetSpecBase, InputKind, Pool
from grokspec.spec.lazy import lazy_module

if TYPE_CHECKING:
    import torch
else:  # imported when a dataset is built, not when a spec is validated
    torch = lazy_module("torch")


class AdditionSpec(DatasetSpecBase):
    """i + j over the integers, for unordered pairs i <= j of symbols 0..p-1 (Liu et al. 2022's
    toy). Labels 0..2p-2; the pool has p (p + 1) / 2 pairs."""

    kind: Literal["addition"] = "addition"
    input_kind: ClassVar[InputKind] = "tokens"
    classes_are_tokens: ClassVar[bool] = False  # sums reach 2p - 2
    p: int = Field(
        default=10,
        ge=2,
        le=2000,
        description="Number of symbols (0..p-1); Liu et al.'s toy uses p = 10 (55 pairs, "
        "19 possible sums).",
    )

    def pool_size(self) -> int:
        return self.p * (self.p + 1) // 2

    def build_pool(self, generator: torch.Generator) -> Pool:
        i, j = torch.triu_indices(self.p, self.p)  # every i <= j, row by row
        return Pool(
            x=torch.stack([i, j], dim=1),
            y=i + j,
            task="classification",
            input_kind="tokens",
            n_classes=2 * self.p - 1,
            vocab_size=self.p,
            meta={"operand_x": i, "operand_y": j},
            info={"p": self.p, "op": "x+y (integers)"},
        )
