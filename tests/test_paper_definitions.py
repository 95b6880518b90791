"""The papers' own definitions, each against an oracle computed here, independently:
Liu et al.'s phase rule, plain gradient descent, Miller et al.'s concealment bits, and Kumar
et al.'s alpha-scaled centred network. (Measures: test_paper_definitions_measures.py.)"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

from grokspec.datasets.modular import ModularSpec
from grokspec.datasets.parity import ParitySpec
from grokspec.datasets.teacher import TeacherSpec
from grokspec.learners.mlp import MLPSpec
from grokspec.metrics.phases import liu2022_phase, phase_label, phase_of
from grokspec.metrics.spec import AnalysisSpec
from grokspec.metrics.summary import analyse
from grokspec.spec.loading import SpecError, load_spec
from grokspec.spec.train import TrainSpec

# ------------------------------------------------------------------- Liu et al. 2022 phases

LABELS = ["comprehension", "grokking", "memorization", "confusion"]


def liu_notebook(train_iter: np.ndarray, test_iter: np.ndarray) -> list[str]:
    """The masks of grokking-squared's simple_phase_diagram.ipynb, transcribed: inputs are
    their step indices (never reached = compute_budget - 1)."""
    budget, threshold = 1e5, 1e3
    both = (train_iter < budget - 1) * (test_iter < budget - 1)
    comp = both * ((test_iter - train_iter) < threshold)
    grok = both * ((test_iter - train_iter) > threshold)
    mem = (train_iter < budget - 1) * (test_iter == budget - 1)
    conf = (train_iter == budget - 1) * (test_iter == budget - 1)
    code = comp * 0 + grok * 1 + mem * 2 + conf * 3
    return [LABELS[int(c)] for c in code]


def to_liu_iter(step: int | None, budget: int = 100_000) -> int:
    """grokspec's fit step (updates) -> Liu's loop index (accuracy after ``iter + 1`` updates);
    not reached within the budget -> the last index, as their ``train()`` records it."""
    return budget - 1 if step is None or step >= budget else step - 1


def test_liu2022_phase_matches_their_notebook_masks() -> None:
    steps = [1, 50, 99, 100, 999, 1000, 1001, 1100, 2000, 50_000, 99_999, 100_000, None]
    cases = list(itertools.product(steps, steps))
    train = np.array([to_liu_iter(a) for a, _ in cases])
    test = np.array([to_liu_iter(b) for _, b in cases])
    want = liu_notebook(train, test)
    got = [liu2022_phase(a, b) for a, b in cases]
    assert got == want
    # The edges their masks leave to the array's zero (comprehension): a delay of exactly
    # 1000 steps, and a test fit without a train fit.
    assert liu2022_phase(100, 1100) == "comprehension" and liu2022_phase(100, 1101) == "grokking"
    assert liu2022_phase(None, 500) == "comprehension"
    assert liu2022_phase(100_000, None) == "confusion"  # a fit at the last step is too late


def history(train_at: dict[int, float], test_at: dict[int, float], last: int, every: int):
    """Step-wise accuracies that jump to the given values at the given steps."""
    steps = list(range(0, last + 1, every))

    def acc(at: dict[int, float], s: int) -> float:
        return max([v for k, v in at.items() if k <= s], default=0.0)

    return steps, [acc(train_at, s) for s in steps], [acc(test_at, s) for s in steps]


def test_liu2022_reads_its_own_threshold_not_fit_threshold() -> None:
    # Train: 0.9 at 100, 0.99 at 200. Test: 0.9 at 900, 0.99 at 1000. Liu (0.9): delay 800
    # steps -> comprehension; grokspec at 0.99: ratio 5 over 32 evaluations -> grokking.
    steps, tr, te = history({100: 0.9, 200: 0.99}, {900: 0.9, 1000: 0.99}, 3000, 25)
    phase, detail = phase_of("liu2022", steps, tr, te, fit_threshold=0.99)
    assert phase == "comprehension"
    assert (detail["train_fit_step"], detail["test_fit_step"]) == (100, 900)
    assert detail["fit_accuracy"] == 0.9
    assert phase_of("grokspec", steps, tr, te, fit_threshold=0.99)[0] == "grokking"
    # Same history, delay past 1000 steps at 0.9: grokking under Liu's rule.
    steps, tr, te = history({100: 0.9}, {1200: 0.9}, 3000, 25)
    assert phase_of("liu2022", steps, tr, te, fit_threshold=0.99)[0] == "grokking"
    assert phase_of("liu2022", steps, tr, te, fit_threshold=0.5)[0] == "grokking"


def test_grokspec_rule_is_kept_under_its_name() -> None:
    steps, tr, te = history({40: 1.0}, {200: 1.0}, 400, 20)
    phase, detail = phase_of("grokspec", steps, tr, te, 0.99, AnalysisSpec().phase)
    assert phase == phase_label(40, 200, 3.0, 4, detail["evals_between"]) == "grokking"
    with pytest.raises(ValueError, match="unknown phase rule"):
        phase_of("liu", steps, tr, te, 0.99)  # type: ignore[arg-type]


def test_summary_records_the_rule_and_liu_is_the_default() -> None:
    steps, tr, te = history({100: 1.0}, {900: 1.0}, 2000, 25)
    hist = [{"step": s, "train/acc": a, "test/acc": b}
            for s, a, b in zip(steps, tr, te, strict=True)]
    default = analyse(hist, 0.99, AnalysisSpec())
    assert (default["phase"], default["phase_rule"]) == ("comprehension", "liu2022")
    own = analyse(hist, 0.99, AnalysisSpec(phase_rule="grokspec"))
    assert (own["phase"], own["phase_rule"]) == ("grokking", "grokspec")
    assert own["phase_detail"]["grokking_min_ratio"] == 3.0


SPEC = """\
name: t
dataset: {kind: modular, p: 11}
learner: {kind: mlp, width: 8}
train: {steps: 10}
analysis:
"""


def problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    return [str(p) for p in info.value.problems]


def test_unknown_phase_rule_and_unused_thresholds_fail_validation(tmp_path: Path) -> None:
    (msg,) = problems(tmp_path, SPEC + "  phase_rule: liu\n")
    assert "spec.yaml:6:" in msg and "analysis.phase_rule" in msg and "liu2022" in msg
    (msg,) = problems(tmp_path, SPEC + "  phase: {grokking_min_ratio: 2}\n")
    assert "spec.yaml:6:" in msg and "analysis.phase" in msg and "phase_rule: grokspec" in msg
    path = tmp_path / "ok.yaml"
    path.write_text(SPEC + "  phase_rule: grokspec\n  phase: {grokking_min_ratio: 2}\n")
    assert load_spec(path).analysis.phase.grokking_min_ratio == 2
    # The other definitions: unknown names, and a tolerance Fan et al.'s rank does not use.
    for line in ("key_frequencies: nanda", "rank_definition: fan", "pathway_pairs: all"):
        (msg,) = problems(tmp_path, SPEC + f"  {line}\n")
        assert "spec.yaml:6:" in msg and f"analysis.{line.split(':')[0]}" in msg
    (msg,) = problems(tmp_path, SPEC + "  rank_tolerance: 1.0e-4\n")
    assert "spec.yaml:6:" in msg and "centred_preactivation" in msg


# ------------------------------------------------------------------------- gradient descent


def test_gd_is_plain_full_batch_gradient_descent(tmp_path: Path) -> None:
    from grokspec.training.optim import build_optimizer  # noqa: PLC0415 - torch side

    spec = TrainSpec(optimizer={"kind": "gd", "lr": 0.1, "weight_decay": 0.0})
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt, sched = build_optimizer([w], spec.optimizer)
    expected = w.detach().clone()
    for _ in range(3):  # theta <- theta - lr * grad, grad of sum(w^3) = 3 w^2
        opt.zero_grad()
        (w**3).sum().backward()
        expected = expected - 0.1 * 3 * expected**2
        opt.step()
        sched.step()
    assert torch.allclose(w.detach(), expected)
    for bad in ("batch_size: 32", "optimizer: {kind: gd, momentum: 0.9}",
                "optimizer: {kind: gd, betas: [0.9, 0.9]}"):
        extra = "" if bad.startswith("optimizer") else ", optimizer: {kind: gd}"
        text = SPEC.replace("train: {steps: 10}", f"train: {{steps: 10, {bad}{extra}}}")
        (msg,) = problems(tmp_path, text.replace("analysis:\n", ""))
        assert "spec.yaml:4:" in msg and "gd" in msg


# ------------------------------------------------------------ Miller et al. 2023 concealment


def test_concealment_default_is_random_bits_for_tokens_and_features() -> None:
    plain = ModularSpec(p=13).build(0)
    ds = ModularSpec(p=13, spurious_dims={"count": 40}).build(0)
    extra = torch.cat([ds.x_train, ds.x_test])[:, 2:]
    assert set(extra.unique().tolist()) == {0, 1}  # Miller's randint(0, 2), as tokens 0/1
    assert abs(float(extra.float().mean()) - 0.5) < 0.02  # fair bits (~6760 draws)
    assert torch.equal(ds.x_train[:, :2], plain.x_train) and torch.equal(ds.y_train, plain.y_train)
    old = ModularSpec(p=13, spurious_dims={"count": 40, "distribution": "uniform"}).build(0)
    assert len(old.x_train[:, 2:].unique()) == 13  # the earlier variant: any vocabulary token
    feats = ParitySpec(n_bits=6, k=2, n_examples=64, train_size=32,
                       spurious_dims={"count": 30, "scale": 1.0}).build(0)
    assert set(feats.x_train[:, 6:].unique().tolist()) == {0.0, 1.0}
    with pytest.raises(ValueError, match="'binary'"):
        ModularSpec(p=13, spurious_dims={"count": 2, "distribution": "gaussian"})


# ---------------------------------------------------------- Kumar et al. 2024 lazy scaling


def teacher_fit(alpha: float, steps: int = 300) -> dict[str, float]:
    """Full-batch GD on a tiny teacher task: |f| at init, train loss before and after, and
    the relative parameter movement ||theta - theta_0|| / ||theta_0||."""
    ds = TeacherSpec(dim=8, n_examples=96, train_size=48).build(0)
    torch.manual_seed(0)
    model = MLPSpec(width=64, depth=1, activation="tanh", output_scale=alpha).build(ds)
    theta0 = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    y = ds.y_train.float()

    def loss() -> torch.Tensor:
        return torch.nn.functional.mse_loss(model(ds.x_train), y)

    out = {"f0": float(model(ds.x_train).detach().abs().max()), "loss0": float(loss().detach())}
    opt = torch.optim.SGD(model.parameters(), lr=0.05)  # plain GD on the whole training set
    for _ in range(steps):
        opt.zero_grad()
        loss().backward()
        opt.step()
    theta = torch.cat([p.detach().flatten() for p in model.parameters()])
    out["loss"] = float(loss().detach())
    out["movement"] = float((theta - theta0).norm() / theta0.norm())
    return out


def test_alpha_scaled_centred_network_is_zero_at_init_and_lazy_for_large_alpha() -> None:
    lazy, rich = teacher_fit(100.0), teacher_fit(0.1)
    assert lazy["f0"] == 0.0 and rich["f0"] == 0.0  # centred: alpha (net - net_0) = 0 at init
    # Both learn (the 1/alpha^2 loss scaling keeps the function-space rate comparable), but
    # the parameters barely move when alpha is large (lazy) and move a lot when it is small
    # (rich): movement ~ 1/alpha.
    assert lazy["loss"] < 0.8 * lazy["loss0"] and rich["loss"] < 0.8 * rich["loss0"]
    assert lazy["movement"] < 1e-2 < rich["movement"]
    assert rich["movement"] / lazy["movement"] > 100


def test_alpha_scaled_gradient_is_that_of_the_loss_over_alpha_squared() -> None:
    ds = ModularSpec(p=7).build(0)
    torch.manual_seed(1)
    model = MLPSpec(width=8, output_scale=3.0).build(ds)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))  # leave the initial point
    x, y = ds.x_train[:10], ds.y_train[:10]
    loss = torch.nn.functional.cross_entropy(model(x), y)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    # Oracle: the same function written out directly, loss divided by alpha^2.
    names = [n for n, _ in model.named_parameters()]
    theta0 = {n: getattr(model, f"theta0_{i}") for i, n in enumerate(names)}
    params = dict(model.named_parameters())

    def plain(state: dict) -> torch.Tensor:
        w1, b1 = state["net.0.table"], state["net.0.bias"]
        h = (w1[x[:, 0]] + w1[x[:, 1] + 7] + b1).relu()
        return h @ state["net.2.weight"].T + state["net.2.bias"]

    f = 3.0 * (plain(params) - plain(theta0).detach())
    ref = torch.autograd.grad(torch.nn.functional.cross_entropy(f, y) / 9.0, list(params.values()))
    assert float(loss) == pytest.approx(float(torch.nn.functional.cross_entropy(f, y)), rel=1e-5)
    for g, r in zip(grads, ref, strict=True):
        assert torch.allclose(g, r, atol=1e-7)


def test_alpha_scaled_network_batches_across_seeds_and_checkpoints() -> None:
    """theta_0 lives in buffers: stacked per member when seeds train as one vmapped batch,
    saved with the state dict (a resumed run centres on the same net_0)."""
    import copy  # noqa: PLC0415

    from torch.func import functional_call, stack_module_state, vmap  # noqa: PLC0415

    ds = ModularSpec(p=11).build(0)
    models = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        models.append(MLPSpec(width=16, output_scale=4.0).build(ds))
    with torch.no_grad():
        for i, m in enumerate(models):
            for p in m.parameters():
                p.add_(0.01 * (i + 1))  # each member away from its own theta_0
    params, buffers = stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta")
    x = ds.x_train[:5]
    out = vmap(lambda p, b: functional_call(base, (p, b), (x,)))(params, buffers)
    with torch.no_grad():
        ref = torch.stack([m(x) for m in models])
        assert torch.allclose(out, ref, atol=1e-6) and float(ref.abs().max()) > 0
        torch.manual_seed(5)
        other = MLPSpec(width=16, output_scale=4.0).build(ds)
        other.load_state_dict(models[1].state_dict())
        assert torch.equal(other(x), models[1](x))
    assert "theta0_0" in models[0].state_dict()
    assert not any("theta0" in n for n, _ in models[0].named_parameters())


def test_a_run_tags_phase_and_rule_and_trains_kumar_style(client) -> None:  # noqa: ANN001
    """End to end: an alpha-scaled MLP trained by gd logs grok.phase with grok.phase_rule,
    and summary.json says which fit steps the rule read."""
    import json  # noqa: PLC0415

    from grokspec.metrics import names  # noqa: PLC0415
    from grokspec.run import run_experiment  # noqa: PLC0415
    from grokspec.spec.loading import validate_data  # noqa: PLC0415

    exp = validate_data({
        "name": "kumar-style", "seed": 0,
        "dataset": {"kind": "teacher", "target": "polynomial", "dim": 10, "n_examples": 200,
                    "train_size": 80, "acc_tolerance": 0.25},
        "learner": {"kind": "mlp", "width": 32, "activation": "quadratic", "output_scale": 0.5},
        "train": {"optimizer": {"kind": "gd", "lr": 0.01, "weight_decay": 0.0}, "steps": 60,
                  "eval_every": 20},
        "analysis": {"metrics": ["param_movement"]},
        "tracking": {"experiment": "tests"},
    })
    result = run_experiment(exp, device="cpu")
    assert result.status == "FINISHED"
    run = client.get_run(result.run_id)
    assert run.data.tags[names.PHASE_RULE_TAG] == "liu2022"
    assert run.data.tags[names.PHASE_TAG] == result.summary["phase"]
    assert run.data.metrics[names.PARAM_MOVEMENT] > 0
    hist = client.get_metric_history(result.run_id, names.TRAIN_LOSS)
    assert hist[-1].value < hist[0].value  # gd on the centred network learns
    path = client.download_artifacts(result.run_id, "summary.json")
    detail = json.loads(open(path).read())["phase_detail"]
    assert detail["rule"] == "liu2022" and detail["fit_accuracy"] == 0.9
