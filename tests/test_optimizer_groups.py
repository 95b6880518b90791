"""Per-parameter-group optimizer settings (``train.optimizer.groups``) and Liu et al. 2022's
toy pieces (``dataset kind: addition``, ``input_encoding: embedding_sum``).

A group is applied (its parameters move at its own rate) or rejected at validation; every
cell of the matrix it meets agrees with its reference: one run, N seeds batched (torch's
optimizer over stacked tensors), an lr x wd grid batched (the per-member optimizer's group
columns), and resume.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from grokspec.run import run_batch, run_experiment
from grokspec.spec.loading import SpecError, validate_data
from grokspec.sweep.expand import load_sweep
from grokspec.sweep.launch import run_sweep
from grokspec.training.checkpoint import checkpoint_path
from tests.helpers import interrupted_at

TOY: dict[str, Any] = {
    "name": "toy",
    "seed": 0,
    "dataset": {"kind": "addition", "p": 10, "train_size": 45},
    "learner": {"kind": "mlp", "input_encoding": "embedding_sum", "embed_dim": 1, "depth": 2,
                "width": 32, "activation": "tanh"},
    "train": {"optimizer": {"kind": "adamw", "lr": 1e-3, "weight_decay": 0.0,
                            "groups": {"embedding": {"lr": 1e-2, "weight_decay": 0.0}}},
              "loss": "mse", "steps": 60, "eval_every": 20, "batch_size": "full"},
    "analysis": {"metrics": []},
}
CORE = ("train/loss", "train/acc", "test/loss", "test/acc")


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def toy(**train: Any) -> Any:
    data = yaml.safe_load(yaml.safe_dump(TOY))
    data["train"].update(train)
    return validate_data(data)


def core(history: list[dict[str, float]]) -> list[list[float]]:
    return [[h["step"], *(h[m] for m in CORE)] for h in history]


def test_addition_pool_is_the_unordered_integer_sums() -> None:
    data = toy().dataset.build(0)
    x = torch.cat([data.x_train, data.x_test])
    y = torch.cat([data.y_train, data.y_test])
    assert len(x) == 55 and data.n_train == 45 and data.n_classes == 19
    assert bool((x[:, 0] <= x[:, 1]).all())  # each unordered pair once
    assert torch.equal(y, x.sum(1))  # the integer sum, no modulus
    assert len({tuple(r) for r in x.tolist()}) == 55


def test_embedding_sum_reads_the_sum_of_the_two_representations() -> None:
    exp = toy()
    data = exp.dataset.build(0)
    torch.manual_seed(0)
    model = exp.learner.build(data)
    assert tuple(model.embed.weight.shape) == (10, 1)
    assert model.net[0].in_features == 1  # E_x + E_y, not their concatenation
    x = torch.tensor([[2, 7], [7, 2], [4, 5]])
    out = model(x)
    torch.testing.assert_close(out[0], out[1])  # order-blind
    with torch.no_grad():  # 2 + 7 and 4 + 5 coincide only when E is linear in the symbol
        model.embed.weight.copy_(torch.arange(10.0).unsqueeze(1))
        torch.testing.assert_close(model(x)[0], model(x)[2])


def test_a_group_the_learner_lacks_is_rejected_with_the_valid_ones() -> None:
    with pytest.raises(SpecError) as err:
        toy(optimizer={"lr": 1e-3, "groups": {"encoder": {"lr": 1e-2}}})
    msg = str(err.value)
    assert "train.optimizer.groups.encoder" in msg and "embedding" in msg and "decoder" in msg
    one_hot = yaml.safe_load(yaml.safe_dump(TOY))
    one_hot["learner"] = {"kind": "mlp", "width": 32}
    with pytest.raises(SpecError, match="has no parameter group 'embedding'"):
        validate_data(one_hot)
    with pytest.raises(SpecError, match="changes nothing"):
        toy(optimizer={"lr": 1e-3, "groups": {"embedding": {}}})


def test_embedding_fields_on_feature_data_are_rejected() -> None:
    data = yaml.safe_load(yaml.safe_dump(TOY))
    data["dataset"] = {"kind": "parity", "n_bits": 12, "k": 2}
    data["train"]["optimizer"].pop("groups")
    with pytest.raises(SpecError, match="gives feature vectors"):
        validate_data(data)


def test_the_group_setting_is_applied(client) -> None:  # noqa: ANN001
    """The embedding group's own lr moves the run; the decoder keeps the optimizer's lr."""
    fast = run_experiment(toy(), device="cpu")
    same = run_experiment(toy(optimizer={"kind": "adamw", "lr": 1e-3, "weight_decay": 0.0,
                                         "groups": {"embedding": {"lr": 1e-3}}}), device="cpu")
    plain = run_experiment(toy(optimizer={"kind": "adamw", "lr": 1e-3, "weight_decay": 0.0}),
                           device="cpu")
    assert core(same.history) == core(plain.history)  # a group at the base lr changes nothing
    assert core(fast.history)[0] == core(plain.history)[0]
    assert core(fast.history)[-1] != core(plain.history)[-1]
    frozen = toy(optimizer={"kind": "adamw", "lr": 1e-3, "weight_decay": 0.0,
                            "groups": {"decoder": {"lr": 1e-12}}})
    torch.manual_seed(0)
    before = frozen.learner.build(frozen.dataset.build(0)).net[0].weight.detach().clone()
    after = run_experiment(frozen, device="cpu").artifacts["model"].net[0].weight
    torch.testing.assert_close(after, before, rtol=0, atol=1e-6)  # the decoder barely moved


def test_groups_seeds_batched_equal_alone(client) -> None:  # noqa: ANN001
    exps = [validate_data({**yaml.safe_load(yaml.safe_dump(TOY)), "seed": s}) for s in (0, 1)]
    alone = [run_experiment(e, device="cpu") for e in exps]
    for a, b in zip(alone, run_batch(exps, "cpu"), strict=True):
        torch.testing.assert_close(torch.tensor(core(b.history)), torch.tensor(core(a.history)),
                                   rtol=1e-4, atol=1e-5)


def test_groups_grid_batched_equals_each_point_alone(tmp_path: Path, client) -> None:  # noqa: ANN001
    def grid(vectorize: bool) -> Any:
        spec = {**TOY, "sweep": {"grid": {"train.optimizer.lr": [1e-3, 3e-3],
                                          "train.optimizer.weight_decay": [0.0, 1.0]},
                                 "vectorize": vectorize}}
        path = tmp_path / f"grid-{vectorize}.yaml"
        path.write_text(yaml.safe_dump(spec))
        return run_sweep(load_sweep(path), device="cpu", echo=lambda m: None)

    batched, alone = grid(True), grid(False)
    finals = []
    for rb, ra in zip(batched.table, alone.table, strict=True):
        hb = {m: [x.value for x in client.get_metric_history(rb["run_id"], m)] for m in CORE}
        ha = {m: [x.value for x in client.get_metric_history(ra["run_id"], m)] for m in CORE}
        for m in CORE:
            assert hb[m] == pytest.approx(ha[m], rel=1e-4, abs=1e-6), (rb, m)
        finals.append(hb["train/loss"][-1])
    assert len({round(f, 5) for f in finals}) == 4


def test_groups_resume_equals_uninterrupted(client, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    data = yaml.safe_load(yaml.safe_dump(TOY))
    data["tracking"] = {"checkpoint_every": 20}
    exp = validate_data(data)
    full = run_experiment(exp, device="cpu")
    with interrupted_at(monkeypatch, 40):
        run_experiment(exp, device="cpu")
    assert checkpoint_path(exp).exists()
    resumed = run_experiment(exp, device="cpu", resume=True)
    assert resumed.status == "FINISHED" and resumed.history == full.history


def test_empty_groups_keep_the_old_spec_hash() -> None:
    """Runs recorded before the field existed are found again by their hash: the hash of a
    spec without groups is the hash of its resolved data without the key."""
    import hashlib
    import json

    data = yaml.safe_load(yaml.safe_dump(TOY))
    data["train"]["optimizer"].pop("groups")
    exp = validate_data(data)
    resolved = exp.resolved()
    assert resolved["train"]["optimizer"]["groups"] == {}
    for k in ("tracking", "description", "analysis", "paper"):
        resolved.pop(k, None)
    del resolved["train"]["optimizer"]["groups"]
    del resolved["train"]["train_metrics"]  # logging only: not part of the identity either
    blob = json.dumps(resolved, sort_keys=True, separators=(",", ":"))
    assert exp.spec_hash() == hashlib.sha256(blob.encode()).hexdigest()[:16]
    assert toy().spec_hash() != exp.spec_hash()  # a group set is part of the identity


def test_a_transformer_unembedding_to_tokens_is_rejected_on_sums() -> None:
    """Integer sums reach 2p - 2: more classes than tokens. Rejected at validation (it used
    to fail only when the model was built, after the run had started)."""
    data = yaml.safe_load(yaml.safe_dump(TOY))
    data["learner"] = {"kind": "transformer", "output": "vocabulary", "d_model": 16,
                       "heads": 2, "d_mlp": 32}
    data["train"]["optimizer"].pop("groups")
    with pytest.raises(SpecError, match=r"learner.output: output: vocabulary .* 'addition'"):
        validate_data(data)
    data["learner"]["output"] = "classes"
    validate_data(data)


def test_groups_with_grokfast_and_batch_metrics_grid_batched_equals_alone(
    tmp_path: Path, client  # noqa: ANN001
) -> None:
    """The matrix cell groups x Grokfast x train_metrics: batches x vectorize."""
    def grid(vectorize: bool) -> Any:
        spec = yaml.safe_load(yaml.safe_dump(TOY))
        spec["train"].update({"grokfast": {"alpha": 0.9, "lamb": 1.0},
                              "train_metrics": "batches"})
        spec["sweep"] = {"grid": {"train.optimizer.lr": [1e-3, 3e-3]}, "vectorize": vectorize}
        path = tmp_path / f"gf-{vectorize}.yaml"
        path.write_text(yaml.safe_dump(spec))
        return run_sweep(load_sweep(path), device="cpu", echo=lambda m: None)

    batched, alone = grid(True), grid(False)
    for rb, ra in zip(batched.table, alone.table, strict=True):
        for m in CORE:
            hb = [x.value for x in client.get_metric_history(rb["run_id"], m)]
            ha = [x.value for x in client.get_metric_history(ra["run_id"], m)]
            assert hb == pytest.approx(ha, rel=1e-4, abs=1e-6), (rb, m)
