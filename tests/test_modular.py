"""The modular-arithmetic family: tables match Python arithmetic; splits are exact and seeded."""

from __future__ import annotations

import pytest
import torch

from grokspec.datasets.modular import ModularSpec

PY_OPS = {
    "x+y": lambda x, y, p: (x + y) % p,
    "x-y": lambda x, y, p: (x - y) % p,
    "x*y": lambda x, y, p: (x * y) % p,
    "x/y": lambda x, y, p: (x * pow(y, -1, p)) % p,
    "x^2+y^2": lambda x, y, p: (x**2 + y**2) % p,
    "x^2+xy+y^2": lambda x, y, p: (x**2 + x * y + y**2) % p,
    "x^2+xy+y^2+x": lambda x, y, p: (x**2 + x * y + y**2 + x) % p,
    "x^3+xy": lambda x, y, p: (x**3 + x * y) % p,
    "x^3+xy^2+y": lambda x, y, p: (x**3 + x * y**2 + y) % p,
}


@pytest.mark.parametrize("op", sorted(PY_OPS))
@pytest.mark.parametrize("p", [7, 97])
def test_every_operation_matches_python(op: str, p: int) -> None:
    ds = ModularSpec(op=op, p=p, train_fraction=0.5).build(seed=0)
    x = torch.cat([ds.x_train, ds.x_test])
    y = torch.cat([ds.y_train, ds.y_test])
    expected = torch.tensor([PY_OPS[op](int(a), int(b), p) for a, b in x.tolist()])
    assert torch.equal(y, expected)
    assert len(x) == (p * (p - 1) if op == "x/y" else p * p)  # every pair exactly once
    assert len({tuple(r) for r in x.tolist()}) == len(x)


def test_split_sizes_disjoint_and_metadata() -> None:
    ds = ModularSpec(p=31, train_fraction=0.3).build(seed=1)
    assert ds.n_train == round(0.3 * 31 * 31) and ds.n_train + ds.n_test == 31 * 31
    train = {tuple(r) for r in ds.x_train.tolist()}
    assert not train & {tuple(r) for r in ds.x_test.tolist()}
    assert torch.equal(ds.meta_train["operand_x"], ds.x_train[:, 0])
    assert torch.equal(ds.meta_test["operand_y"], ds.x_test[:, 1])
    assert ModularSpec(p=31, train_size=100).build(0).n_train == 100


def test_split_is_deterministic_from_the_seed() -> None:
    a, b = ModularSpec(p=31).build(5), ModularSpec(p=31).build(5)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.x_train, ModularSpec(p=31).build(6).x_train)


def test_impossible_sizes_are_rejected() -> None:
    with pytest.raises(ValueError, match="leaves no test examples"):
        ModularSpec(p=7, train_size=49)
    with pytest.raises(ValueError, match="not both"):
        ModularSpec(p=7, train_size=10, train_fraction=0.5)
