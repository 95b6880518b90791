"""Phase diagrams drawn from a real (tiny) sweep read back from MLflow."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import yaml

from grokspec.analysis.phase_diagram import phase_diagram
from grokspec.cli.main import main
from grokspec.sweep.expand import load_sweep
from grokspec.sweep.launch import run_sweep
from tests.helpers import TINY_GROK


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_phase_diagram_of_lr_by_fraction(tmp_path: Path, client, capsys) -> None:  # noqa: ANN001
    base = {**TINY_GROK, "train": {**TINY_GROK["train"], "steps": 400},
            "analysis": {"metrics": []}, "tracking": {"experiment": "phases"}}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({**base, "sweep": {"grid": {
        "train.optimizer.lr": [1.0e-5, 3.0e-3],  # too small to fit anything / fits fast
        "dataset.train_fraction": [0.3, 0.8],
    }}}))
    result = run_sweep(load_sweep(path), echo=lambda m: None)
    assert result.status == "FINISHED"

    out = tmp_path / "pd.png"
    pd = phase_diagram("phases", "train.optimizer.lr", "dataset.train_fraction", out=out)
    assert pd.parent_run_id == result.parent_run_id
    assert out.read_bytes()[:4] == b"\x89PNG"
    cells = {k: v[0] for k, v in pd.cells.items()}
    # 400 steps: lr 1e-5 never fits the training set; lr 3e-3 fits it by step ~100 and,
    # with 80% of the table to learn from, generalizes too; with 30% it only memorizes.
    assert cells[(1.0e-5, 0.3)] == "confusion" and cells[(1.0e-5, 0.8)] == "confusion"
    assert cells[(3.0e-3, 0.3)] == "memorization"
    assert cells[(3.0e-3, 0.8)] in ("grokking", "comprehension")
    arts = {a.path for a in client.list_artifacts(result.parent_run_id)}
    assert {"phase_diagram_phase.png", "phase_diagram_phase.csv"} <= arts
    assert "confusion" in pd.table and "memorization" in pd.table

    # shaded by a metric; cells where the event never happened say so
    assert main(["phase-diagram", "--experiment", "phases", "--x", "train.optimizer.lr",
                 "--y", "dataset.train_fraction", "--metric", "grok/test_fit_step",
                 "--out", str(tmp_path / "grok.png")]) == 0
    text = capsys.readouterr().out
    assert "never" in text and (tmp_path / "grok.png").exists()
    assert main(["phase-diagram", "--experiment", "nope", "--x", "a", "--y", "b"]) == 2
