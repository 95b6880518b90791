"""No silent default after a merge (issue 17 item 2).

``specs/papers/kumar2024.yaml`` once switched its base's ``optimizer: {kind: adam, lr: 1e-2,
weight_decay: 0.0}`` to ``{kind: gd, lr: 2e-2}`` and silently trained with the default weight
decay 1.0. A ``kind`` switch in ``extends``, a sweep variant or ``--set`` now keeps every field
the base set that the new kind also has; a kept field the new kind cannot use is rejected at
its line in the base file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from grokspec.spec.loading import SpecError, load_spec
from grokspec.sweep.expand import load_sweep

BASE = """\
name: base
dataset: {kind: modular, p: 11, op: x+y, train_fraction: 0.5, label_noise: 0.1}
learner: {kind: mlp, width: 16, depth: 1, activation: relu}
train:
  optimizer: {kind: adam, lr: 1.0e-2, weight_decay: 0.0, warmup_steps: 3}
  steps: 5
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_optimizer_kind_switch_in_extends_keeps_weight_decay(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", BASE)
    child = write(tmp_path, "child.yaml", "extends: base.yaml\ntrain:\n  optimizer: "
                  "{kind: sgd, lr: 2.0e-2}\n")
    opt = load_spec(child).train.optimizer
    assert (opt.kind, opt.lr, opt.weight_decay, opt.warmup_steps) == ("sgd", 2e-2, 0.0, 3)


def test_the_kumar_spec_trains_without_weight_decay() -> None:
    """The regression itself: every kumar2024 point resolves weight_decay 0, as its header
    and the paper (lambda = 0) say."""
    root = Path(__file__).resolve().parents[1]
    sweep = load_sweep(root / "specs" / "papers" / "kumar2024.yaml")
    assert {p.experiment.train.optimizer.weight_decay for p in sweep.points} == {0.0}
    assert {p.experiment.train.optimizer.kind for p in sweep.points} == {"gd"}


def test_learner_kind_switch_keeps_shared_fields_and_drops_the_others(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", BASE)
    child = write(tmp_path, "child.yaml", "extends: base.yaml\nlearner: {kind: bayesian_mlp}\n")
    learner = load_spec(child).learner
    assert learner.kind == "bayesian_mlp"
    # width / depth / activation are fields of both kinds: the base's values are kept
    assert (learner.width, learner.depth, learner.activation) == (16, 1, "relu")


def test_kept_field_the_new_kind_rejects_is_a_located_error(tmp_path: Path) -> None:
    """activation: quadratic is an MLP's; a transformer has `activation` but not that value:
    the error names the field and the base file's line, instead of a silent default."""
    write(tmp_path, "base.yaml", BASE.replace("activation: relu", "activation: quadratic"))
    child = write(tmp_path, "child.yaml", "extends: base.yaml\nlearner: {kind: transformer, "
                  "layers: 1, d_model: 16, heads: 2, d_mlp: 16}\n")
    with pytest.raises(SpecError) as exc:
        load_spec(child)
    text = str(exc.value)
    assert "learner.activation" in text and "base.yaml:3:" in text and "quadratic" in text


def test_dataset_kind_switch_keeps_shared_transforms(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", BASE)
    child = write(tmp_path, "child.yaml", "extends: base.yaml\ndataset: {kind: parity, "
                  "n_bits: 8, k: 2, n_examples: 200}\n")
    ds = load_spec(child).dataset
    assert ds.kind == "parity" and ds.train_fraction == 0.5 and ds.label_noise == 0.1


def test_variant_kind_switch_keeps_fields(tmp_path: Path) -> None:
    spec = write(tmp_path, "s.yaml", BASE + "sweep:\n  variants:\n    a: {}\n    b: {train: "
                 "{optimizer: {kind: adamw}}}\n")
    points = {p.variant: p.experiment for p in load_sweep(spec).points}
    assert points["b"].train.optimizer.kind == "adamw"
    assert points["b"].train.optimizer.weight_decay == 0.0  # not AdamW's default 1.0
    assert points["b"].train.optimizer.lr == 1e-2


def test_set_kind_switch_keeps_fields(tmp_path: Path) -> None:
    spec = write(tmp_path, "s.yaml", BASE)
    exp = load_spec(spec, ["train.optimizer={kind: adamw}"])
    assert exp.train.optimizer.kind == "adamw" and exp.train.optimizer.weight_decay == 0.0
    exp = load_spec(spec, ["train.optimizer.kind=adamw"])  # the dotted form: the same
    assert exp.train.optimizer.weight_decay == 0.0


def test_set_kind_switch_to_gd_rejects_what_gd_cannot_do(tmp_path: Path) -> None:
    """Adam's betas, kept over a switch to plain gradient descent, are rejected at their
    line rather than dropped unseen."""
    spec = write(tmp_path, "s.yaml", BASE.replace("warmup_steps: 3", "betas: [0.9, 0.99]")
                 .replace("  steps: 5", "  steps: 5\n  batch_size: full"))
    with pytest.raises(SpecError) as exc:
        load_spec(spec, ["train.optimizer={kind: gd}"])
    assert "train.optimizer.betas" in str(exc.value)
