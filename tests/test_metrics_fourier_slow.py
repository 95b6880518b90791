"""Nanda et al.'s claim on a real run: the Fourier circuit forms before test accuracy jumps.

Slow (``pytest -m slow``): trains a one-layer transformer on x + y mod 59 (half the table)
until it groks, ~4,000 full-batch steps (a few CPU minutes). Seen on seed 0: train accuracy
fits by step 150 while test accuracy sits at ~0.49 (the pairs whose swapped pair is in the
training set: commutativity), then jumps, from step ~3,050, to 0.99 at step 4,150. By the
start of the jump the embedding's Fourier sparsity has climbed from 0.23 to 0.58 (0.86 at
the end) and the restricted loss has fallen from 1.65 to 0.16.
"""

from __future__ import annotations

import pytest

from grokspec.metrics import names
from grokspec.metrics.events import grok_events
from grokspec.metrics.stages import detect_stages
from grokspec.training.loop import fit as fit_run
from tests.metrics_helpers import with_learner


@pytest.mark.slow
def test_fourier_sparsity_rises_before_the_test_accuracy_jump() -> None:
    exp = with_learner(
        {"kind": "transformer", "d_model": 64, "heads": 4, "d_mlp": 256},
        dataset={"kind": "modular", "op": "x+y", "p": 59, "train_fraction": 0.5},
        train={
            "optimizer": {"kind": "adamw", "lr": 3e-3, "weight_decay": 1.0,
                          "betas": [0.9, 0.98]},
            "steps": 8000,
            "eval_every": 50,
            "stop": {"test_acc": 0.99, "patience_evals": 3},
        },
        analysis={"metrics": ["fourier"], "intervals": {"fourier": 0}},  # at every evaluation
    )
    h = fit_run(exp, "cpu").history
    steps = [int(r["step"]) for r in h]
    test = [r[names.TEST_ACC] for r in h]
    ev = grok_events(steps, [r[names.TRAIN_ACC] for r in h], test, 0.99)
    assert ev["test_fit_step"] is not None, "the transformer did not grok within 8000 steps"
    jump = detect_stages(steps, test)[-1]  # the grokking jump (an earlier one: commutativity)
    at = {int(r["step"]): r for r in h}
    fit, start, end = at[ev["train_fit_step"]], at[jump["start_step"]], h[-1]
    sp = names.FOURIER_SPARSITY
    assert jump["from_acc"] < 0.7 and start[names.TEST_ACC] < 0.8
    # Most of the sparsity gained over the run was gained before the jump began ...
    assert start[sp] - fit[sp] >= 0.4 * (end[sp] - fit[sp]) > 0.1
    # ... and the key-frequency circuit alone already predicts the answers well.
    rl = names.RESTRICTED_LOSS
    assert start[rl] < 0.25 * fit[rl]
