"""The two cross-model comparison specs: valid, and each runs end to end as one sweep."""

from __future__ import annotations

import pytest

from grokspec.metrics import names
from grokspec.sweep.expand import load_sweep
from grokspec.sweep.launch import run_sweep
from tests.learner_checks import SPECS

#: Smaller data for the smoke run where the spec's own is slow (the GP's 1000x1000 kernel).
SMALLER = {"cross_model_parity.yaml": ["dataset.n_examples=400", "dataset.train_size=200"]}
CASES = {
    "cross_model_parity.yaml": {"mlp": "mlp", "gp": "gp", "linear": "linear",
                                "bayesian_mlp": "bayesian_mlp"},
    "cross_model_modadd.yaml": {"transformer": "transformer", "mlp": "mlp",
                                "moe": "moe_transformer"},
}


def smoke_overrides(variants: list[str]) -> list[str]:
    """20 steps, evaluating every 10, for the base and every variant that sets its own;
    progress measures off (they have their own tests)."""
    out = ["train.steps=20", "train.eval_every=10", "tracking.experiment=tests",
           "analysis.metrics=[]"]
    for v in variants:
        out += [f"sweep.variants.{v}.train.steps=20", f"sweep.variants.{v}.train.eval_every=10"]
    return out


@pytest.mark.parametrize("spec", list(CASES))
def test_cross_model_spec_runs_every_learner_on_one_split(spec: str, client) -> None:
    sweep = load_sweep(SPECS / spec, smoke_overrides(list(CASES[spec])) + SMALLER.get(spec, []))
    kinds = {p.variant: p.experiment.learner.kind for p in sweep.points}
    assert kinds == CASES[spec]
    assert len({p.experiment.seed for p in sweep.points}) == 1  # the identical split

    result = run_sweep(sweep, device="cpu", echo=lambda _: None)
    assert result.status == "FINISHED"
    children = client.search_runs(
        [client.get_run(result.parent_run_id).info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{result.parent_run_id}'",
    )
    assert len(children) == len(kinds)
    for run in children:  # every learner under the same uniform names, on the step axis
        assert set(names.UNIFORM) <= set(run.data.metrics)
        steps = [m.step for m in client.get_metric_history(run.info.run_id, names.TEST_ACC)]
        assert steps == [0, 10, 20]
    artifacts = {a.path for a in client.list_artifacts(result.parent_run_id)}
    assert {"comparison.png", "results.md"} <= artifacts
