"""Spec loading: valid specs load; every error class names file:line:col and the field path."""

from __future__ import annotations

from pathlib import Path

import pytest

from grokspec.cli.main import main
from grokspec.spec.loading import SpecError, load_spec

GOOD = """\
name: ok
seed: 3
dataset:
  kind: modular
  op: x/y
  p: 97
  train_fraction: 0.4
learner:
  kind: transformer
  d_model: 64
  heads: 4
train:
  optimizer: {kind: adamw, lr: 1.0e-3, weight_decay: 1.0}
  steps: 100
"""


def write(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def problems(path: Path, overrides: tuple[str, ...] = ()) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_spec(path, list(overrides))
    return [str(p) for p in info.value.problems]


def test_good_spec_loads_with_defaults(tmp_path: Path) -> None:
    exp = load_spec(write(tmp_path, GOOD))
    assert exp.seed == 3 and exp.dataset.p == 97 and exp.learner.d_model == 64
    assert exp.train.batch_size == "full"  # default filled in
    assert exp.learner.d_mlp == 512


def test_unknown_field_did_you_mean(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("  train_fraction: 0.4", "  train_fractoin: 0.4"))
    (msg,) = problems(path)
    assert msg.startswith(f"{path}:7:3: dataset.train_fractoin: unknown field")
    assert "did you mean 'train_fraction'" in msg


def test_unknown_kind_did_you_mean(tmp_path: Path) -> None:
    (msg,) = problems(write(tmp_path, GOOD.replace("kind: transformer", "kind: transfomer")))
    assert ":9:3: learner.kind: unknown kind 'transfomer'" in msg
    assert "did you mean 'transformer'" in msg and "mlp" in msg


def test_all_problems_reported_at_once(tmp_path: Path) -> None:
    text = GOOD.replace("lr: 1.0e-3", "lr: -1").replace("steps: 100", "steps: 0")
    msgs = problems(write(tmp_path, text))
    assert len(msgs) == 2
    assert any(":13:" in m and "train.optimizer.lr" in m and "greater than 0" in m for m in msgs)
    assert any(":14:3: train.steps:" in m and "greater than or equal to 1" in m for m in msgs)


def test_range_and_cross_field_checks(tmp_path: Path) -> None:
    (msg,) = problems(write(tmp_path, GOOD.replace("p: 97", "p: 98")))
    assert ":3:1: dataset:" in msg and "not prime" in msg and "got {" not in msg
    (msg,) = problems(write(tmp_path, GOOD.replace("heads: 4", "heads: 5")))
    assert "learner:" in msg and "not divisible by heads=5" in msg and "valid heads" in msg
    (msg,) = problems(write(tmp_path, GOOD.replace("train_fraction: 0.4", "train_fraction: 1.5")))
    assert ":7:3: dataset.train_fraction:" in msg and "less than 1" in msg


def test_missing_required_field(tmp_path: Path) -> None:
    (msg,) = problems(write(tmp_path, GOOD.replace("name: ok\n", "")))
    assert msg.endswith("name: required field is missing")


def test_yaml_syntax_error_has_line(tmp_path: Path) -> None:
    (msg,) = problems(write(tmp_path, GOOD + "  bad: [unclosed\n"))
    assert str(tmp_path / "spec.yaml") in msg and "not valid YAML" in msg


def test_override_applies_and_is_validated(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    exp = load_spec(path, ["train.optimizer.weight_decay=0.1", "learner.layers=2"])
    assert exp.train.optimizer.weight_decay == 0.1 and exp.learner.layers == 2
    (msg,) = problems(path, ("train.optimizer.weight_decay=-3",))
    assert msg.startswith("--set train.optimizer.weight_decay=-3: train.optimizer.weight_decay:")
    (msg,) = problems(path, ("learner.layerz=2",))
    assert "did you mean 'layers'" in msg


def test_extends_merges_and_points_at_the_right_file(tmp_path: Path) -> None:
    write(tmp_path, GOOD, "base.yaml")
    child = write(tmp_path, "extends: base.yaml\nname: child\ntrain:\n  steps: -5\n", "child.yaml")
    (msg,) = problems(child)
    assert msg.startswith(f"{child}:4:3: train.steps:")
    child.write_text("extends: base.yaml\nname: child\nlearner:\n  heads: 8\n")
    exp = load_spec(child)
    assert exp.name == "child" and exp.learner.heads == 8 and exp.learner.d_model == 64


def test_cli_validate_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(tmp_path, GOOD)
    assert main(["validate", str(good)]) == 0
    assert "ok" in capsys.readouterr().out
    bad = write(tmp_path, GOOD.replace("p: 97", "p: 97\n  q: 1"), "bad.yaml")
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:7:3: dataset.q: unknown field" in err and "Traceback" not in err


def test_cli_run_on_bad_spec_creates_no_mlflow_run(
    tmp_path: Path, client, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write(tmp_path, GOOD.replace("steps: 100", "steps: many"), "bad.yaml")
    assert main(["run", str(bad), "--no-progress"]) == 2
    assert "train.steps" in capsys.readouterr().err
    assert client.search_runs([e.experiment_id for e in client.search_experiments()]) == []


def test_schema_is_json_schema_with_descriptions(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "grokspec experiment"
    assert {"dataset", "learner", "train", "tracking"} <= set(schema["properties"])
    lr = schema["$defs"]["OptimizerSpec"]["properties"]["lr"]
    assert lr["description"] and lr["exclusiveMinimum"] == 0.0


def test_a_command_parses_each_yaml_file_once(monkeypatch, capsys) -> None:  # noqa: ANN001
    """Issue 22: `grokspec sweep` (and `run`) asked for a file's data twice (does it hold a
    sweep? then the points): parsed once now."""
    from pathlib import Path

    import grokspec.spec.loading as loading
    from grokspec.cli.main import main

    calls: list[Path] = []
    parse = loading._parse_yaml

    def counting(path, text):  # noqa: ANN001, ANN202
        calls.append(Path(path))
        return parse(path, text)

    monkeypatch.setattr(loading, "_parse_yaml", counting)
    loading._PARSED.clear()
    spec = Path(__file__).resolve().parent.parent / "specs" / "papers" / "kumar2024.yaml"
    assert main(["sweep", str(spec), "--dry-run"]) == 0
    assert calls == [spec]


def test_each_spec_file_is_read_once_per_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
) -> None:
    """Issue 22: deciding "sweep or single run" and validating share one read of each file
    (before: every file was read and parsed twice, once to look for a sweep: block)."""
    import yaml

    from grokspec.cli.main import main
    from grokspec.spec import loading
    from tests.helpers import TINY_GROK

    plain, swept = tmp_path / "plain.yaml", tmp_path / "swept.yaml"
    plain.write_text(yaml.safe_dump(TINY_GROK))
    swept.write_text(yaml.safe_dump({**TINY_GROK, "sweep": {"seeds": [0, 1]}}))
    reads: list[str] = []
    real = loading._load_with_extends

    def counted(path, *a, **k):  # noqa: ANN001, ANN002, ANN003, ANN202
        reads.append(Path(path).name)
        return real(path, *a, **k)

    monkeypatch.setattr(loading, "_load_with_extends", counted)
    assert main(["validate", str(plain), str(swept)]) == 0
    assert sorted(reads) == ["plain.yaml", "swept.yaml"]
    reads.clear()
    assert main(["sweep", str(swept), "--dry-run"]) == 0
    assert reads == ["swept.yaml"]
    capsys.readouterr()
