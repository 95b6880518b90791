"""The feature matrix: every runner x {grokfast, resume, vectorize, early stop, checkpoint}.

Each cell is either equal to its reference (resumed == uninterrupted exactly; batched ==
sequential within rtol 1e-4; a feature that is applied changes the numbers) or rejected at
validation. This is where silent scientific errors hide: a filter that a batched loop skips,
a state that a checkpoint forgets.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from grokspec.metrics import names
from grokspec.run import run_batch, run_experiment
from grokspec.spec.loading import SpecError, validate_data
from grokspec.sweep.expand import load_sweep
from grokspec.training.checkpoint import checkpoint_path
from tests.helpers import TINY_GROK, deep_update, interrupted_at

GROKFAST = {"filter": "ema", "alpha": 0.9, "lamb": 2.0}
GROKFAST_MA = {"filter": "ma", "window": 5, "lamb": 2.0}
MLP = {"train": {"steps": 100, "eval_every": 25, "stop": None, "batch_size": 64},
       "analysis": {"metrics": []}}
GP = {
    "dataset": {"kind": "parity", "n_bits": 8, "k": 2, "train_size": 40, "n_examples": 104},
    "learner": {"kind": "gp", "inducing_points": 16},
    "train": {"optimizer": {"kind": "adam", "lr": 0.05, "weight_decay": 0.0}, "steps": 20,
              "eval_every": 10, "stop": None, "batch_size": 20},
    "analysis": {"metrics": []},
}
CORE = [names.TRAIN_LOSS, names.TRAIN_ACC, names.TEST_LOSS, names.TEST_ACC, names.WEIGHT_NORM]


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def base(kind: str, **over: Any) -> dict[str, Any]:
    return deep_update(MLP if kind == "mlp" else GP, over)


def experiment(**over: Any) -> Any:
    """TINY_GROK with ``dataset``/``learner`` replaced (not merged) when given."""
    data = {k: v for k, v in TINY_GROK.items() if k not in over or k not in (
        "dataset", "learner")}
    return validate_data(deep_update(data, over))


def core(history: list[dict[str, float]]) -> list[list[float]]:
    return [[h["step"], *(h[m] for m in CORE)] for h in history]


def killed_then_resumed(exp: Any, kill_at: int, monkeypatch: pytest.MonkeyPatch) -> Any:
    with interrupted_at(monkeypatch, kill_at):
        run_experiment(exp, device="cpu")
    assert checkpoint_path(exp).exists()
    return run_experiment(exp, device="cpu", resume=True)


@pytest.mark.parametrize("kind", ["mlp", "gp"])
@pytest.mark.parametrize("filt", [GROKFAST, GROKFAST_MA], ids=["ema", "ma"])
def test_grokfast_is_applied(kind: str, filt: dict, client) -> None:  # noqa: ANN001
    plain = run_experiment(experiment(**base(kind)), device="cpu")
    fast = run_experiment(experiment(**base(kind, train={"grokfast": filt})), device="cpu")
    assert plain.status == fast.status == "FINISHED"
    a, b = core(plain.history), core(fast.history)
    assert a[0] == b[0]  # same init
    assert a[-1] != b[-1]  # the filter changed the trajectory


@pytest.mark.parametrize("kind", ["mlp", "gp"])
@pytest.mark.parametrize("filt", [None, GROKFAST, GROKFAST_MA], ids=["plain", "ema", "ma"])
def test_resume_equals_uninterrupted(
    kind: str, filt: dict | None, client, monkeypatch: pytest.MonkeyPatch  # noqa: ANN001
) -> None:
    every = 50 if kind == "mlp" else 10
    exp = experiment(**base(kind, train={"grokfast": filt},
                            tracking={"checkpoint_every": every}))
    full = run_experiment(exp, device="cpu")
    assert not checkpoint_path(exp).exists()  # deleted once finished
    resumed = killed_then_resumed(exp, every + exp.train.eval_every, monkeypatch)
    assert resumed.status == "FINISHED"
    assert resumed.history == full.history  # exactly, every evaluation


def test_early_stop_then_resume_equals_uninterrupted(
    client, monkeypatch: pytest.MonkeyPatch  # noqa: ANN001
) -> None:
    exp = experiment(train={"batch_size": 128, "grokfast": GROKFAST},
                     tracking={"checkpoint_every": 100}, analysis={"metrics": []})
    full = run_experiment(exp, device="cpu")
    assert full.summary["test_fit_step"] is not None
    stopped = full.summary["final_step"]
    assert stopped < exp.train.steps  # early stop fired
    resumed = killed_then_resumed(exp, stopped - 75, monkeypatch)
    assert resumed.history == full.history


@pytest.mark.parametrize("filt", [None, GROKFAST, GROKFAST_MA], ids=["plain", "ema", "ma"])
def test_vectorized_equals_sequential(filt: dict | None, client) -> None:  # noqa: ANN001
    exps = [experiment(**base("mlp", seed=s, train={"grokfast": filt})) for s in (0, 1, 2)]
    alone = [run_experiment(e, device="cpu") for e in exps]
    batched = run_batch(exps, "cpu")
    for a, b in zip(alone, batched, strict=True):
        assert b.status == "FINISHED"
        torch.testing.assert_close(torch.tensor(core(b.history)), torch.tensor(core(a.history)),
                                   rtol=1e-4, atol=1e-5)


def test_vectorized_resume_equals_uninterrupted(
    client, monkeypatch: pytest.MonkeyPatch  # noqa: ANN001
) -> None:
    exps = [experiment(**base("mlp", seed=s, train={"grokfast": GROKFAST},
                              tracking={"checkpoint_every": 50})) for s in (0, 1)]
    full = run_batch(exps, "cpu")
    with interrupted_at(monkeypatch, 75):
        run_batch(exps, "cpu")
    assert checkpoint_path(exps).exists()
    resumed = run_batch(exps, "cpu", resume=True)
    for a, b in zip(full, resumed, strict=True):
        assert b.status == "FINISHED" and b.history == a.history
    assert not checkpoint_path(exps).exists()


def test_gp_vectorize_is_rejected_at_validation(tmp_path: Path) -> None:
    data = {**TINY_GROK, **GP, "sweep": {"seeds": 2, "vectorize": True}}
    path = tmp_path / "gp.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(SpecError, match="sweep.vectorize: runner 'gaussian_process' does not"):
        load_sweep(path)
    data["sweep"]["vectorize"] = "auto"  # auto may fall back (and says so)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    assert len(load_sweep(path).points) == 2


def test_checkpoint_is_written_at_evaluations_and_holds_every_part(
    client, monkeypatch: pytest.MonkeyPatch  # noqa: ANN001
) -> None:
    exp = experiment(**base("mlp", train={"grokfast": GROKFAST_MA},
                            tracking={"checkpoint_every": 50}))
    with interrupted_at(monkeypatch, 75):
        run_experiment(exp, device="cpu")
    state = torch.load(checkpoint_path(exp), weights_only=True)
    assert state["step"] == 50
    assert {"learner", "optimizer", "scheduler", "grokfast", "rng", "batches", "members"} <= set(
        state)
    assert state["grokfast"]["calls"] == 50 and state["batches"][0]["perm"] is not None


#: Kumar et al.'s laziness (issue 11): alpha-scaled centred MLP trained by plain GD.
LAZY = {"learner": {"kind": "mlp", "depth": 1, "width": 64, "activation": "quadratic",
                    "output_scale": 2.0},
        "train": {"optimizer": {"kind": "gd", "lr": 0.5, "weight_decay": 0.0},
                  "batch_size": "full", "steps": 100, "eval_every": 25, "stop": None},
        "analysis": {"metrics": []}}


def test_output_scale_and_gd_resume_equals_uninterrupted(
    client, monkeypatch: pytest.MonkeyPatch  # noqa: ANN001
) -> None:
    exp = experiment(**deep_update(LAZY, {"tracking": {"checkpoint_every": 50}}))
    full = run_experiment(exp, device="cpu")
    assert full.history[0][names.TRAIN_LOSS] != full.history[-1][names.TRAIN_LOSS]  # it trains
    resumed = killed_then_resumed(exp, 75, monkeypatch)
    assert resumed.history == full.history


def test_output_scale_and_gd_vectorized_equals_sequential(client) -> None:  # noqa: ANN001
    exps = [experiment(**deep_update(LAZY, {"seed": s})) for s in (0, 1)]
    alone = [run_experiment(e, device="cpu") for e in exps]
    batched = run_batch(exps, "cpu")
    for a, b in zip(alone, batched, strict=True):
        assert b.status == "FINISHED"
        torch.testing.assert_close(torch.tensor(core(b.history)), torch.tensor(core(a.history)),
                                   rtol=1e-4, atol=1e-5)


# ------------------------------------------- train.last_batch and the papers' model fields
# (issue 17): a kept short batch must be applied by every runner, survive resume exactly and
# batch under vmap like the sequential runs; the Grokfast paper's transformer fields likewise.

KEEP = {"last_batch": "keep"}  # MLP: 480 examples / 64 leaves 32; GP below: 40 / 15 leaves 10


@pytest.mark.parametrize("kind", ["mlp", "gp"])
def test_last_batch_keep_is_applied(kind: str, client) -> None:  # noqa: ANN001
    extra = {"batch_size": 15} if kind == "gp" else {}
    drop = run_experiment(experiment(**base(kind, train=extra)), device="cpu")
    keep = run_experiment(experiment(**base(kind, train={**extra, **KEEP})), device="cpu")
    assert drop.status == keep.status == "FINISHED"
    assert core(drop.history)[0] == core(keep.history)[0]
    assert core(drop.history)[-1] != core(keep.history)[-1]


@pytest.mark.parametrize("kind", ["mlp", "gp"])
def test_last_batch_keep_resume_equals_uninterrupted(
    kind: str, client, monkeypatch: pytest.MonkeyPatch  # noqa: ANN001
) -> None:
    every = 50 if kind == "mlp" else 10
    extra = {"batch_size": 15} if kind == "gp" else {}
    exp = experiment(**base(kind, train={**extra, **KEEP, "grokfast": GROKFAST},
                            tracking={"checkpoint_every": every}))
    full = run_experiment(exp, device="cpu")
    resumed = killed_then_resumed(exp, every + exp.train.eval_every, monkeypatch)
    assert resumed.status == "FINISHED" and resumed.history == full.history


def test_last_batch_keep_vectorized_equals_sequential(client) -> None:  # noqa: ANN001
    exps = [experiment(**base("mlp", seed=s, train={**KEEP, "grokfast": GROKFAST}))
            for s in (0, 1)]
    alone = [run_experiment(e, device="cpu") for e in exps]
    for a, b in zip(alone, run_batch(exps, "cpu"), strict=True):
        torch.testing.assert_close(torch.tensor(core(b.history)), torch.tensor(core(a.history)),
                                   rtol=1e-4, atol=1e-5)


GROKFAST_MODEL = {
    "dataset": {"kind": "modular", "op": "x*y", "p": 11, "nonzero_y": True,
                "train_fraction": 0.5},
    "learner": {"kind": "transformer", "layers": 2, "d_model": 16, "heads": 2, "d_mlp": 32,
                "layer_norm": True, "activation": "gelu", "residual": "normalized",
                "operator_token": True, "output": "vocabulary", "attention_bias": True,
                "attention_init": "xavier", "position_init": "unit"},
    "train": {"steps": 40, "eval_every": 10, "stop": None, "batch_size": 16, **KEEP,
              "optimizer": {"kind": "adam", "weight_decay": 0.005}, "grokfast": GROKFAST},
    "analysis": {"metrics": []},
}


def test_paper_transformer_resume_and_vectorize(
    client, monkeypatch: pytest.MonkeyPatch  # noqa: ANN001
) -> None:
    """The Grokfast paper's model fields x last_batch keep x Grokfast x {resume, vectorize}."""
    exp = experiment(**deep_update(GROKFAST_MODEL, {"tracking": {"checkpoint_every": 10}}))
    full = run_experiment(exp, device="cpu")
    resumed = killed_then_resumed(exp, 20, monkeypatch)
    assert resumed.status == "FINISHED" and resumed.history == full.history
    exps = [experiment(**deep_update(GROKFAST_MODEL, {"seed": s})) for s in (0, 1)]
    alone = [run_experiment(e, device="cpu") for e in exps]
    for a, b in zip(alone, run_batch(exps, "cpu"), strict=True):
        torch.testing.assert_close(torch.tensor(core(b.history)), torch.tensor(core(a.history)),
                                   rtol=1e-4, atol=1e-5)


