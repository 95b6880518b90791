"""The GPU path: runners, batched sweeps, checkpoints across devices, determinism.

Marked ``cuda`` and skipped when ``torch.cuda.is_available()`` is False (no GPU was lent to
the session that wrote these: they have run only in their CPU rehearsal, below). Run them on a
GPU machine with ``pytest -m cuda tests/test_gpu.py``.

Rehearsal on CPU: ``GROKSPEC_GPU_TEST_DEVICE=cpu pytest tests/test_gpu.py`` runs the same
bodies with "cpu" as the accelerator, which checks the tests themselves (a cross-device
resume then is cpu -> cpu).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

# cuBLAS is deterministic only with a fixed workspace; it reads this when its handle is made.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

from grokspec.run import run_experiment  # noqa: E402
from grokspec.spec.loading import validate_data  # noqa: E402
from grokspec.training.checkpoint import checkpoint_path  # noqa: E402
from grokspec.training.loop import Member, train  # noqa: E402
from grokspec.training.runner import load_runner  # noqa: E402
from tests.helpers import TINY_GROK, deep_update, interrupted_at  # noqa: E402

DEVICE = os.environ.get("GROKSPEC_GPU_TEST_DEVICE", "cuda")

#: Marks of every test that needs the device (the bench smoke test at the end does not).
needs_device = pytest.mark.skipif(
    DEVICE.startswith("cuda") and not torch.cuda.is_available(), reason="no CUDA device"
)


MLP = {"train": {"steps": 60, "eval_every": 20, "stop": None, "batch_size": 128},
       "analysis": {"metrics": []}}
TRANSFORMER = {
    **MLP,
    "learner": {"kind": "transformer", "layers": 1, "d_model": 32, "heads": 4, "d_mlp": 64,
                "activation": "relu", "layer_norm": False},
}


def experiment(**over: object) -> object:
    """tests.helpers' tiny grokking spec; a given ``learner`` / ``dataset`` replaces it."""
    base = {k: v for k, v in TINY_GROK.items() if k not in over or k not in (
        "learner", "dataset")}
    return validate_data(deep_update(base, over))


def _final(history: list[dict[str, float]]) -> dict[str, float]:
    return {k: v for k, v in history[-1].items() if k in ("train/loss", "test/loss")}


@pytest.mark.cuda
@needs_device
@pytest.mark.parametrize("over", [MLP, TRANSFORMER], ids=["mlp", "transformer"])
def test_gradient_runner_matches_cpu(client, over: dict) -> None:  # noqa: ANN001
    """Same spec on the accelerator and on the CPU: same curve within float rounding
    (float32 matmuls; TF32 stays off, torch's default)."""
    exp = experiment(**over)
    gpu = run_experiment(exp, device=DEVICE)
    cpu = run_experiment(exp, device="cpu")
    assert gpu.status == cpu.status == "FINISHED"
    assert [h["step"] for h in gpu.history] == [h["step"] for h in cpu.history]
    for k, v in _final(cpu.history).items():
        assert _final(gpu.history)[k] == pytest.approx(v, rel=1e-3), k


@pytest.mark.cuda
@needs_device
def test_gp_runner_on_device(client) -> None:  # noqa: ANN001
    exp = experiment(
        dataset={"kind": "regression_sine"},
        learner={"kind": "gp"},
        train={"optimizer": {"kind": "adam", "lr": 0.1, "weight_decay": 0.0}, "steps": 20,
               "eval_every": 5, "stop": None},
        analysis={"metrics": []},
    )
    result = run_experiment(exp, device=DEVICE)
    assert result.status == "FINISHED"
    assert torch.isfinite(torch.tensor(result.history[-1]["train/loss"]))


@pytest.mark.cuda
@needs_device
def test_batched_lr_wd_grid_equals_each_point_alone() -> None:
    """A 2 x 2 lr x weight-decay grid as one batch on the device = each point alone there."""
    grid = [(1e-3, 0.1), (1e-3, 1.0), (3e-3, 0.1), (3e-3, 1.0)]
    exps = [experiment(analysis=MLP["analysis"], seed=s, train={**MLP["train"], "optimizer": {
                "kind": "adamw", "lr": lr, "weight_decay": wd}})
            for s, (lr, wd) in enumerate(grid)]
    runner, dev = load_runner("gradient"), torch.device(DEVICE)
    batched = [Member(e, e.dataset.build(e.seed)) for e in exps]
    train(batched, runner, dev)
    for e, b in zip(exps, batched, strict=True):
        alone = Member(e, e.dataset.build(e.seed))
        train([alone], runner, dev)
        assert b.error is None and alone.error is None
        for k, v in _final(alone.history).items():
            assert _final(b.history)[k] == pytest.approx(v, rel=1e-4), k


@pytest.mark.cuda
@needs_device
@pytest.mark.parametrize("save_on,resume_on", [(DEVICE, "cpu"), ("cpu", DEVICE)])
def test_checkpoint_resumes_on_the_other_device(
    client, save_on: str, resume_on: str, monkeypatch: pytest.MonkeyPatch  # noqa: ANN001
) -> None:
    """Killed at step 40 on one device, resumed on the other: the run finishes with the
    whole curve, equal to an uninterrupted run within float rounding."""
    exp = experiment(analysis=MLP["analysis"], tracking={"checkpoint_every": 20},
                     train={**MLP["train"], "grokfast": {"alpha": 0.9, "lamb": 1.0}})
    full = run_experiment(exp, device=save_on)
    with interrupted_at(monkeypatch, 40):  # raises there exactly once, or the block fails
        run_experiment(exp, device=save_on)
    assert checkpoint_path(exp).exists()
    resumed = run_experiment(exp, device=resume_on, resume=True)
    assert resumed.status == "FINISHED"
    assert [h["step"] for h in resumed.history] == [h["step"] for h in full.history]
    for k, v in _final(full.history).items():
        assert _final(resumed.history)[k] == pytest.approx(v, rel=1e-3), k


@pytest.mark.cuda
@needs_device
def test_deterministic_algorithms_give_identical_runs(client) -> None:  # noqa: ANN001
    """With ``torch.use_deterministic_algorithms(True)`` (and the cuBLAS workspace set
    above), two runs of one spec on the device are bit-identical. Without it, GPU kernels
    that accumulate with atomics (embedding backward, index_add) may differ in the last bits
    from run to run: CPU runs are deterministic either way."""
    exp = experiment(**TRANSFORMER)
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        a = run_experiment(exp, device=DEVICE)
        b = run_experiment(exp, device=DEVICE)
    finally:
        torch.use_deterministic_algorithms(before)
    assert a.status == b.status == "FINISHED"
    assert a.history == b.history


def test_gpu_bench_smoke_runs_on_cpu() -> None:
    """bench/gpu.py cannot be measured without a GPU; its --smoke mode must at least run
    every row (loop, batched members, torch.compile) on the CPU and print the table."""
    bench = Path(__file__).resolve().parent.parent / "bench" / "gpu.py"
    out = subprocess.run([sys.executable, str(bench), "--smoke"], capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    table = [line for line in out.stdout.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + 2 + 4 + 4, out.stdout  # header, loop, batched, compile rows
    assert "failed" not in out.stdout, out.stdout
