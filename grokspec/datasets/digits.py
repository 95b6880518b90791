"""Real data, offline: scikit-learn's bundled 8x8 handwritten digits (1797 images, no download).

A small real classification task for the lazy-to-rich and data-size studies (Kumar et al.
2024 and Omnigrok use MNIST; these digits are its offline stand-in). ``distortion`` imitates
Carvalho et al. 2025's MNIST experiment, where a train/test shift is induced through clusters
of each class: here every class is split into ``clusters`` k-means clusters of its pixel
vectors, and the *training* images of the distorted classes get a fixed random pattern per
cluster added, while test images stay clean. Carvalho et al. cluster in a ResNet latent space
and their exact protocol is not public; this is a documented approximation, not their data.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np
from pydantic import Field, field_validator

from grokspec.datasets.base import Dataset, DatasetSpecBase, Pool, split_pool
from grokspec.datasets.transforms import derived_generator
from grokspec.spec.base import StrictModel
from grokspec.spec.lazy import lazy_module

if TYPE_CHECKING:
    import torch
else:  # imported when a dataset is built, not when a spec is validated
    torch = lazy_module("torch")

N_DIGITS = 1797  # images in sklearn.datasets.load_digits


@lru_cache(maxsize=1)
def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    """Pixels scaled to [0, 1] and labels, read from scikit-learn's bundled file.

    The file is read directly because importing scikit-learn takes longer (over a second)
    than everything else a dataset build does; ``load_digits`` is the fallback.
    """
    spec = importlib.util.find_spec("sklearn")
    path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz" if (
        spec and spec.origin
    ) else None
    if path is not None and path.exists():
        data = np.loadtxt(path, delimiter=",", dtype=np.float32)
        pixels, labels = data[:, :-1], data[:, -1].astype(np.int64)
    else:  # pragma: no cover - a scikit-learn that moved its data file
        from sklearn.datasets import load_digits

        d = load_digits()
        pixels, labels = d.data.astype(np.float32), d.target.astype(np.int64)
    return torch.from_numpy(pixels) / 16.0, torch.from_numpy(labels)


def _sq_dist(x: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Squared distances (rows x centers)."""
    return (x * x).sum(1, keepdims=True) - 2 * x @ centers.T + (centers * centers).sum(1)


def kmeans(x: torch.Tensor, k: int, g: torch.Generator, iters: int = 25) -> torch.Tensor:
    """Cluster ids of the rows of ``x``: Lloyd's algorithm from a k-means++ start (seeded).

    The loop runs in numpy: a few hundred tiny operations, which torch's intra-op threads
    slow down by orders of magnitude on a busy machine. Random choices come from ``g``.
    """
    xs = x.numpy().astype(np.float64)
    k = min(k, xs.shape[0])
    first = int(torch.randint(0, xs.shape[0], (1,), generator=g))
    centers = xs[[first]]
    for _ in range(1, k):
        d2 = np.clip(_sq_dist(xs, centers).min(1), 0, None)
        probs = torch.from_numpy(d2 / d2.sum() if d2.sum() > 0 else np.ones_like(d2))
        pick = int(torch.multinomial(probs, 1, generator=g))
        centers = np.concatenate([centers, xs[[pick]]])
    ids = _sq_dist(xs, centers).argmin(1)
    for _ in range(iters):
        for j in range(k):
            if (ids == j).any():
                centers[j] = xs[ids == j].mean(0)
        new = _sq_dist(xs, centers).argmin(1)
        if np.array_equal(new, ids):
            break
        ids = new
    return torch.from_numpy(ids).long()


class DistortionSpec(StrictModel):
    """A fixed random pattern per cluster, added to the training images of some classes."""

    clusters: int = Field(default=3, ge=1, le=100, description="k-means clusters per class.")
    strength: float = Field(
        default=0.5,
        ge=0.0,
        description="Std of the added pattern's pixels (pixels are in [0, 1] before it).",
    )
    classes: list[int] = Field(
        default=[0, 1, 2, 3, 4],
        description="Digits whose training images are distorted (test images stay clean).",
    )

    @field_validator("classes")
    @classmethod
    def _digit_ids(cls, v: list[int]) -> list[int]:
        bad = [c for c in v if not 0 <= c <= 9]
        if bad:
            raise ValueError(f"classes must be digits 0-9 (got {bad})")
        return v


class DigitsSpec(DatasetSpecBase):
    """Real data offline: scikit-learn's 8x8 digits, 64 pixel features in [0, 1], 10 classes;
    the pool is all 1797 images. Optional Carvalho et al.-style per-cluster distortion.

    Default training set: train_size 500 (the rest, 1297 images, is the test set).
    """

    kind: Literal["digits"] = "digits"
    default_train_size: ClassVar[int | None] = 500

    standardize: bool = Field(
        default=False,
        description="Z-score every pixel with the training set's mean and std (constant "
        "pixels are only centred).",
    )
    distortion: DistortionSpec | None = Field(
        default=None,
        description="Carvalho et al.-style shift: per-cluster fixed patterns added to the "
        "training images of some classes. The cluster of every image is recorded as its "
        "`subclass`, so `test/acc_subclass/<digit>.<cluster>` is logged.",
    )

    def pool_size(self) -> int:
        return N_DIGITS

    def build_pool(self, generator: torch.Generator) -> Pool:
        x, y = _digits()
        return Pool(x=x.clone(), y=y.clone(), task="classification", input_kind="features",
                    n_classes=10)

    def build_split(self, seed: int) -> Dataset:
        g = torch.Generator().manual_seed(seed)
        pool = self.build_pool(g)
        # Clusters and patterns draw from their own streams: the split is the same with or
        # without a distortion, so the two are comparable example by example.
        if self.distortion is not None:
            pool.meta["subclass"] = self._clusters(pool, derived_generator(seed, "clusters"))
        ds = split_pool(pool, self.n_train_for(len(pool)), g)
        if self.distortion is not None:
            ds.x_train = self._distort(ds, derived_generator(seed, "distortion"))
        if self.standardize:
            mean, std = ds.x_train.mean(0), ds.x_train.std(0)
            std = torch.where(std > 0, std, torch.ones_like(std))
            ds.x_train, ds.x_test = (ds.x_train - mean) / std, (ds.x_test - mean) / std
        return ds

    def _clusters(self, pool: Pool, g: torch.Generator) -> torch.Tensor:
        assert self.distortion is not None
        ids = torch.zeros(len(pool), dtype=torch.int64)
        for c in range(10):
            rows = torch.nonzero(pool.y == c).flatten()
            ids[rows] = kmeans(pool.x[rows], self.distortion.clusters, g)
        return ids

    def _distort(self, ds: Dataset, g: torch.Generator) -> torch.Tensor:
        assert self.distortion is not None
        k = self.distortion.clusters
        patterns = self.distortion.strength * torch.randn(10, k, ds.x_train.shape[1], generator=g)
        hit = torch.isin(ds.y_train, torch.tensor(self.distortion.classes))
        sub = ds.meta_train["subclass"]
        return ds.x_train + hit[:, None] * patterns[ds.y_train, sub]
