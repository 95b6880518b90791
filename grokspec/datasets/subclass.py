"""Classes made of Gaussian subclasses, sampled unevenly (Carvalho et al. 2025).

"Grokking Explained: A Statistical Phenomenon" induces grokking through a distribution shift:
each class is a mixture of subclass clusters, the training set under-samples one subclass
(or leaves it out), and the test set is balanced over all subclasses. The dense subclasses are
learnt at once; a sparse one reaches high test accuracy much later; a removed one never does
(in the equidistant geometry, where nothing else tells which class it belongs to).

The paper's exact parameters are not public; the defaults below are chosen to show the effect
with a small MLP on a CPU (see ``specs/carvalho_subclass_imbalance.yaml``, which also needs a
large initial scale so the few sparse points are memorised before they are generalised).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field, model_validator

from grokspec.datasets.base import Dataset, DatasetSpecBase
from grokspec.spec.base import field_error
from grokspec.spec.lazy import lazy_module

if TYPE_CHECKING:
    import torch
else:  # imported when a dataset is built, not when a spec is validated
    torch = lazy_module("torch")


def largest_remainder(total: int, weights: list[float]) -> list[int]:
    """Integers proportional to ``weights`` that sum to ``total`` exactly (Hamilton's method).

    A zero weight always gets zero, so a removed subclass stays removed.
    """
    s = sum(weights)
    quotas = [total * w / s for w in weights]
    counts = [math.floor(q) for q in quotas]
    order = sorted(range(len(weights)), key=lambda i: (-(quotas[i] - counts[i]), i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


class SubclassSpec(DatasetSpecBase):
    """Carvalho et al. 2025: `classes` classes in R^dim, each a mixture of `subclasses`
    Gaussian clusters, with per-subclass training weights (subclass imbalance).

    Training examples: `train_size` in total (default 400), split equally over the classes
    and, within a class, over its subclasses in proportion to `sampling`. Test examples:
    `test_per_subclass` from every subclass, also those with weight 0 (a balanced test set).
    `train_fraction` f means f of all examples are for training: train = f/(1-f) x test.
    Metadata `subclass` holds each example's subclass index within its class; the runner
    logs `test/acc_subclass/<class>.<subclass>` for every subclass.
    """

    kind: Literal["subclass"] = "subclass"
    default_train_size: ClassVar[int | None] = 400

    classes: int = Field(default=4, ge=2, le=1000, description="Number of classes (>= 2).")
    subclasses: int = Field(
        default=2, ge=1, le=1000, description="Gaussian clusters (subclasses) per class."
    )
    dim: int = Field(
        default=64,
        ge=1,
        le=100_000,
        description="Input dimension. Needs dim >= classes*subclasses (equidistant) or "
        "classes+subclasses (equivariant): centroids lie along orthogonal directions.",
    )
    geometry: Literal["equidistant", "equivariant"] = Field(
        default="equidistant",
        description="`equidistant`: every pair of subclass centroids, of one class or of two, "
        "is `separation` apart (nothing relates the subclasses of a class). `equivariant`: "
        "centroid(c, s) = class_center(c) + offset(s); class centers are `separation` apart "
        "and the within-class offsets, shared by all classes, `subclass_separation` apart, so "
        "subclasses of one class sit closer together than to other classes' (Carvalho et al.'s "
        "two synthetic datasets).",
    )
    separation: float = Field(
        default=4.0,
        gt=0.0,
        description="Distance between subclass centroids (equidistant) or class centers "
        "(equivariant), in units of the input space.",
    )
    subclass_separation: float = Field(
        default=2.0,
        gt=0.0,
        description="Equivariant geometry: distance between the subclasses of one class.",
    )
    noise: float = Field(
        default=0.35,
        ge=0.0,
        description="Standard deviation of each cluster, per dimension (isotropic Gaussian). "
        "With the default dim and separation, 0.35 lets a 3-example subclass generalise "
        "eventually; around 0.5 and above a sparse subclass plateaus below 0.95 test accuracy.",
    )
    sampling: list[float] | list[list[float]] | None = Field(
        default=None,
        description="Training weights of the subclasses within their class: one list of "
        "`subclasses` weights used for every class, or one such list per class (`classes` "
        "lists). Weights are relative within a class: [0.98, 0.02] makes the second subclass "
        "2% of its class; 0 removes it from training (it stays in the test set). Default: "
        "equal weights.",
    )
    test_per_subclass: int = Field(
        default=100, ge=1, description="Test examples drawn from every subclass."
    )

    @model_validator(mode="after")
    def _shape_fits(self) -> SubclassSpec:
        need = self.classes * self.subclasses if self.geometry == "equidistant" else (
            self.classes + self.subclasses
        )
        if self.dim < need:
            raise field_error(
                "dim",
                f"dim={self.dim} is too small for {self.classes} classes x {self.subclasses} "
                f"subclasses in the {self.geometry} geometry (needs dim >= {need})",
            )
        if self.sampling is not None:
            self._check_sampling(self.sampling)
        if self.train_size is not None and self.train_size < self.classes:
            raise field_error(
                "train_size",
                f"train_size={self.train_size} is smaller than classes={self.classes} "
                "(every class needs a training example)",
            )
        if self.sampling is not None:
            self._check_realisable()
        return self

    def _check_realisable(self) -> None:
        """A positive weight that rounds to 0 training examples would silently turn the
        experiment into the "subclass removed" one: name the weight and the class size."""
        nested = isinstance(self.sampling[0], list) if self.sampling else False
        per_class = largest_remainder(sum(map(sum, self.train_counts())), [1.0] * self.classes)
        for c, (row, counts) in enumerate(zip(self.weights(), self.train_counts(), strict=True)):
            for s, (w, n) in enumerate(zip(row, counts, strict=True)):
                if w > 0 and n == 0:
                    share = w / sum(row)
                    raise field_error(
                        f"sampling.{c}" if nested else "sampling",
                        f"subclass {s} of class {c} has weight {w:g} ({share:.3g} of its "
                        f"class) but gets 0 of the class's {per_class[c]} training examples "
                        f"({math.ceil(1 / share - 1e-9)} per class would guarantee it one: raise "
                        "train_size, or give weight 0 to remove the subclass on purpose)",
                    )

    def _check_sampling(self, sampling: list[float] | list[list[float]]) -> None:
        rows = self.weights()
        nested = bool(sampling) and isinstance(sampling[0], list)
        if nested and len(sampling) != self.classes:
            raise field_error(
                "sampling",
                f"sampling has {len(sampling)} lists but there are classes={self.classes} "
                f"(give one list per class, or a single list of {self.subclasses} weights for "
                "every class)",
            )
        for c, row in enumerate(rows):
            where = f"sampling.{c}" if nested else "sampling"
            if len(row) != self.subclasses:
                raise field_error(
                    where,
                    f"{len(row)} weights given but subclasses={self.subclasses} (give one "
                    "weight per subclass)",
                )
            if any(w < 0 for w in row) or sum(row) <= 0:
                raise field_error(
                    where,
                    f"weights must be >= 0 with a positive sum in every class (got {row})",
                )

    def weights(self) -> list[list[float]]:
        """The sampling weights as one row per class."""
        if self.sampling is None:
            return [[1.0] * self.subclasses for _ in range(self.classes)]
        if self.sampling and isinstance(self.sampling[0], list):
            return [list(map(float, row)) for row in self.sampling]  # type: ignore[arg-type]
        return [list(map(float, self.sampling)) for _ in range(self.classes)]  # type: ignore[arg-type]

    def n_test(self) -> int:
        return self.test_per_subclass * self.classes * self.subclasses

    def train_counts(self) -> list[list[int]]:
        """Exact training examples per (class, subclass): classes equal, then by weight."""
        if self.train_size is not None:
            n_train = self.train_size
        else:
            f = self.train_fraction or self.default_train_fraction
            n_train = max(self.classes, round(f / (1 - f) * self.n_test()))
        per_class = largest_remainder(n_train, [1.0] * self.classes)
        return [largest_remainder(n, w) for n, w in zip(per_class, self.weights(), strict=True)]

    def centroids(self, g: torch.Generator) -> torch.Tensor:
        """(classes, subclasses, dim) centroids along random orthonormal directions."""
        q, _ = torch.linalg.qr(torch.randn(self.dim, self.dim, generator=g, dtype=torch.float64))
        basis = q.T.float()  # rows: orthonormal directions
        c, s = self.classes, self.subclasses
        # Two orthonormal vectors scaled by r/sqrt(2) are r apart.
        if self.geometry == "equidistant":
            return (self.separation / math.sqrt(2)) * basis[: c * s].reshape(c, s, self.dim)
        centers = (self.separation / math.sqrt(2)) * basis[:c]
        offsets = (self.subclass_separation / math.sqrt(2)) * basis[c : c + s]
        return centers[:, None, :] + offsets[None, :, :]

    def build_split(self, seed: int) -> Dataset:
        g = torch.Generator().manual_seed(seed)
        mu = self.centroids(g)
        test_counts = [[self.test_per_subclass] * self.subclasses for _ in range(self.classes)]
        x_tr, y_tr, s_tr = self._sample(mu, self.train_counts(), g)
        x_te, y_te, s_te = self._sample(mu, test_counts, g)
        perm = torch.randperm(x_tr.shape[0], generator=g)  # no ordering by class in training
        return Dataset(
            x_train=x_tr[perm],
            y_train=y_tr[perm],
            x_test=x_te,
            y_test=y_te,
            task="classification",
            input_kind="features",
            n_classes=self.classes,
            meta_train={"subclass": s_tr[perm]},
            meta_test={"subclass": s_te},
            info={"train_counts": self.train_counts(), "geometry": self.geometry},
        )

    def _sample(
        self, mu: torch.Tensor, counts: list[list[int]], g: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        flat = torch.tensor([n for row in counts for n in row])
        ids = torch.repeat_interleave(torch.arange(flat.numel()), flat)
        x = mu.reshape(-1, self.dim)[ids] + self.noise * torch.randn(
            ids.numel(), self.dim, generator=g
        )
        return x, ids // self.subclasses, ids % self.subclasses
