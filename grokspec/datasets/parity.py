"""Sparse parity: the label is the parity of k secret bits among n (Barak et al. 2022).

With k = 3 relevant bits among n = 40 this is also the *concealed* parity Miller et al. (2023)
use for Gaussian processes and Bayesian networks: the n - k irrelevant bits conceal the task.
The pool is ``n_examples`` distinct bit strings drawn uniformly (all 2^n strings when
``n_examples`` equals 2^n); train and test are disjoint parts of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from grokspec.datasets.base import DatasetSpecBase, Pool
from grokspec.spec.base import field_error
from grokspec.spec.lazy import lazy_module

if TYPE_CHECKING:
    import torch
else:  # imported when a dataset is built, not when a spec is validated
    torch = lazy_module("torch")


def distinct_bit_strings(n_bits: int, count: int, g: torch.Generator) -> torch.Tensor:
    """``count`` distinct uniformly random rows of ``n_bits`` bits (int64 0/1), in draw order."""
    if n_bits <= 20:  # enumerate: a random subset of all 2^n strings
        codes = torch.randperm(2**n_bits, generator=g)[:count]
        return (codes[:, None] >> torch.arange(n_bits)) & 1
    rows = torch.empty(0, n_bits, dtype=torch.int64)
    while rows.shape[0] < count:  # duplicates are rare at n > 20; redraw what is missing
        fresh = torch.randint(0, 2, (count - rows.shape[0], n_bits), generator=g)
        both = torch.cat([rows, fresh])
        _, inverse = torch.unique(both, dim=0, return_inverse=True)
        first = torch.full((int(inverse.max()) + 1,), both.shape[0], dtype=torch.int64)
        first.scatter_reduce_(0, inverse, torch.arange(both.shape[0]), reduce="amin")
        rows = both[first.sort().values]
    return rows


class ParitySpec(DatasetSpecBase):
    """Sparse parity (Barak et al. 2022; Miller et al. 2023's concealed parity): binary
    classification, label = XOR of the `k` relevant bits of an `n_bits` string."""

    kind: Literal["parity"] = "parity"

    n_bits: int = Field(default=40, ge=1, le=10_000, description="Bits per input (n).")
    k: int = Field(
        default=3, ge=1, description="Relevant bits (k <= n_bits); the rest are irrelevant."
    )
    n_examples: int = Field(
        default=2000,
        ge=2,
        le=10_000_000,
        description="Pool size: distinct bit strings drawn (at most 2^n_bits); train_fraction "
        "/ train_size take the training set from it, the rest is the test set.",
    )
    encoding: Literal["pm1", "binary"] = Field(
        default="pm1",
        description="Input features: `pm1` maps bit b to 1 - 2b in {-1, +1} (Barak et al.; the "
        "label is then 1 exactly when the product of the relevant features is -1); `binary` "
        "keeps {0, 1}.",
    )
    relevant: Literal["first", "random"] = Field(
        default="random",
        description="Which bits are relevant: the first k, or k positions drawn from the seed "
        "(recorded in the dataset info as `relevant_bits`).",
    )

    @model_validator(mode="after")
    def _sizes_fit(self) -> ParitySpec:
        if self.k > self.n_bits:
            raise field_error(
                "k", f"k={self.k} relevant bits do not fit in n_bits={self.n_bits} (need k <= "
                "n_bits)"
            )
        if self.n_bits < 63 and self.n_examples > 2**self.n_bits:
            raise field_error(
                "n_examples",
                f"n_examples={self.n_examples} exceeds the {2**self.n_bits} distinct strings of "
                f"n_bits={self.n_bits} (use at most {2**self.n_bits})",
            )
        return self

    def pool_size(self) -> int:
        return self.n_examples

    def build_pool(self, generator: torch.Generator) -> Pool:
        bits = distinct_bit_strings(self.n_bits, self.n_examples, generator)
        if self.relevant == "first":
            rel = torch.arange(self.k)
        else:
            rel = torch.randperm(self.n_bits, generator=generator)[: self.k].sort().values
        y = bits[:, rel].sum(1) % 2
        x = (1 - 2 * bits).float() if self.encoding == "pm1" else bits.float()
        return Pool(
            x=x,
            y=y,
            task="classification",
            input_kind="features",
            n_classes=2,
            info={"relevant_bits": rel.tolist(), "encoding": self.encoding},
        )
