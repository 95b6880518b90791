"""Running sweeps into a real MLflow store: parent/children, failures, resume, variants."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import yaml

from grokspec.sweep.executors import ProcessExecutor
from grokspec.sweep.expand import load_sweep
from grokspec.sweep.launch import run_sweep
from tests.helpers import TINY_GROK


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny models: one torch thread is faster, and far faster on a busy 2-core machine
    (two OpenMP threads measured 5x slower per step under load)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


#: Mechanics, not grokking: a few hundred steps, no progress measures.
QUICK = {**TINY_GROK, "train": {**TINY_GROK["train"], "steps": 150, "eval_every": 50},
         "analysis": {"metrics": []}}


def write(tmp_path: Path, sweep: dict, base: dict | None = None) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({**(base or QUICK), "sweep": sweep}, sort_keys=False))
    return path


def children(client, parent_id: str) -> list:  # noqa: ANN001 - MlflowClient
    exp = client.get_run(parent_id).info.experiment_id
    return client.search_runs([exp], f"tags.`mlflow.parentRunId` = '{parent_id}'")


def test_failing_points_leave_the_rest_and_resume_reruns_only_them(
    tmp_path: Path, client, monkeypatch: pytest.MonkeyPatch  # noqa: ANN001
) -> None:
    import grokspec.run

    open_run = grokspec.run.open_run

    def failing_setup(experiment, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        if experiment.train.eval_every == 24:
            raise ValueError("simulated setup failure")
        return open_run(experiment, *args, **kwargs)

    monkeypatch.setattr(grokspec.run, "open_run", failing_setup)
    path = write(tmp_path, {"variants": {
        "good": {},
        "nan": {"train": {"optimizer": {"kind": "sgd", "lr": 1.0e6}}},  # diverges
        "broken": {"train": {"eval_every": 24}},  # raises before its run exists
    }})
    sweep = load_sweep(path)
    first = run_sweep(sweep, echo=lambda m: None)
    assert first.status == "FAILED"
    by_variant = {r["variant"]: r for r in first.table}
    assert by_variant["good"]["status"] == "FINISHED"
    assert by_variant["nan"]["status"] == "FAILED" and by_variant["broken"]["status"] == "FAILED"
    runs = {r.data.tags["grokspec.sweep.variant"]: r for r in children(client, first.parent_run_id)}
    assert set(runs) == {"good", "nan", "broken"}
    assert "diverged at step" in runs["nan"].data.tags["grokspec.failure_reason"]
    assert "simulated setup failure" in runs["broken"].data.tags["grokspec.failure_reason"]
    assert runs["good"].data.metrics["grok/train_fit_step"] > 0
    parent = client.get_run(first.parent_run_id)
    assert parent.info.status == "FAILED"
    assert "2 of 3 points" in parent.data.tags["grokspec.failure_reason"]
    assert parent.data.params["sweep.variants"] == '["good", "nan", "broken"]'

    second = run_sweep(load_sweep(path), echo=lambda m: None)
    assert second.parent_run_id == first.parent_run_id  # the same sweep: the same parent
    assert second.skipped == [0]  # "good" finished: not run again
    assert sorted(second.outcomes) == [1, 2]  # the failed ones ran again
    assert len(children(client, first.parent_run_id)) == 5

    third = run_sweep(load_sweep(path), fresh=True, echo=lambda m: None)
    assert third.parent_run_id != first.parent_run_id and sorted(third.outcomes) == [0, 1, 2]


def test_variants_share_the_split_and_the_parent_compares_them(tmp_path: Path, client) -> None:  # noqa: ANN001
    base = {k: v for k, v in QUICK.items() if k != "learner"}
    path = write(tmp_path, {"variants": {
        "mlp_quadratic": {"learner": {"kind": "mlp", "width": 128, "activation": "quadratic"}},
        "mlp_relu": {"learner": {"kind": "mlp", "width": 64, "activation": "relu"}},
        "transformer": {"learner": {"kind": "transformer", "d_model": 32, "heads": 4, "d_mlp": 64}},
    }}, base)
    result = run_sweep(load_sweep(path), echo=lambda m: None)
    assert result.status == "FINISHED"
    runs = children(client, result.parent_run_id)
    assert {r.data.tags["grokspec.learner"] for r in runs} == {"mlp", "transformer"}
    assert len({r.data.tags["grokspec.split"] for r in runs}) == 1  # identical examples
    assert len({r.data.params["seed"] for r in runs}) == 1
    arts = {a.path for a in client.list_artifacts(result.parent_run_id)}
    assert {"comparison.png", "results.csv", "results.md", "sweep.yaml"} <= arts
    local = client.download_artifacts(result.parent_run_id, "results.csv", str(tmp_path))
    rows = Path(local).read_text().splitlines()
    assert rows[0].split(",")[:4] == ["point", "variant", "seed", "status"]
    assert "train_fit_step" in rows[0] and "test_fit_step" in rows[0] and "delay" in rows[0]
    assert {r.split(",")[1] for r in rows[1:]} == {"mlp_quadratic", "mlp_relu", "transformer"}
    png = client.download_artifacts(result.parent_run_id, "comparison.png", str(tmp_path))
    assert Path(png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_process_pool_runs_points_in_parallel_workers(
    tmp_path: Path, client, monkeypatch: pytest.MonkeyPatch  # noqa: ANN001
) -> None:
    from grokspec.sweep import executors

    monkeypatch.setattr(executors, "STATUS_EVERY_S", 0.0)  # a status line at every wake-up
    path = write(tmp_path, {"grid": {"train.optimizer.weight_decay": [0.5, 1.0]}})
    lines: list[str] = []
    result = run_sweep(load_sweep(path), ProcessExecutor(workers=2), echo=lines.append)
    assert result.status == "FINISHED", result.table
    status = [ln for ln in lines if "points done" in ln]
    assert status and all(re.match(r"\[\d+:\d\d:\d\d\] [0-2]/2 points done, \d running", ln)
                          for ln in status), lines
    runs = children(client, result.parent_run_id)
    assert sorted(float(r.data.params["train.optimizer.weight_decay"]) for r in runs) == [0.5, 1.0]
    assert all(r.info.status == "FINISHED" for r in runs)
    assert len({r.data.metrics["grok/train_fit_step"] for r in runs}) >= 1


def test_status_line_says_what_runs_and_waits() -> None:
    from grokspec.sweep.executors import StatusLine

    lines: list[str] = []
    line = StatusLine(5, lines.append, every=0.0)
    line.done = 1
    line.tick(["a", "b", "c", "d"], 0)
    line.tick(None, 4)
    assert lines[0].endswith("1/5 points done, 4 running (a, b, c +1), 0 queued")
    assert lines[1].endswith("1/5 points done, 4 running or queued")
    quiet = StatusLine(5, lines.append, every=3600.0)
    quiet.tick(["a"], 0)
    assert len(lines) == 2  # not before its interval


def test_cli_run_on_a_sweep_file_runs_the_sweep(
    tmp_path: Path, client, capsys: pytest.CaptureFixture  # noqa: ANN001
) -> None:
    from grokspec.cli.main import main

    path = write(tmp_path, {"seeds": 2})
    assert main(["run", str(path)]) == 0
    out = capsys.readouterr().out
    assert "| point |" in out and "MLflow parent run" in out
    assert out.count("FINISHED") >= 2
    assert main(["run", str(path)]) == 0  # the second time every point is skipped
    assert "skipping 2 finished point(s); 0 to run" in capsys.readouterr().err


def test_the_parents_figure_draws_every_child_of_variants_x_grid(
    tmp_path: Path, client, monkeypatch: pytest.MonkeyPatch  # noqa: ANN001
) -> None:
    """Issue 20 item 1: with variants crossed with a grid the parent's comparison.png drew
    one curve per variant (its first point); now every child, colour by variant, line style
    by the grid axis, and the title says how many points are drawn."""
    import grokspec.sweep.report as report

    drawn: dict = {}
    overlay = report.overlay_figure

    def spy(runs, metrics, title, styles=None):  # noqa: ANN001, ANN202
        drawn.update(runs=dict(runs), title=title, styles=dict(styles or {}))
        return overlay(runs, metrics, title, styles)

    monkeypatch.setattr(report, "overlay_figure", spy)
    path = write(tmp_path, {"variants": {"a": {}, "b": {"learner": {"width": 32}}},
                            "grid": {"dataset.train_fraction": [0.4, 0.6]}})
    result = run_sweep(load_sweep(path), echo=lambda m: None)
    assert result.status == "FINISHED"
    assert len(drawn["runs"]) == 4 and "4 of 4 points" in drawn["title"]
    assert "variants on the identical split" not in drawn["title"]
    colours = {label.split()[0][0]: c for label, (c, _) in drawn["styles"].items()}
    assert len(set(drawn["styles"].values())) == 4 and len(set(colours.values())) == 2


def test_a_resumed_parent_that_finishes_drops_its_old_failure_reason(
    tmp_path: Path, client, monkeypatch: pytest.MonkeyPatch  # noqa: ANN001
) -> None:
    """Issue 19 item 2: status, description and failure reason of a parent agree."""
    import grokspec.run

    open_run = grokspec.run.open_run
    fail = {"on": True}

    def flaky(experiment, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        if fail["on"] and experiment.train.eval_every == 30:
            raise ValueError("simulated setup failure")
        return open_run(experiment, *args, **kwargs)

    monkeypatch.setattr(grokspec.run, "open_run", flaky)
    path = write(tmp_path, {"variants": {"a": {}, "b": {"train": {"eval_every": 30}}}})
    first = run_sweep(load_sweep(path), echo=lambda m: None)
    assert client.get_run(first.parent_run_id).data.tags["grokspec.failure_reason"]
    fail["on"] = False
    second = run_sweep(load_sweep(path), echo=lambda m: None)
    parent = client.get_run(second.parent_run_id)
    assert second.parent_run_id == first.parent_run_id and parent.info.status == "FINISHED"
    assert "grokspec.failure_reason" not in parent.data.tags
