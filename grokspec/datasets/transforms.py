"""Transforms every dataset family shares, applied once, after the train/test split.

* ``spurious_dims`` (Miller et al. 2023, "concealment"): extra input dimensions that carry no
  label information, drawn once per example (fixed across training steps); by default random
  0/1 bits, as in Miller et al.'s code.
* ``label_noise``: a fraction of *training* labels replaced by a uniformly random other class.

Each transform draws from its own generator, derived from the experiment seed and the
transform's name, so adding spurious dimensions never changes the split or which labels are
corrupted, and two builds with one seed are identical.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from grokspec.spec.base import StrictModel
from grokspec.spec.lazy import lazy_module

if TYPE_CHECKING:
    import torch
else:  # imported when a dataset is built, not when a spec is validated
    torch = lazy_module("torch")

if TYPE_CHECKING:  # base.py imports this module for SpuriousSpec
    from grokspec.datasets.base import Dataset

#: Metadata keys the transforms add to ``Dataset.meta_train``.
CORRUPTED = "corrupted"  # bool: this training label was replaced by label_noise
CLEAN_LABEL = "clean_label"  # int64: the label before label_noise


class SpuriousSpec(StrictModel):
    """Random input dimensions with no label information (Miller et al. 2023's concealment).

    Feature inputs get ``count`` extra columns appended after the real ones; token inputs get
    ``count`` extra token positions. Values are drawn independently per example, once, when
    the dataset is built.

    The default, ``binary``, is Miller et al.'s concealment: their ``HiddenDataset``
    (github.com/jackmiller2003/tiny-gen, ``src/dataset.py``) pads every input with
    ``torch.randint(0, 2, ...)``, i.e. random 0/1 bits, appended to the (one-hot) encoded
    input. For feature inputs ``binary`` appends 0/``scale`` columns (0/1 at scale 1). For
    token inputs it appends tokens drawn from {0, 1}: a one-hot first layer then sees, per
    extra position, two complementary 0/1 columns (an affine image of Miller's one bit), a
    transformer one of two embeddings. ``uniform`` on token inputs is grokspec's earlier
    variant: tokens uniform over the whole vocabulary (p one-hot columns of noise each).
    """

    count: int = Field(
        default=0, ge=0, le=100_000, description="Number of spurious dimensions (or tokens)."
    )
    distribution: Literal["binary", "bernoulli", "gaussian", "uniform"] = Field(
        default="binary",
        description="`binary` (Miller et al. 2023's concealment): random 0/1 bits; for "
        "feature inputs 0 or scale, for token inputs the tokens 0 or 1. Feature inputs also: "
        "`bernoulli` is +scale or -scale with probability 1/2 each (like the +-1 parity "
        "bits), `gaussian` is N(0, scale^2), `uniform` is U(-scale, scale). Token inputs: "
        "`binary` or `uniform` (uniform over the vocabulary, grokspec's earlier variant).",
    )
    scale: float = Field(
        default=1.0, gt=0.0, description="Magnitude of the feature values (ignored for tokens)."
    )


def derived_generator(seed: int, purpose: str) -> torch.Generator:
    """A generator seeded from ``(seed, purpose)``: independent streams for independent uses."""
    digest = hashlib.sha256(f"{seed}:{purpose}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))


def spurious_values(
    n: int, spec: SpuriousSpec, input_kind: str, vocab_size: int | None, g: torch.Generator
) -> torch.Tensor:
    """``n`` rows of spurious values: float32 features, or int64 tokens below ``vocab_size``."""
    if input_kind == "tokens":
        assert vocab_size is not None
        high = 2 if spec.distribution == "binary" else vocab_size
        return torch.randint(0, high, (n, spec.count), generator=g)
    if spec.distribution == "binary":
        return torch.randint(0, 2, (n, spec.count), generator=g).float() * spec.scale
    if spec.distribution == "bernoulli":
        signs = torch.randint(0, 2, (n, spec.count), generator=g).float() * 2 - 1
        return signs * spec.scale
    if spec.distribution == "gaussian":
        return torch.randn(n, spec.count, generator=g) * spec.scale
    return (torch.rand(n, spec.count, generator=g) * 2 - 1) * spec.scale


def add_spurious(ds: Dataset, spec: SpuriousSpec, seed: int) -> Dataset:
    """Append ``spec.count`` spurious columns to the train and test inputs."""
    if spec.count == 0:
        return ds
    g = derived_generator(seed, "spurious_dims")
    extra_tr = spurious_values(ds.n_train, spec, ds.input_kind, ds.vocab_size, g)
    extra_te = spurious_values(ds.n_test, spec, ds.input_kind, ds.vocab_size, g)
    info = {**ds.info, "signal_dims": ds.input_dim, "spurious_dims": spec.count}
    return replace(
        ds,
        x_train=torch.cat([ds.x_train, extra_tr.to(ds.x_train.dtype)], dim=1),
        x_test=torch.cat([ds.x_test, extra_te.to(ds.x_test.dtype)], dim=1),
        info=info,
    )


def add_label_noise(ds: Dataset, fraction: float, seed: int) -> Dataset:
    """Replace ``round(fraction * n_train)`` training labels by a uniformly random other class.

    The corrupted rows are chosen without replacement; ``(y + r) mod C`` with r uniform in
    1..C-1 is uniform over the other classes. The test set is left clean, and
    ``meta_train["corrupted"]`` / ``meta_train["clean_label"]`` record what was changed.
    """
    n_bad = round(fraction * ds.n_train)
    if n_bad == 0:
        return ds
    assert ds.task == "classification" and ds.n_classes is not None and ds.n_classes >= 2
    g = derived_generator(seed, "label_noise")
    rows = torch.randperm(ds.n_train, generator=g)[:n_bad]
    shift = torch.randint(1, ds.n_classes, (n_bad,), generator=g)
    y = ds.y_train.clone()
    y[rows] = (y[rows] + shift) % ds.n_classes
    corrupted = torch.zeros(ds.n_train, dtype=torch.bool)
    corrupted[rows] = True
    meta = {**ds.meta_train, CORRUPTED: corrupted, CLEAN_LABEL: ds.y_train.clone()}
    return replace(
        ds, y_train=y, meta_train=meta, info={**ds.info, "label_noise_count": n_bad}
    )


def apply_transforms(
    ds: Dataset, spurious: SpuriousSpec | None, label_noise: float, seed: int
) -> Dataset:
    """Every shared transform, in a fixed order (label noise does not look at the inputs)."""
    if spurious is not None:
        ds = add_spurious(ds, spurious, seed)
    if label_noise > 0:
        ds = add_label_noise(ds, label_noise, seed)
    return ds
