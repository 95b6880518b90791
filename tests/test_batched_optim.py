"""The batched optimizer and Grokfast filter equal torch's, member by member.

Each member is a small regression model with its own data and its own hyperparameters; run
alone it uses torch.optim (+ the loop's LambdaLR warmup, + GradFilter); run batched, the
stacked parameters use BatchedOptimizer (+ GradFilter's per-member columns). Over 50 steps
every member's parameters must agree to rtol 1e-5.
"""

from __future__ import annotations

import copy

import pytest
import torch

from grokspec.spec.train import GrokfastSpec, OptimizerSpec, grokfast_incompatible
from grokspec.training.batched_optim import BatchedOptimizer, settings_differ
from grokspec.training.grokfast import GradFilter
from grokspec.training.optim import build_optimizer

STEPS = 50


def _members(n: int) -> tuple[list[dict[str, torch.Tensor]], list[tuple[torch.Tensor, ...]]]:
    g = torch.Generator().manual_seed(0)
    inits = [
        {"w": torch.randn(6, 4, generator=g), "b": torch.randn(4, generator=g)}
        for _ in range(n)
    ]
    data = [(torch.randn(32, 6, generator=g), torch.randn(32, 4, generator=g)) for _ in range(n)]
    return inits, data


def _loss(w: torch.Tensor, b: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return ((torch.tanh(x @ w + b) - y) ** 2).mean()


def _alone(init, data, spec, grokfast=None, steps=STEPS):  # noqa: ANN001, ANN202
    w = torch.nn.Parameter(init["w"].clone())
    b = torch.nn.Parameter(init["b"].clone())
    opt, sched = build_optimizer([w, b], spec)
    filt = GradFilter(grokfast, [w, b])
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        _loss(w, b, *data).backward()
        filt()
        opt.step()
        sched.step()
    return w.detach(), b.detach(), opt


def _batched_setup(inits, specs, grokfast=None):  # noqa: ANN001, ANN202
    w = torch.stack([i["w"] for i in inits]).requires_grad_()
    b = torch.stack([i["b"] for i in inits]).requires_grad_()
    opt = BatchedOptimizer([w, b], specs)
    filt = GradFilter(grokfast or [None] * len(specs), [w, b])
    return w, b, opt, filt


def _batched_steps(w, b, opt, filt, data, steps):  # noqa: ANN001, ANN202
    x = torch.stack([d[0] for d in data])
    y = torch.stack([d[1] for d in data])
    for _ in range(steps):
        opt.zero_grad()
        per = ((torch.tanh(torch.bmm(x, w) + b[:, None, :]) - y) ** 2).mean(dim=(1, 2))
        per.sum().backward()
        filt()
        opt.step()


def _check(inits, data, specs, grokfast=None):  # noqa: ANN001, ANN202
    w, b, opt, filt = _batched_setup(inits, specs, grokfast)
    _batched_steps(w, b, opt, filt, data, STEPS)
    for j, spec in enumerate(specs):
        gf = grokfast[j] if grokfast else None
        wj, bj, _ = _alone(inits[j], data[j], spec, gf)
        torch.testing.assert_close(w[j].detach(), wj, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(b[j].detach(), bj, rtol=1e-5, atol=1e-7)
        # the members really moved differently (else the test proves little)
        assert not torch.equal(w[j].detach(), inits[j]["w"])
    return w, b


GRID = [  # lr x weight decay, plus betas / warmup that differ per member
    dict(lr=1e-3, weight_decay=0.0),
    dict(lr=3e-3, weight_decay=1.0),
    dict(lr=1e-2, weight_decay=0.1, betas=(0.8, 0.99)),
    dict(lr=3e-2, weight_decay=0.5, warmup_steps=10),
]


@pytest.mark.parametrize("kind", ["adamw", "adam", "sgd", "gd"])
def test_each_member_equals_torch_alone(kind: str) -> None:
    extra = [{"momentum": m} for m in (0.0, 0.9, 0.5, 0.0)] if kind == "sgd" else [{}] * 4
    grid = GRID if kind.startswith("adam") else [  # betas are Adam's only
        {k: v for k, v in g.items() if k != "betas"} for g in GRID]
    specs = [OptimizerSpec(kind=kind, **g, **e) for g, e in zip(grid, extra, strict=True)]
    inits, data = _members(len(specs))
    w, _ = _check(inits, data, specs)
    assert not torch.allclose(w[0], w[1])


def test_identical_settings_equal_torch_over_the_stack() -> None:
    """Sanity: same settings for all = torch's optimizer over the stacked tensors."""
    specs = [OptimizerSpec(lr=3e-3, weight_decay=1.0, warmup_steps=5)] * 3
    assert not settings_differ(specs)
    assert settings_differ([specs[0], OptimizerSpec(lr=1e-3)])
    _check(*_members(3), specs)


def test_grokfast_ema_per_member() -> None:
    specs = [OptimizerSpec(lr=1e-2, weight_decay=w) for w in (0.0, 1.0, 0.1, 0.5)]
    gf = [GrokfastSpec(alpha=0.98, lamb=2.0), None, GrokfastSpec(alpha=0.9, lamb=5.0),
          GrokfastSpec(alpha=0.5, lamb=0.0)]
    _check(*_members(4), specs, gf)


def test_grokfast_ma_per_member() -> None:
    specs = [OptimizerSpec(lr=1e-2, weight_decay=0.1)] * 3
    gf = [GrokfastSpec(filter="ma", window=7, lamb=2.0), GrokfastSpec(filter="ma", window=7,
          lamb=5.0), None]
    _check(*_members(3), specs, gf)


def test_incompatible_members_are_rejected() -> None:
    ema, ma = GrokfastSpec(), GrokfastSpec(filter="ma", window=5)
    assert grokfast_incompatible([ema, None, GrokfastSpec(lamb=0.0, filter="ma")]) is None
    assert "kind or window" in grokfast_incompatible([ema, ma])
    assert "('ma', 5), ('ma', 6)" in grokfast_incompatible(
        [ma, GrokfastSpec(filter="ma", window=6)])
    with pytest.raises(ValueError, match="kind or window"):
        GradFilter([ema, ma], [torch.zeros(2, 3)])
    with pytest.raises(ValueError, match="optimizer kind"):
        BatchedOptimizer([torch.zeros(2, 3)], [OptimizerSpec(), OptimizerSpec(kind="sgd")])
    with pytest.raises(ValueError, match="member dimension"):
        BatchedOptimizer([torch.zeros(3, 3)], [OptimizerSpec(), OptimizerSpec()])


@pytest.mark.parametrize("kind", ["adamw", "sgd"])
def test_checkpoint_round_trip(kind: str) -> None:
    """20 steps, save, restore into fresh objects, 30 more = 50 uninterrupted steps."""
    mom = {"momentum": 0.9} if kind == "sgd" else {}
    grid = GRID if kind.startswith("adam") else [
        {k: v for k, v in g.items() if k != "betas"} for g in GRID]
    specs = [OptimizerSpec(kind=kind, **g, **mom) for g in grid[:3]]
    gf = [GrokfastSpec(filter="ma", window=4, lamb=lam) for lam in (1.0, 2.0, 0.0)]
    inits, data = _members(3)
    w, b, opt, filt = _batched_setup(inits, specs, gf)
    _batched_steps(w, b, opt, filt, data, 20)
    saved = copy.deepcopy(  # state_dict aliases live buffers, as torch's does
        (w.detach(), b.detach(), opt.state_dict(), filt.state_dict()))
    _batched_steps(w, b, opt, filt, data, 30)
    w2 = saved[0].clone().requires_grad_()
    b2 = saved[1].clone().requires_grad_()
    opt2 = BatchedOptimizer([w2, b2], specs)
    filt2 = GradFilter(gf, [w2, b2])
    opt2.load_state_dict(saved[2])
    filt2.load_state_dict(saved[3])
    _batched_steps(w2, b2, opt2, filt2, data, 30)
    assert torch.equal(w2, w) and torch.equal(b2, b)


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)`")
def test_member_state_resumes_alone_in_torch() -> None:
    """A member's slice of a batched checkpoint, taken mid-warmup, continues in
    torch.optim.AdamW alone (the schedule advanced to the same step)."""
    specs = [OptimizerSpec(**g) for g in GRID[1:]]
    inits, data = _members(3)
    w, b, opt, filt = _batched_setup(inits, specs)
    _batched_steps(w, b, opt, filt, data, 5)
    j = 2  # warmup_steps 10
    member = opt.member_state_dict(j)
    wj = torch.nn.Parameter(w[j].detach().clone())
    bj = torch.nn.Parameter(b[j].detach().clone())
    solo, sched = build_optimizer([wj, bj], specs[j])
    solo.load_state_dict({**solo.state_dict(), "state": member["state"]})
    for _ in range(5):
        sched.step()
    _batched_steps(w, b, opt, filt, data, 30)
    for _ in range(30):
        solo.zero_grad()
        _loss(wj, bj, *data[j]).backward()
        solo.step()
        sched.step()
    torch.testing.assert_close(wj.detach(), w[j].detach(), rtol=1e-5, atol=1e-7)
    # and back: a solo state joins a batch slot
    opt3 = BatchedOptimizer([w.detach().clone(), b.detach().clone()], specs)
    opt3.load_member_state_dict(j, opt.member_state_dict(j))
    assert opt3.steps == opt.steps
    torch.testing.assert_close(opt3.state[0]["exp_avg"][j], opt.state[0]["exp_avg"][j])
