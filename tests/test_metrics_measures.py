"""Measures wired into a run: defaults per learner, validation, what reaches MLflow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grokspec.metrics import names
from grokspec.metrics.spec import resolve_measures
from grokspec.run import run_experiment
from grokspec.spec.loading import SpecError, load_spec
from tests.helpers import experiment
from tests.metrics_helpers import TINY_TRANSFORMER, with_learner


def chosen(exp) -> list[str]:  # noqa: ANN001
    return resolve_measures(exp.analysis, exp.learner, exp.dataset)


def test_defaults_per_learner() -> None:
    assert chosen(experiment()) == [
        "weight_norm", "fourier", "feature_rank", "param_movement", "ntk", "early_warning"
    ]
    assert "ntk" not in chosen(with_learner(TINY_TRANSFORMER))
    moe = with_learner({**TINY_TRANSFORMER, "kind": "moe_transformer"})
    assert "pathways" in chosen(moe)
    gp = with_learner({"kind": "gp"}, train={"optimizer": {"kind": "adam", "lr": 0.1,
                                                            "weight_decay": 0.0}})
    assert chosen(gp) == ["early_warning"]
    assert chosen(experiment(analysis={"metrics": []})) == []


def test_non_modular_data_gets_no_fourier_and_listing_it_is_an_error() -> None:
    parity = {"kind": "parity", "n_bits": 8, "k": 3, "n_examples": 200}
    exp = with_learner({"kind": "mlp", "width": 16}, dataset=parity)
    assert "fourier" not in chosen(exp) and "feature_rank" in chosen(exp)
    with pytest.raises(SpecError, match="'fourier' needs a modular dataset"):
        with_learner({"kind": "mlp"}, dataset=parity, analysis={"metrics": ["fourier"]})


def test_inapplicable_measure_is_a_spec_error_at_its_line(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "name: x\ndataset: {kind: modular, p: 11}\nlearner: {kind: mlp}\n"
        "analysis:\n  metrics: [weight_norm, pathways]\n"
    )
    with pytest.raises(SpecError) as err:
        load_spec(spec)
    text = str(err.value)
    assert "analysis.metrics" in text and "moe_transformer" in text and f"{spec}:5:" in text
    spec.write_text("name: x\ndataset: {kind: modular, p: 11}\nlearner: {kind: mlp}\n"
                    "analysis:\n  metrics: [ntk, ntk]\n")
    with pytest.raises(SpecError, match="listed twice"):
        load_spec(spec)


def test_measures_do_not_change_training() -> None:
    runs = {}
    for key, metrics in (("on", None), ("off", [])):
        exp = experiment(train={"steps": 200, "stop": None}, analysis={"metrics": metrics})
        from grokspec.training.loop import fit

        runs[key] = fit(exp, "cpu").history
    for on, off in zip(runs["on"], runs["off"], strict=True):
        assert {k: on[k] for k in off} == off
    # fourier runs on its own step interval (analysis.intervals): at the first evaluation
    assert names.FOURIER_SPARSITY in runs["on"][0] and names.WARNING_SCORE in runs["on"][-1]


def test_a_grokking_run_logs_measures_phase_and_stages(client) -> None:  # noqa: ANN001
    exp = experiment()
    result = run_experiment(exp, device="cpu")
    assert result.status == "FINISHED" and result.summary["phase"] == "grokking"
    run = client.get_run(result.run_id)
    assert run.data.tags[names.PHASE_TAG] == "grokking"
    m = run.data.metrics
    for key in (
        names.GROK_DELAY_RATIO, "grok/at_0.5/test_fit_step", "grok/at_0.95/delay",
        names.GROK_STAGES, names.GROK_WARNING_STEP, names.GROK_WARNING_LEAD,
        names.FOURIER_SPARSITY, names.RESTRICTED_LOSS, names.EXCLUDED_LOSS,
        "progress/feature_rank/net.0", names.PARAM_MOVEMENT, names.NTK_ALIGNMENT,
        "weights/l2_norm/max", names.WARNING_SCORE,
    ):
        assert key in m, key
    # Per-module norms reach MLflow as min/median/max (analysis.diagnostics: summary); each
    # module's own value stays in the history (history.csv).
    assert "weights/l2_norm/net.0" not in m and "weights/l2_norm/net.0" in result.history[-1]
    assert m[names.GROK_DELAY_RATIO] == pytest.approx(
        m[names.GROK_TEST_FIT_STEP] / m[names.GROK_TRAIN_FIT_STEP]
    )
    assert m[names.GROK_WARNING_LEAD] > 0  # warned before the test fit
    stages = json.loads(Path(client.download_artifacts(result.run_id, "grok/stages.json"))
                        .read_text())
    assert len(stages) == m[names.GROK_STAGES] >= 1
    assert stages[0]["from_acc"] < 0.2 and stages[0]["to_acc"] > 0.95
    ntk = client.get_metric_history(result.run_id, names.NTK_CHANGE)
    assert len(ntk) >= 2 and ntk[0].step == 0 and ntk[-1].value > 0
