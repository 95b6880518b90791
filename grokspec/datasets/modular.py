"""Binary operations mod p (Power et al. 2022): the original grokking tasks.

Every pair (x, y) in the operation's domain is one example; the label is ``x op y mod p``.
Inputs are the two operand tokens; learners add their own framing (the transformer
appends an ``=`` token, the MLP one-hot encodes the operands).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field, model_validator

from grokspec.datasets.base import DatasetSpecBase, InputKind, Pool
from grokspec.spec.base import field_error
from grokspec.spec.lazy import lazy_module

if TYPE_CHECKING:
    import torch
else:  # imported when a dataset is built, not when a spec is validated
    torch = lazy_module("torch")

Op = Literal[
    "x+y", "x-y", "x*y", "x/y", "x^2+y^2", "x^2+xy+y^2", "x^2+xy+y^2+x", "x^3+xy", "x^3+xy^2+y"
]


def _is_prime(n: int) -> bool:
    return n >= 2 and all(n % d for d in range(2, int(n**0.5) + 1))


def _table(op: str, x: torch.Tensor, y: torch.Tensor, p: int) -> torch.Tensor:
    """Vectorised ``x op y mod p`` on int64 tensors (values < p, so no overflow for p < 2^20)."""
    ops: dict[str, Callable[[], torch.Tensor]] = {
        "x+y": lambda: x + y,
        "x-y": lambda: x - y,
        "x*y": lambda: x * y,
        # Division is multiplication by the inverse, y^(p-2) mod p by Fermat (p prime).
        "x/y": lambda: x * _modpow(y, p - 2, p),
        "x^2+y^2": lambda: x * x + y * y,
        "x^2+xy+y^2": lambda: x * x + x * y + y * y,
        "x^2+xy+y^2+x": lambda: x * x + x * y + y * y + x,
        "x^3+xy": lambda: (x * x % p) * x + x * y,
        "x^3+xy^2+y": lambda: (x * x % p) * x + x * (y * y % p) + y,
    }
    return torch.remainder(ops[op](), p)


def _modpow(base: torch.Tensor, exp: int, p: int) -> torch.Tensor:
    result = torch.ones_like(base)
    b = base % p
    while exp:
        if exp & 1:
            result = result * b % p
        b = b * b % p
        exp >>= 1
    return result


class ModularSpec(DatasetSpecBase):
    """``x op y mod p`` over all operand pairs (y != 0 for division)."""

    kind: Literal["modular"] = "modular"
    input_kind: ClassVar[InputKind] = "tokens"
    op: Op = Field(default="x+y", description="The binary operation, as in Power et al. 2022.")
    p: int = Field(
        default=97,
        ge=2,
        le=2000,
        description="Modulus. Must be prime for x/y (the inverse must exist); the pool has "
        "p*p pairs (p*(p-1) for division).",
    )

    nonzero_y: bool = Field(
        default=False,
        description="Leave out the pairs with y = 0: x in 0..p-1, y in 1..p-1 (the Grokfast "
        "code's x*y table, p*(p-1) pairs). Always so for x/y.",
    )

    @model_validator(mode="after")
    def _prime_for_division(self) -> ModularSpec:
        if self.op == "x/y" and not _is_prime(self.p):
            raise ValueError(f"p={self.p} is not prime: x/y needs a prime p (e.g. 97, 113)")
        if self.op == "x/y" and "nonzero_y" in self.model_fields_set and not self.nonzero_y:
            raise field_error("nonzero_y", "x/y is undefined at y = 0: its pairs always have "
                              "y in 1..p-1 (remove nonzero_y, or set it true)")
        return self

    @property
    def _drops_zero_y(self) -> bool:
        return self.nonzero_y or self.op == "x/y"

    def pool_size(self) -> int:
        return self.p * (self.p - 1) if self._drops_zero_y else self.p * self.p

    def build_pool(self, generator: torch.Generator) -> Pool:
        p = self.p
        x, y = torch.cartesian_prod(torch.arange(p), torch.arange(p)).unbind(1)
        if self._drops_zero_y:
            keep = y != 0
            x, y = x[keep], y[keep]
        z = _table(self.op, x, y, p)
        return Pool(
            x=torch.stack([x, y], dim=1),
            y=z,
            task="classification",
            input_kind="tokens",
            n_classes=p,
            vocab_size=p,
            meta={"operand_x": x, "operand_y": y},
            info={"p": p, "op": self.op},
        )
