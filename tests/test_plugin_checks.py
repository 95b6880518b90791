"""check_learner / check_runner (scikit-learn's check_estimator for grokspec plugins): every
built-in learner and runner passes; a plugin that breaks a promise fails with its name."""

from __future__ import annotations

from typing import ClassVar

import pytest
import torch
from torch import nn

from grokspec.learners.contract import PARAMETERS, PROBES
from grokspec.learners.mlp import MLPSpec
from grokspec.spec.features import runner_class
from grokspec.training.check import CheckFailed, check_learner, check_runner
from tests.learner_cases import LEARNERS, experiment_for


@pytest.mark.parametrize("key", list(LEARNERS))
def test_every_builtin_learner_passes(key: str) -> None:
    check_learner(experiment_for(key))


@pytest.mark.parametrize("name,key", [("gradient", "mlp"), ("gaussian_process", "gp")])
def test_every_builtin_runner_passes(name: str, key: str) -> None:
    check_runner(runner_class(name), experiment_for(key))


class _Liar(MLPSpec):
    """Declares probes its model does not provide."""

    provides: ClassVar[frozenset[str]] = frozenset({PROBES, PARAMETERS})

    def build(self, dataset):  # noqa: ANN001, ANN201
        class Plain(nn.Module):
            provides = frozenset({PARAMETERS})

            def __init__(self) -> None:
                super().__init__()
                self.lin = nn.Linear(2, dataset.n_classes)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return self.lin(x.float())

        return Plain()


def test_a_learner_that_breaks_its_declaration_fails_by_name() -> None:
    exp = experiment_for("mlp")
    liar = _Liar(width=16, depth=2)
    bad = exp.model_copy(update={"learner": liar})
    with pytest.raises(CheckFailed, match=r"check_learner\(_Liar\): the built model provides "
                                          r"\['parameters'\], the spec declares"):
        check_learner(bad)


def test_a_runner_without_uniform_metrics_fails_by_name() -> None:
    base = runner_class("gradient")

    class Quiet(base):  # type: ignore[misc, valid-type]
        def evaluate(self, *a, **k):  # noqa: ANN002, ANN003, ANN201
            return {"acc": 1.0}

    with pytest.raises(CheckFailed, match=r"check_runner\(Quiet\): evaluate\(\) lacks"):
        check_runner(Quiet, experiment_for("mlp"))
