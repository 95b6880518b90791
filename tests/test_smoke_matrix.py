"""Every learner kind x its shapes x every dataset family it accepts, default measures on.

The Grokfast/Power model (a 2-layer transformer on x*y mod 97) once crashed at its first
evaluation with the default measures (a probe recorded 2-D and 3-D activations, issue 17 item
6): a combination nobody had run. Here each cell trains two evaluations at tiny size through
the one loop, with ``analysis`` left at its default, and checks every evaluation logged the
uniform metrics as finite numbers.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from typing import Any

import pytest
import torch

from grokspec.metrics import names
from grokspec.spec.loading import SpecError, validate_data
from grokspec.spec.merge import model_for
from grokspec.training.loop import fit

DATASETS: dict[str, dict[str, Any]] = {
    "modular x+y": {"kind": "modular", "op": "x+y", "p": 7, "train_fraction": 0.6},
    "modular x*y nonzero_y": {"kind": "modular", "op": "x*y", "p": 7, "nonzero_y": True,
                              "train_fraction": 0.6},
    "modular x/y": {"kind": "modular", "op": "x/y", "p": 7, "train_fraction": 0.6},
    "permutation": {"kind": "permutation", "n": 3, "train_fraction": 0.6},
    "addition": {"kind": "addition", "p": 6, "train_fraction": 0.6},
    "parity": {"kind": "parity", "n_bits": 6, "k": 2, "n_examples": 64, "train_size": 32},
    "teacher": {"kind": "teacher", "dim": 4, "n_examples": 40, "train_size": 20,
                "teacher_width": 4},
    "linear_teacher": {"kind": "linear_teacher", "dim": 4, "n_examples": 40, "train_size": 20},
    "digits": {"kind": "digits", "train_size": 40},
    "subclass": {"kind": "subclass", "dim": 8, "train_size": 16, "test_per_subclass": 4},
    "regression_sine": {"kind": "regression_sine", "n_examples": 40, "train_size": 20},
}

TINY_T = {"d_model": 8, "heads": 2, "d_mlp": 8}
TRANSFORMER_SHAPES = [
    {"layers": layers, "layer_norm": ln, "activation": act, **TINY_T}
    for layers, ln, act in itertools.product((1, 2), (False, True), ("relu", "gelu"))
] + [
    {"layers": layers, "layer_norm": True, "activation": "gelu", "residual": "normalized",
     "operator_token": True, "output": "vocabulary", "attention_bias": True,
     "attention_init": "xavier", "position_init": "unit", **TINY_T} for layers in (1, 2)
] + [
    {"layers": 2, "last_position_only": False, **TINY_T},
    {"layers": 1, "init": "nanda2023", "token_init": "scaled", "output": "vocabulary", **TINY_T},
]
MLP_SHAPES = [
    {"depth": depth, "activation": act, "input_encoding": enc, "width": 8}
    for depth, act, enc in itertools.product((1, 2), ("relu", "quadratic", "tanh"),
                                             ("one_hot", "embedding"))
] + [{"depth": 2, "activation": "tanh", "input_encoding": "embedding_sum", "embed_dim": 1,
      "width": 8}]
LEARNERS: list[tuple[str, dict[str, Any]]] = (
    [("transformer", s) for s in TRANSFORMER_SHAPES]
    + [("moe_transformer", {"layers": layers, "layer_norm": ln, "experts": 2, **TINY_T})
       for layers, ln in itertools.product((1, 2), (False, True))]
    + [("mlp", s) for s in MLP_SHAPES]
    + [("mlp", {"width": 8, "activation": "kumar2024", "weight_init": "standard_normal",
                "bias": False, "output_scale": 2.0}),
       ("mlp", {"width": 8, "activation": "kumar2024", "readout": "fixed_mean",
                "weight_init": "standard_normal", "bias": False, "output_scale": 2.0})]
    + [("linear", {}), ("bayesian_mlp", {"width": 8}), ("bayesian_mlp", {"width": 8,
                                                                          "depth": 2})]
    + [("gp", {"inducing_points": 8})]
)


def accepts(kind: str, shape: dict[str, Any], family: str) -> bool:
    """Does the learner take this family at all (input kind, task)? Decided by the specs'
    own declarations, so a new family or learner joins the matrix by itself."""
    from grokspec.spec.experiment import Experiment

    ds_model = Experiment.model_fields["dataset"].annotation
    ln_model = Experiment.model_fields["learner"].annotation
    ds_cls = model_for(ds_model, (DATASETS[family]["kind"],))
    ln_cls = model_for(ln_model, (kind,))
    if ds_cls.input_kind not in ln_cls.input_kinds:
        return False
    if "input_encoding" in shape and ds_cls.input_kind != "tokens":
        return False  # says how tokens are read: rejected on features (tests/test_optimizer_groups)
    if shape.get("output") == "vocabulary" and not ds_cls.classes_are_tokens:
        return False  # classes beyond the tokens: rejected at validation
    if "operator_token" in shape and family == "permutation":
        return False  # two operand tokens only (rejected at build, tested elsewhere)
    if shape.get("readout") == "fixed_mean" and ds_cls.task != "regression":
        return False  # one output (rejected at validation, tests/test_paper_models.py)
    return any(t in ln_cls.tasks for t in ("classification", "regression"))


CELLS = [
    pytest.param(kind, shape, family, id=f"{kind}-{i}-{family}")
    for kind, shapes in itertools.groupby(LEARNERS, key=lambda ls: ls[0])
    for i, (_, shape) in enumerate(list(shapes))
    for family in DATASETS
    if accepts(kind, shape, family)
]


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize(("kind", "shape", "family"), CELLS)
def test_default_measures_run(kind: str, shape: dict[str, Any], family: str) -> None:
    data: dict[str, Any] = {
        "name": "smoke", "dataset": DATASETS[family], "learner": {"kind": kind, **shape},
        "train": {"steps": 2, "eval_every": 1, "batch_size": "full"},
        "tracking": {"experiment": "tests"},
    }
    if kind == "gp":
        data["train"]["optimizer"] = {"kind": "adam", "lr": 0.01, "weight_decay": 0.0}
    try:
        exp = validate_data(data)
    except SpecError as exc:  # a cell the matrix thinks valid must validate
        pytest.fail(f"{kind} {shape} x {family}: rejected at validation: {exc}")
    member = fit(exp, "cpu")
    assert member.error is None, member.error
    assert [h["step"] for h in member.history] == [0, 1, 2]
    for row in member.history:
        for name in names.UNIFORM:
            assert name in row and math.isfinite(row[name]), (name, row)
