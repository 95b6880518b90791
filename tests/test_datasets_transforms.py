"""The transforms every family shares: split sizes, spurious dimensions, label noise; and the
properties every family must have (deterministic, disjoint train/test, fast to build)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from grokspec.datasets import (
    DigitsSpec,
    LinearTeacherSpec,
    ModularSpec,
    ParitySpec,
    PermutationSpec,
    RegressionSineSpec,
    SubclassSpec,
    TeacherSpec,
)
from grokspec.datasets.base import Dataset
from grokspec.metrics.subsets import TRAIN_ACC_CORRUPTED, subclass_accuracy, subset_metrics
from grokspec.spec.loading import SpecError, load_spec

#: Every family at its default size (the spec class with no arguments).
FAMILIES = [
    ModularSpec,
    PermutationSpec,
    SubclassSpec,
    ParitySpec,
    TeacherSpec,
    LinearTeacherSpec,
    DigitsSpec,
    RegressionSineSpec,
]


def _same(a: Dataset, b: Dataset) -> bool:
    keys = ("x_train", "y_train", "x_test", "y_test")
    same_meta = all(torch.equal(a.meta_train[k], b.meta_train[k]) for k in a.meta_train)
    return same_meta and all(torch.equal(getattr(a, k), getattr(b, k)) for k in keys)


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.model_fields["kind"].default)
def test_family_is_deterministic_disjoint_and_fast(family: type) -> None:
    spec = family()
    spec.build(0)  # warm caches (the digits file, torch kernels) before timing
    t0 = time.perf_counter()
    a = spec.build(0)
    elapsed = time.perf_counter() - t0
    assert elapsed < 1.0, f"{spec.kind} took {elapsed:.2f}s to build at its default size"
    assert _same(a, spec.build(0))
    assert not _same(a, spec.build(1))
    # Train and test never share an example (Miller et al.'s code leaked test pairs).
    train_rows = {tuple(r) for r in a.x_train.tolist()}
    assert not any(tuple(r) in train_rows for r in a.x_test.tolist())
    assert a.n_train > 0 and a.n_test > 0
    assert a.x_train.shape[1] == a.x_test.shape[1]
    if a.task == "classification":
        assert a.n_classes is not None and int(a.y_train.max()) < a.n_classes
    else:
        assert a.info["acc_tolerance"] == spec.acc_tolerance


def test_train_size_and_fraction_set_the_split() -> None:
    assert ModularSpec(p=11, train_size=40).build(0).n_train == 40
    assert ModularSpec(p=11, train_fraction=0.5).build(0).n_train == round(0.5 * 121)
    assert ModularSpec(p=11).train_fraction == 0.3  # the default when neither is given
    assert TeacherSpec().train_size == 550 and TeacherSpec().train_fraction is None
    with pytest.raises(ValueError, match="not both"):
        ModularSpec(p=11, train_size=40, train_fraction=0.5)


def test_spurious_features_are_appended_fixed_and_label_free() -> None:
    sizes = {"n_bits": 8, "k": 3, "n_examples": 256, "train_size": 128}
    plain = ParitySpec(**sizes).build(0)
    spur = ParitySpec(**sizes, spurious_dims={"count": 30, "distribution": "gaussian"})
    a, b = spur.build(0), spur.build(0)
    assert a.x_train.shape == (128, 38) and a.info["spurious_dims"] == 30
    # The real features and the split are untouched; the spurious part is identical per build.
    assert torch.equal(a.x_train[:, :8], plain.x_train) and torch.equal(a.y_train, plain.y_train)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.x_test, b.x_test)
    # Statistically independent of the label: per-class means of every spurious column agree
    # within sampling error (N(0,1) values, ~128 rows per class over train+test).
    x = torch.cat([a.x_train, a.x_test])[:, 8:]
    y = torch.cat([a.y_train, a.y_test])
    gap = x[y == 0].mean(0) - x[y == 1].mean(0)
    se = (1 / (y == 0).sum() + 1 / (y == 1).sum()).sqrt()
    assert float(gap.abs().max()) < 4.5 * float(se)
    # ... and carries nothing a linear classifier could use: least squares on the spurious
    # columns alone does no better than chance on held-out rows.
    w = torch.linalg.lstsq(a.x_train[:, 8:], a.y_train.float() * 2 - 1).solution
    held_out = ((a.x_test[:, 8:] @ w > 0).long() == a.y_test).float().mean()
    assert 0.3 < float(held_out) < 0.7


@pytest.mark.parametrize("dist", ["bernoulli", "gaussian", "uniform"])
def test_spurious_distributions(dist: str) -> None:
    spec = RegressionSineSpec(spurious_dims={"count": 200, "distribution": dist, "scale": 2.0})
    x = spec.build(3).x_train[:, 1:]
    if dist == "bernoulli":
        assert set(x.unique().tolist()) == {-2.0, 2.0}
    elif dist == "uniform":
        assert float(x.min()) >= -2.0 and float(x.max()) <= 2.0 and float(x.abs().max()) > 1.9
    else:
        assert abs(float(x.std()) - 2.0) < 0.1


def test_spurious_tokens_extend_the_sequence_within_the_vocabulary() -> None:
    spec = ModularSpec(p=13, spurious_dims={"count": 5})
    ds = spec.build(0)
    assert ds.x_train.shape[1] == 7 and ds.x_train.dtype == torch.int64
    assert int(ds.x_train.max()) < 13 and ds.vocab_size == 13
    # The answer still depends only on the first two tokens.
    assert torch.equal((ds.x_train[:, 0] + ds.x_train[:, 1]) % 13, ds.y_train)


def test_label_noise_corrupts_exactly_that_many_training_labels() -> None:
    spec = ModularSpec(p=17, train_size=200, label_noise=0.25)
    ds = spec.build(0)
    clean = ModularSpec(p=17, train_size=200).build(0)
    bad = ds.meta_train["corrupted"]
    assert int(bad.sum()) == 50 and ds.info["label_noise_count"] == 50
    assert bool((ds.y_train[bad] != clean.y_train[bad]).all())  # always another class
    assert torch.equal(ds.y_train[~bad], clean.y_train[~bad])
    assert torch.equal(ds.meta_train["clean_label"], clean.y_train)
    assert torch.equal(ds.y_test, clean.y_test) and torch.equal(ds.x_train, clean.x_train)
    # The replacement is uniform over the other classes: with 50 draws over 16 others,
    # several distinct offsets appear.
    offsets = (ds.y_train[bad] - clean.y_train[bad]) % 17
    assert len(offsets.unique()) >= 8 and int(offsets.min()) >= 1
    assert torch.equal(ds.y_train, spec.build(0).y_train)


def test_subset_metrics_from_per_example_correctness() -> None:
    correct = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0, 0.0])
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    sub = torch.tensor([0, 0, 1, 0, 1, 1])
    acc = subclass_accuracy(correct, labels, sub)
    assert acc == {
        "test/acc_subclass/0.0": 0.5,
        "test/acc_subclass/0.1": 1.0,
        "test/acc_subclass/1.0": 1.0,
        "test/acc_subclass/1.1": 0.0,
    }
    meta_train = {"corrupted": torch.tensor([True, False, True])}
    out = subset_metrics(meta_train, {}, labels, torch.tensor([1.0, 1.0, 0.0]), correct)
    assert out == {TRAIN_ACC_CORRUPTED: 0.5}


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text("name: bad\nlearner: {kind: mlp}\n" + body)
    return path


@pytest.mark.parametrize(
    ("body", "line", "field", "needle"),
    [
        ("dataset:\n  kind: modular\n  p: 7\n  train_size: 49\n", 6, "dataset.train_size",
         "at most 48"),
        ("dataset:\n  kind: parity\n  n_bits: 12\n  train_size: 2000\n", 6, "dataset.train_size",
         "at most 1999"),
        ("dataset:\n  kind: modular\n  spurious_dims: {count: 2, distribution: gaussian}\n", 5,
         "dataset.spurious_dims.distribution", "uniform"),
        ("dataset:\n  kind: teacher\n  label_noise: 0.1\n", 5, "dataset.label_noise",
         "classification"),
        ("dataset:\n  kind: modular\n  train_fraction: 0.5\n  train_size: 10\n", 3, "dataset",
         "not both"),
        ("dataset:\n  kind: parity\n  spurious_dims: {count: -1}\n", 5,
         "dataset.spurious_dims.count", "greater than or equal to 0"),
    ],
)
def test_impossible_datasets_are_rejected_at_their_line(
    tmp_path: Path, body: str, line: int, field: str, needle: str
) -> None:
    path = _write(tmp_path, body)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    (problem,) = info.value.problems
    assert problem.where.line == line and problem.path == field, str(problem)
    assert needle in problem.message
