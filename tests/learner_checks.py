"""Checks shared by the per-learner tests: the metric contract, read back from real MLflow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from grokspec.metrics import names
from grokspec.run import RunResult, run_experiment
from grokspec.spec.experiment import Experiment
from grokspec.spec.loading import load_spec, validate_data

SPECS = Path(__file__).resolve().parent.parent / "specs"
#: Seconds-long smoke settings for a shipped spec.
SMOKE = ["train.steps=20", "train.eval_every=10", "tracking.experiment=tests"]


def experiment(data: dict[str, Any]) -> Experiment:
    """An experiment from plain data (name and tracking filled in), validated like a file.

    Progress measures are off unless ``data`` asks for them: these tests are about what the
    learner itself logs (the measures have their own tests), every value as its own metric
    (``diagnostics: full``; the default summary is tested in tests/test_ui_mlflow.py).
    """
    base = {"name": "learner-test", "tracking": {"experiment": "tests"},
            "analysis": {"metrics": [], "diagnostics": "full"}}
    return validate_data({**base, **data})


def stepwise_metric_names(client: Any, run_id: str) -> set[str]:
    """Names of the metrics logged at evaluation steps (the grok/* summary left out)."""
    keys = client.get_run(run_id).data.metrics.keys()
    return {k for k in keys if not k.startswith("grok/")}


def assert_metric_contract(client: Any, result: RunResult, extras: set[str]) -> None:
    """Exactly the uniform names plus ``extras`` at every evaluation, and the grok/* summary."""
    assert result.status == "FINISHED", result.reason
    assert stepwise_metric_names(client, result.run_id) == set(names.UNIFORM) | extras
    evals = [h["step"] for h in result.history]
    for name in names.UNIFORM:
        history = client.get_metric_history(result.run_id, name)
        assert [m.step for m in history] == evals, name
    summary = client.get_run(result.run_id).data.metrics
    assert names.GROK_TRAIN_FIT_STEP in summary or result.summary["train_fit_step"] is None


def smoke_spec(path: str | Path, extra: list[str] | None = None) -> RunResult:
    """Load a shipped spec with seconds-long settings and run it end to end."""
    exp = load_spec(SPECS / path, [*SMOKE, *(extra or [])])
    result = run_experiment(exp, device="cpu")
    assert result.status == "FINISHED", result.reason
    assert result.history[-1]["step"] == 20
    return result
