"""Optimizer fields another kind would silently ignore are rejected at the field."""

from __future__ import annotations

import pytest

from grokspec.spec.loading import SpecError
from tests.helpers import experiment


@pytest.mark.parametrize(("optimizer", "field"), [
    ({"kind": "sgd", "betas": [0.9, 0.99]}, "train.optimizer.betas"),
    ({"kind": "adamw", "momentum": 0.9}, "train.optimizer.momentum"),
    ({"kind": "adam", "momentum": 0.5}, "train.optimizer.momentum"),
])
def test_unused_optimizer_fields_are_errors(optimizer: dict, field: str) -> None:
    with pytest.raises(SpecError, match=f"{field}: .*(Adam's|SGD's)"):
        experiment(train={"optimizer": optimizer})


def test_fields_of_the_chosen_kind_are_accepted() -> None:
    assert experiment(train={"optimizer": {"kind": "sgd", "momentum": 0.9}}).train
    assert experiment(train={"optimizer": {"kind": "adam", "betas": [0.9, 0.99]}}).train
