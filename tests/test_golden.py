"""No number changes: the core histories recorded before the one-loop redesign still hold.

The fixture was written by ``python -m tests.golden`` from the pre-redesign code (three
loops). The tolerance (rtol 1e-5) admits float re-association from faster but equal kernels,
not a changed computation: a missed Grokfast filter, a wrong batch order or a different init
moves these numbers by far more.
"""

from __future__ import annotations

import json

import pytest

from tests.golden import CASES, CORE, FIXTURE, run_case


@pytest.mark.parametrize("name", list(CASES))
def test_history_unchanged(name: str, mlflow_uri: str) -> None:
    expected = json.loads(FIXTURE.read_text())[name]
    got = run_case(name)
    assert len(got) == len(expected)
    for seed_got, seed_exp in zip(got, expected, strict=True):
        for metric in CORE:
            steps_got = [s for s, _ in seed_got[metric]]
            steps_exp = [s for s, _ in seed_exp[metric]]
            assert steps_got == steps_exp, metric
            values_got = [v for _, v in seed_got[metric]]
            values_exp = [v for _, v in seed_exp[metric]]
            assert values_got == pytest.approx(values_exp, rel=1e-5, abs=1e-6), metric
