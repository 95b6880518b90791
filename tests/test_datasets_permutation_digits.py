"""Composition in S_n (Power et al.'s S5) and the offline 8x8 digits."""

from __future__ import annotations

import itertools

import pytest
import torch

from grokspec.datasets import DigitsSpec, PermutationSpec
from grokspec.datasets.digits import kmeans
from grokspec.datasets.permutation import composition_table, permutations
from grokspec.spec.loading import SpecError, validate_data


def test_s5_composition_table_is_the_group() -> None:
    perms = permutations(5)
    table = composition_table(perms)
    assert perms.shape == (120, 5) and table.shape == (120, 120)
    listed = [tuple(p) for p in perms.tolist()]
    for i, j in [(0, 0), (3, 77), (119, 5), (42, 42)]:
        a, b = listed[i], listed[j]
        assert listed[int(table[i, j])] == tuple(a[b[k]] for k in range(5))  # b first
    # Every row and column is a permutation of the group (Latin square); 0 is the identity.
    assert all(len(set(row)) == 120 for row in table.tolist())
    assert all(len(set(col)) == 120 for col in table.T.tolist())
    assert torch.equal(table[0], torch.arange(120)) and torch.equal(table[:, 0], torch.arange(120))
    # Associative, and not abelian (unlike x+y mod p).
    for a, b, c in itertools.islice(itertools.product(range(0, 120, 17), repeat=3), 200):
        assert table[table[a, b], c] == table[a, table[b, c]]
    assert not torch.equal(table, table.T)


def test_permutation_dataset_is_tokens_the_transformer_accepts() -> None:
    ds = PermutationSpec(train_fraction=0.5).build(0)
    assert ds.input_kind == "tokens" and ds.vocab_size == 120 and ds.n_classes == 120
    assert ds.n_train + ds.n_test == 14400 and ds.n_train == 7200
    exp = validate_data({"name": "s5", "dataset": {"kind": "permutation", "n": 4},
                         "learner": {"kind": "transformer", "d_model": 32, "heads": 2}})
    model = exp.learner.build(exp.dataset.build(0))
    assert model(exp.dataset.build(0).x_test[:3]).shape == (3, 24)


def test_permutation_n_is_bounded() -> None:
    with pytest.raises(SpecError, match="less than or equal to 6"):
        validate_data({"name": "s", "dataset": {"kind": "permutation", "n": 7},
                       "learner": {"kind": "mlp"}})


def test_digits_are_the_bundled_images() -> None:
    ds = DigitsSpec().build(0)
    assert (ds.n_train, ds.n_test, ds.input_dim, ds.n_classes) == (500, 1297, 64, 10)
    assert float(ds.x_train.min()) >= 0.0 and float(ds.x_train.max()) <= 1.0
    assert set(ds.y_train.unique().tolist()) == set(range(10))


def test_digits_standardize_uses_training_statistics() -> None:
    ds = DigitsSpec(standardize=True, train_size=300).build(0)
    mean, std = ds.x_train.mean(0), ds.x_train.std(0)
    assert float(mean.abs().max()) < 1e-5
    varying = std > 0
    assert torch.allclose(std[varying], torch.ones(int(varying.sum())), atol=1e-4)
    assert float(ds.x_test.mean(0).abs().max()) > 1e-3  # test is not re-centred on itself


def test_digits_distortion_shifts_only_the_training_images_of_chosen_classes() -> None:
    distortion = {"clusters": 3, "strength": 0.5, "classes": [2, 7]}
    ds = DigitsSpec(distortion=distortion).build(0)
    clean = DigitsSpec().build(0)
    assert torch.equal(ds.y_train, clean.y_train) and torch.equal(ds.x_test, clean.x_test)
    changed = (ds.x_train != clean.x_train).any(1)
    assert torch.equal(changed, torch.isin(ds.y_train, torch.tensor([2, 7])))
    # One fixed pattern per (class, cluster): the shift is identical within a cluster.
    sub = ds.meta_train["subclass"]
    assert set(sub.unique().tolist()) == {0, 1, 2} and "subclass" in ds.meta_test
    rows = (ds.y_train == 2) & (sub == 1)
    delta = (ds.x_train - clean.x_train)[rows]
    assert torch.allclose(delta, delta[:1].expand_as(delta))
    assert 0.3 < float(delta[0].std()) < 0.7


def test_kmeans_separates_obvious_clusters() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(30, 4, generator=g) + 10, torch.randn(30, 4, generator=g) - 10])
    ids = kmeans(x, 2, g)
    assert len(set(ids[:30].tolist())) == 1 and len(set(ids[30:].tolist())) == 1
    assert ids[0] != ids[30]
