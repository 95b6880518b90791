"""The regression families: Kumar et al.'s polynomial teacher, Omnigrok's MLP teacher, Levi et
al.'s linear teacher and Miller et al.'s noisy sine; and their accuracy surrogate."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from grokspec.datasets import LinearTeacherSpec, RegressionSineSpec, TeacherSpec
from grokspec.spec.loading import SpecError, load_spec, validate_data
from grokspec.training.evaluation import accuracy


def test_polynomial_teacher_is_kumar_et_al() -> None:
    spec = TeacherSpec()
    ds = spec.build(0)
    assert (ds.n_train, ds.n_test, ds.input_dim) == (550, 1000, 100)
    beta = ds.info["beta"]
    assert math.isclose(float(beta.norm()), 10.0, rel_tol=1e-5)  # |beta| = sqrt(D)
    assert torch.allclose(ds.y_train, (ds.x_train @ beta / 10.0) ** 2, atol=1e-4)
    y = torch.cat([ds.y_train, ds.y_test])
    assert abs(float(y.mean()) - 1.0) < 0.15 and abs(float(y.std()) - math.sqrt(2)) < 0.25
    assert ds.task == "regression" and ds.info["acc_tolerance"] == 0.1


def test_mlp_teacher_has_unit_scale_and_clean_test_targets() -> None:
    spec = TeacherSpec(target="mlp", noise=0.5, teacher_depth=2)
    ds = spec.build(0)
    clean_train = ds.meta_train["clean_target"]
    assert torch.equal(ds.y_test, ds.meta_test["clean_target"])  # test targets noise-free
    assert abs(float((ds.y_train - clean_train).std()) - 0.5) < 0.05  # training noise
    assert abs(float(torch.cat([clean_train, ds.y_test]).std()) - 1.0) < 1e-3
    assert not torch.equal(ds.y_train, TeacherSpec(target="mlp", noise=0.5, teacher_depth=2)
                           .build(1).y_train)


def test_linear_teacher() -> None:
    spec = LinearTeacherSpec(noise=0.1)
    ds = spec.build(0)
    w = ds.info["teacher_w"]
    assert (ds.n_train, ds.n_test) == (200, 1000)
    assert torch.allclose(ds.y_test, ds.x_test @ w / 10.0, atol=1e-4)
    resid = ds.y_train - ds.x_train @ w / 10.0
    assert 0.07 < float(resid.std()) < 0.13
    # The least-squares solution on the training set recovers the teacher (n_train > d).
    w_hat = torch.linalg.lstsq(ds.x_train, ds.y_train).solution
    assert float((w_hat - w / 10.0).norm() / (w / 10.0).norm()) < 0.15


def test_regression_sine_is_millers_toy() -> None:
    ds = RegressionSineSpec().build(0)
    x = torch.cat([ds.x_train, ds.x_test])
    assert float(x.min()) >= -1.5 and float(x.max()) <= 1.5 and ds.input_dim == 1
    assert torch.allclose(ds.y_test, torch.sin(math.pi * ds.x_test[:, 0]))
    assert 0.07 < float((ds.y_train - torch.sin(math.pi * ds.x_train[:, 0])).std()) < 0.13


def test_accuracy_surrogate_uses_the_family_tolerance() -> None:
    ds = RegressionSineSpec(acc_tolerance=0.25).build(0)
    target = ds.y_test
    off = torch.full_like(target, 0.2)
    assert float(accuracy(target + off, target, ds).mean()) == 1.0
    assert float(accuracy(target + 2 * off, target, ds).mean()) == 0.0


def test_regression_families_run_with_the_mlp() -> None:
    exp = validate_data({
        "name": "t", "dataset": {"kind": "teacher", "n_examples": 700},
        "learner": {"kind": "mlp", "width": 32}, "train": {"steps": 5},
    })
    assert exp.dataset.task == "regression"
    with pytest.raises(SpecError, match="learner kind 'transformer'"):
        validate_data({"name": "t", "dataset": {"kind": "teacher"},
                       "learner": {"kind": "transformer"}})


def test_sine_interval_must_be_ordered(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\nlearner: {kind: mlp}\ndataset:\n  kind: regression_sine\n"
                    "  low: 1.0\n  high: -1.0\n")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    (problem,) = info.value.problems
    assert (problem.where.line, problem.path) == (6, "dataset.high")
