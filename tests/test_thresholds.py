"""One threshold per claim and per summary (issue 17 item 5)."""

from __future__ import annotations

from pathlib import Path

import pytest

from grokspec.cli.main import main
from grokspec.papers.claim import fit_at
from grokspec.papers.registry import claims

SPEC = """\
name: thr
dataset: {kind: modular, p: 11, train_fraction: 0.6}
learner: {kind: mlp, width: 64, activation: quadratic}
train: {steps: 300, eval_every: 25, batch_size: full,
        optimizer: {kind: adamw, lr: 1.0e-2, weight_decay: 1.0}}
analysis: {metrics: []}
tracking: {experiment: thr}
"""


def test_run_summary_prints_fit_steps_at_the_phase_rules_threshold(
    tmp_path: Path, mlflow_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "thr.yaml"
    spec.write_text(SPEC)
    assert main(["run", str(spec), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "train fit step (acc>=0.9, the liu2022 phase rule's)" in out
    assert "phase (grok.phase, liu2022 rule)" in out
    # the grok/* events at train.fit_threshold (0.99) are printed too, and say so
    assert "train fit step (acc>=0.99, train.fit_threshold)" in out


def test_claims_that_use_liu_read_fit_steps_at_0_9() -> None:
    """Every claim whose phase rule is liu2022 reads its fit steps at 0.9 (the amendment keeps
    the old reading, train.fit_threshold, for the report's 'before' verdict)."""
    from grokspec.papers import synthetic  # noqa: F401 - the claims' controls build records

    for name, claim in claims().items():
        th = claim.thresholds
        if th.get("phase_rule") != "liu2022" or "fit_at" not in th:
            continue
        neg, _ = claim.controls()
        rec = neg[0]
        assert fit_at(th, rec) == 0.9, name
        old = {**th, "fit_at": "train.fit_threshold"}
        assert fit_at(old, rec) == rec.experiment.train.fit_threshold, name
        assert any(a.old.get("fit_at") == "train.fit_threshold" for a in claim.amendments), name
