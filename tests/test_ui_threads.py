"""torch's intra-op threads are chosen per run, said out loud and recorded."""

from __future__ import annotations

import torch

from grokspec import run as run_module
from grokspec.cli.main import main
from grokspec.tracking import tags
from grokspec.tracking.store import RunStore
from grokspec.training import threads
from tests.helpers import experiment


def test_small_models_get_one_thread_large_ones_one_per_core(monkeypatch) -> None:  # noqa: ANN001
    exp = experiment()
    ds = exp.dataset.build(exp.seed)
    state = torch.random.get_rng_state()
    n, why = threads.choose_threads(exp, ds)
    assert torch.equal(state, torch.random.get_rng_state())  # counting built nothing real
    assert (n, why) == (1, "small model: 24,095 params x 480 rows per step")
    assert threads.choose_threads(exp, ds, requested=3) == (3, "--threads")
    monkeypatch.setattr(threads, "SMALL_WORK", 1e3)
    monkeypatch.setattr(threads, "cores", lambda: 16)
    assert threads.choose_threads(exp, ds)[0] == threads.MAX_THREADS


def test_run_prints_and_tags_its_threads(mlflow_uri: str, tmp_path, capsys) -> None:  # noqa: ANN001
    spec = tmp_path / "tiny.yaml"
    spec.write_text("name: tiny\ndataset: {kind: modular, p: 11, train_fraction: 0.5}\n"
                    "learner: {kind: mlp, width: 16}\ntrain: {steps: 4, eval_every: 2}\n"
                    "analysis: {metrics: []}\ntracking: {experiment: threads}\n")
    run_module._announced.clear()  # the choice is printed once per process
    try:
        assert main(["run", str(spec), "--no-progress", "--threads", "2"]) == 0
    finally:
        torch.set_num_threads(1)  # the suite's setting (tests/conftest.py)
    captured = capsys.readouterr()
    assert "threads: 2 (--threads)" in captured.err
    store = RunStore(mlflow_uri)
    (run,) = store.grokspec_runs("threads")
    assert run.data.tags[tags.THREADS] == "2"
    assert "chart view: http://127.0.0.1:5000/#/experiments/" in captured.out
