"""Composition in the symmetric group S_n (Power et al. 2022 use S5: a 120 x 120 table).

Every pair (a, b) of permutations is one example; inputs are the two permutations' indices
(tokens, permutations in lexicographic order) and the label is the index of a . b, where
(a . b)(i) = a(b(i)): b is applied first. The group is not abelian, unlike x+y mod p.
"""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from grokspec.datasets.base import DatasetSpecBase, InputKind, Pool
from grokspec.spec.lazy import lazy_module

if TYPE_CHECKING:
    import torch
else:  # imported when a dataset is built, not when a spec is validated
    torch = lazy_module("torch")


def permutations(n: int) -> torch.Tensor:
    """All n! permutations of range(n), lexicographic, as an (n!, n) int64 tensor."""
    return torch.tensor(list(itertools.permutations(range(n))), dtype=torch.int64)


def composition_table(perms: torch.Tensor) -> torch.Tensor:
    """(m, m) table of indices: table[i, j] = index of perms[i] . perms[j]."""
    m, n = perms.shape
    composed = perms[:, None, :].expand(m, m, n).gather(2, perms[None, :, :].expand(m, m, n))
    weights = n ** torch.arange(n)  # base-n code of a permutation, unique per permutation
    lookup = torch.full((n**n,), -1, dtype=torch.int64)
    lookup[(perms * weights).sum(1)] = torch.arange(m)
    return lookup[(composed * weights).sum(2)]


class PermutationSpec(DatasetSpecBase):
    """Power et al. 2022's group composition: `a . b` (b applied first) over all pairs of
    permutations of `n` elements, as tokens; the pool has (n!)^2 pairs."""

    kind: Literal["permutation"] = "permutation"
    input_kind: ClassVar[InputKind] = "tokens"

    n: int = Field(
        default=5,
        ge=2,
        le=6,
        description="Permutations of n elements: S5 has 120 elements (Power et al.), S6 720.",
    )

    def pool_size(self) -> int:
        return math.factorial(self.n) ** 2

    def build_pool(self, generator: torch.Generator) -> Pool:
        perms = permutations(self.n)
        m = perms.shape[0]
        table = composition_table(perms)
        a, b = torch.cartesian_prod(torch.arange(m), torch.arange(m)).unbind(1)
        return Pool(
            x=torch.stack([a, b], dim=1),
            y=table[a, b],
            task="classification",
            input_kind="tokens",
            n_classes=m,
            vocab_size=m,
            meta={"operand_x": a, "operand_y": b},
            info={"group": f"S{self.n}", "order": m},
        )
