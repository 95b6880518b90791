"""Sparse parity (Barak et al. 2022; Miller et al.'s concealed 3-bit parity)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from grokspec.datasets.parity import ParitySpec, distinct_bit_strings
from grokspec.spec.loading import SpecError, load_spec


def test_labels_are_the_parity_of_the_relevant_bits() -> None:
    spec = ParitySpec(n_bits=40, k=3, n_examples=500, train_size=300)
    ds = spec.build(0)
    rel = ds.info["relevant_bits"]
    assert len(rel) == 3 and len(set(rel)) == 3 and all(0 <= r < 40 for r in rel)
    for x, y in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
        assert set(x.unique().tolist()) == {-1.0, 1.0}
        # pm1: the label is 1 exactly when the product of the relevant features is -1.
        assert torch.equal((x[:, rel].prod(1) < 0).long(), y)
    assert 0.4 < float(ds.y_train.float().mean()) < 0.6  # balanced labels
    assert spec.build(0).info["relevant_bits"] == rel and spec.build(1).info["relevant_bits"] != rel


def test_binary_encoding_and_first_bits() -> None:
    ds = ParitySpec(n_bits=6, k=2, n_examples=64, train_size=32, encoding="binary",
                    relevant="first").build(0)
    assert ds.info["relevant_bits"] == [0, 1]
    assert set(ds.x_train.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(((ds.x_train[:, 0] + ds.x_train[:, 1]) % 2).long(), ds.y_train)
    # n_examples = 2^n_bits: the pool is every string exactly once.
    every = torch.cat([ds.x_train, ds.x_test])
    assert len({tuple(r) for r in every.tolist()}) == 64


@pytest.mark.parametrize("n_bits", [12, 70])
def test_distinct_bit_strings_are_distinct(n_bits: int) -> None:
    g = torch.Generator().manual_seed(0)
    rows = distinct_bit_strings(n_bits, 3000, g)
    assert rows.shape == (3000, n_bits)
    assert len({tuple(r) for r in rows.tolist()}) == 3000


def test_duplicates_are_redrawn_at_large_n() -> None:
    # 21 bits, 20000 draws: about 20000^2 / 2^22 ~ 95 duplicates in the first draw, so the
    # redraw path runs; the result must still be the requested count of distinct rows.
    for seed in range(3):
        rows = distinct_bit_strings(21, 20000, torch.Generator().manual_seed(seed))
        assert len({tuple(r) for r in rows.tolist()}) == 20000


@pytest.mark.parametrize(
    ("body", "line", "field", "needle"),
    [
        ("  n_bits: 4\n  k: 5\n", 6, "dataset.k", "k <= n_bits"),
        ("  n_bits: 4\n  n_examples: 17\n", 6, "dataset.n_examples", "at most 16"),
        ("  n_bits: 4\n  n_examples: 16\n  train_size: 16\n", 7, "dataset.train_size",
         "at most 15"),
        ("  encoding: ternary\n", 5, "dataset.encoding", "pm1"),
    ],
)
def test_impossible_parity_specs_are_rejected_at_their_line(
    tmp_path: Path, body: str, line: int, field: str, needle: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\nlearner: {kind: mlp}\ndataset:\n  kind: parity\n" + body)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    (problem,) = info.value.problems
    assert problem.where.line == line and problem.path == field, str(problem)
    assert needle in problem.message
