"""How the golden cases are launched (the one place that changes when the API moves)."""

from __future__ import annotations

from typing import Any

from grokspec.spec.loading import validate_data


def run_plain(data: dict[str, Any]) -> list[str]:
    from grokspec.run import run_experiment

    result = run_experiment(validate_data(data), device="cpu")
    assert result.status == "FINISHED", result.reason
    return [result.run_id]


def run_vectorized(data: dict[str, Any], seeds: list[int]) -> list[str]:
    from grokspec.run import run_batch

    results = run_batch([validate_data({**data, "seed": s}) for s in seeds], "cpu")
    assert all(r.status == "FINISHED" for r in results), [r.reason for r in results]
    return [r.run_id for r in results]