# Nanda et al.'s restricted/excluded loss with the final model's key frequencies (issue 18):
# decided at the run's end from what each evaluation kept, so the kept logits must survive a
# checkpoint, and every member of a vectorized batch must decide with its own final model.
FOURIER_FINAL = {
    "dataset": {"kind": "modular", "op": "x+y", "p": 11, "train_fraction": 0.5},
    "learner": {"kind": "mlp", "depth": 1, "width": 32, "activation": "relu"},
    "train": {"steps": 40, "eval_every": 10, "stop": None, "batch_size": 16},
    "analysis": {"metrics": ["fourier"], "intervals": {"fourier": 10},
                 "key_frequencies_at": "final"},
}


def test_final_key_frequencies_resume_and_vectorize(
    client, monkeypatch: pytest.MonkeyPatch  # noqa: ANN001
) -> None:
    exp = experiment(**deep_update(FOURIER_FINAL, {"tracking": {"checkpoint_every": 10}}))
    full = run_experiment(exp, device="cpu")
    got = [h for h in full.history if names.RESTRICTED_LOSS in h]
    assert [h["step"] for h in got] == [0, 10, 20, 30, 40]  # every evaluation, at the end
    resumed = killed_then_resumed(exp, 20, monkeypatch)
    assert resumed.status == "FINISHED" and resumed.history == full.history
    exps = [experiment(**deep_update(FOURIER_FINAL, {"seed": s})) for s in (0, 1)]
    alone = [run_experiment(e, device="cpu") for e in exps]
    for a, b in zip(alone, run_batch(exps, "cpu"), strict=True):
        for ha, hb in zip(a.history, b.history, strict=True):
            assert hb[names.RESTRICTED_LOSS] == pytest.approx(ha[names.RESTRICTED_LOSS],
                                                              rel=1e-4, abs=1e-5)
