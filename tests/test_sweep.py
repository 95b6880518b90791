"""Sweep expansion and validation: counts, value generators, every point checked up front."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from grokspec.cli.main import main
from grokspec.spec.experiment import json_schema
from grokspec.spec.loading import SpecError
from grokspec.sweep.expand import load_sweep
from tests.helpers import TINY_GROK


def write(tmp_path: Path, sweep: dict, **over: object) -> Path:
    data = {**TINY_GROK, **over, "sweep": sweep}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_counts_are_variants_x_grid_x_zip_x_seeds(tmp_path: Path) -> None:
    path = write(tmp_path, {
        "grid": {
            "dataset.train_fraction": [0.2, 0.3, 0.4],
            "train.optimizer.weight_decay": {"log_range": [1.0e-3, 1.0, 4]},
        },
        "zip": {"learner.width": [64, 128], "train.optimizer.lr": [1.0e-3, 2.0e-3]},
        "seeds": 5,
        "variants": {"quad": {}, "relu": {"learner": {"activation": "relu"}}},
    })
    sweep = load_sweep(path)
    assert len(sweep.points) == 2 * (3 * 4) * 2 * 5
    assert sweep.axes == ["variant", "dataset.train_fraction", "train.optimizer.weight_decay",
                          "learner.width", "train.optimizer.lr", "seed"]
    wds = sorted({p.experiment.train.optimizer.weight_decay for p in sweep.points})
    assert wds == [0.001, 0.01, 0.1, 1.0]  # log_range, both ends included, tidy floats
    # zip keys move together, never crossed
    pairs = {(p.experiment.learner.width, p.experiment.train.optimizer.lr) for p in sweep.points}
    assert pairs == {(64, 1.0e-3), (128, 2.0e-3)}
    # seeds are innermost, counted from the base seed, and every point is its own experiment
    assert [p.seed for p in sweep.points[:5]] == [0, 1, 2, 3, 4]
    assert len({p.experiment.spec_hash() for p in sweep.points}) == len(sweep.points)
    relu = [p for p in sweep.points if p.variant == "relu"]
    assert {p.experiment.learner.activation for p in relu} == {"relu"}
    assert relu[0].experiment.tracking.tags["grokspec.sweep.variant"] == "relu"


def test_range_linspace_and_explicit_seeds(tmp_path: Path) -> None:
    path = write(tmp_path, {
        "grid": {"train.steps": {"range": [100, 400, 100]},
                 "train.optimizer.lr": {"linspace": [1.0e-3, 3.0e-3, 3]}},
        "seeds": [7, 11],
    })
    sweep = load_sweep(path)
    assert sorted({p.experiment.train.steps for p in sweep.points}) == [100, 200, 300]
    assert sorted({p.experiment.train.optimizer.lr for p in sweep.points}) == [1e-3, 2e-3, 3e-3]
    assert sorted({p.seed for p in sweep.points}) == [7, 11]
    assert len(sweep.points) == 3 * 3 * 2


def test_one_bad_point_rejects_the_sweep_naming_point_field_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, {"grid": {"dataset.train_fraction": [0.2, 0.3, 1.5]}, "seeds": 2})
    with pytest.raises(SpecError) as err:
        load_sweep(path)
    (problem,) = err.value.problems
    text = str(problem)
    assert problem.path == "dataset.train_fraction"
    assert "sweep point #4" in text and "train_fraction=1.5" in text
    assert "(and 1 more points)" in text  # the other seed of the same value
    # FILE:LINE:COL of the offending list element (yaml.safe_dump writes one per line)
    lines = path.read_text().splitlines()
    line = next(i for i, s in enumerate(lines, 1) if s.strip() == "- 1.5")
    assert text.startswith(f"{path}:{line}:")


def test_a_variant_that_does_not_fit_a_grid_key_is_caught(tmp_path: Path) -> None:
    path = write(tmp_path, {
        "grid": {"learner.width": [64, 128]},
        "variants": {"mlp": {}, "tf": {"learner": {"kind": "transformer", "d_model": 32}}},
    })
    with pytest.raises(SpecError) as err:
        load_sweep(path)
    msgs = [str(p) for p in err.value.problems]
    assert any("learner.width: unknown field 'width'" in m and "tf width=64" in m for m in msgs)


def test_sweep_block_errors_point_into_the_block(tmp_path: Path) -> None:
    path = write(tmp_path, {
        "grid": {"train.optimizer.weight_decay": {"log_range": [0, 1, 3]}},
        "vectorise": True,
    })
    with pytest.raises(SpecError) as err:
        load_sweep(path)
    msgs = "\n".join(str(p) for p in err.value.problems)
    assert "sweep.grid: 'train.optimizer.weight_decay': log_range needs lo > 0" in msgs
    assert "did you mean 'vectorize'" in msgs
    path = write(tmp_path, {"zip": {"learner.width": [1, 2], "train.steps": [100]}})
    with pytest.raises(SpecError, match="zip keys need lists of the same length"):
        load_sweep(path)


def test_duplicate_points_are_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, {"grid": {"train.steps": [100, 100]}})
    with pytest.raises(SpecError, match="same experiment"):
        load_sweep(path)


def test_variants_may_bring_the_learner(tmp_path: Path) -> None:
    base = {k: v for k, v in TINY_GROK.items() if k != "learner"}
    path = tmp_path / "x.yaml"
    path.write_text(yaml.safe_dump({**base, "sweep": {"variants": {
        "mlp": {"learner": {"kind": "mlp", "width": 64}},
        "tf": {"learner": {"kind": "transformer", "d_model": 32, "heads": 4}},
    }}}))
    sweep = load_sweep(path)
    assert [p.experiment.learner.kind for p in sweep.points] == ["mlp", "transformer"]
    assert len({p.seed for p in sweep.points}) == 1  # variants share the seed: same split


def test_cli_dry_run_validate_and_schema(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = write(tmp_path, {"grid": {"train.optimizer.weight_decay": [0.1, 1.0]}, "seeds": 3})
    assert main(["sweep", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "6 points" in out and "weight_decay=0.1 seed=2" in out
    assert main(["validate", str(path)]) == 0
    assert "sweep of 6 valid points" in capsys.readouterr().out
    assert main(["validate", str(path), "--set", "sweep.grid.train.steps=[0]"]) == 2
    err = capsys.readouterr().err
    assert "--set sweep.grid.train.steps=[0]" in err and "train.steps" in err
    schema = json_schema()
    sweep_schema = schema["$defs"]["SweepSpec"]
    assert {"grid", "zip", "seeds", "variants", "vectorize"} <= set(sweep_schema["properties"])
    assert schema["properties"]["sweep"] == {"$ref": "#/$defs/SweepSpec"}


def test_dry_run_imports_neither_torch_nor_mlflow() -> None:
    """Issue 20 item 4: `sweep --dry-run` as fast as `validate` (it took 14 s wall)."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    code = ("import sys; from grokspec.cli.main import main; "
            f"rc = main(['sweep', r'{root / 'specs' / 'papers' / 'kumar2024.yaml'}', "
            "'--dry-run']); "
            "assert rc == 0 and 'torch' not in sys.modules and 'mlflow' not in sys.modules, "
            "sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'mlflow'))[:3]")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
