"""Every dataset spec this catalogue ships validates and runs a few steps end to end."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from grokspec.run import run_experiment
from grokspec.spec.loading import load_spec
from grokspec.sweep.expand import has_sweep, load_sweep

SPECS = Path(__file__).resolve().parents[1] / "specs"
SHIPPED = [
    "carvalho_subclass_imbalance.yaml",
    "carvalho_subclass_removed.yaml",
    "miller_spurious_dims.yaml",
    "parity_sparse.yaml",
    "kumar_teacher.yaml",
    "permutation_s5.yaml",
    "digits_distortion.yaml",
    "sine_mlp.yaml",
]
SHORT = ["train.steps=20", "train.eval_every=10"]


@pytest.fixture
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_spec_validates_and_runs(name: str, mlflow_uri: str, one_thread) -> None:
    path = SPECS / name
    if has_sweep(path):
        experiments = [p.experiment for p in load_sweep(path, SHORT).points]
        assert len(experiments) > 1
    else:
        experiments = [load_spec(path, SHORT)]
    for exp in experiments:
        dataset = exp.dataset.build(exp.seed)
        assert dataset.n_train > 0 and dataset.n_test > 0
        result = run_experiment(exp)
        assert result.status == "FINISHED", result.reason
        assert int(result.history[-1]["step"]) == 20
