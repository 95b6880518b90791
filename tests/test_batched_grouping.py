"""Which experiments may share a batch (grokspec.training.grouping)."""

from __future__ import annotations

from grokspec.training.grouping import batch_groups, batch_key, why_not_batched
from tests.helpers import experiment


def _opt(**kw: object) -> dict:
    return {"optimizer": {"kind": "adamw", "lr": 3e-3, "weight_decay": 1.0, **kw}}


def test_seed_lr_wd_betas_warmup_and_grokfast_may_differ() -> None:
    base = experiment()
    others = [
        experiment(seed=5),
        experiment(train=_opt(lr=1e-2)),
        experiment(train=_opt(weight_decay=0.1, betas=[0.8, 0.99], warmup_steps=10)),
        experiment(train={"grokfast": {"alpha": 0.9, "lamb": 5.0}}),
        experiment(name="renamed", tracking={"experiment": "elsewhere"}),
    ]
    for other in others:
        assert batch_key(other) == batch_key(base)
        assert why_not_batched([base, other]) is None


def test_what_the_computation_depends_on_must_agree() -> None:
    base = experiment()
    others = [
        experiment(train={"batch_size": 64}),
        experiment(train={"steps": 100}),
        experiment(train=_opt(kind="sgd")),
        experiment(learner={"width": 128}),
        experiment(dataset={"p": 23}),
    ]
    for other in others:
        assert batch_key(other) != batch_key(base)
        assert "differ" in why_not_batched([base, other])


def test_grokfast_filters_must_agree_among_members_that_use_them() -> None:
    ema = experiment(train={"grokfast": {"alpha": 0.9, "lamb": 2.0}})
    ma5 = experiment(train={"grokfast": {"filter": "ma", "window": 5}})
    ma6 = experiment(train={"grokfast": {"filter": "ma", "window": 6}})
    off = experiment(train={"grokfast": {"lamb": 0.0}})
    assert why_not_batched([ema, experiment(), off]) is None
    assert "Grokfast" in why_not_batched([ema, ma5])
    assert "Grokfast" in why_not_batched([ma5, ma6])
    # grouping: off members join the first filter group of their key; order is kept
    items = [experiment(), ma5, ema, ma6, experiment(seed=3)]
    groups = batch_groups(items, lambda e: e)
    assert [[items.index(e) for e in g] for g in groups] == [[0, 1, 4], [2], [3]]


def test_groups_gather_non_adjacent_points_in_first_appearance_order() -> None:
    """An lr x width grid: each width's lrs form one group, wherever they sit in the list."""
    items = [experiment(learner={"width": w}, train=_opt(lr=lr))
             for lr in (1e-3, 3e-3) for w in (64, 128)]
    groups = batch_groups(items, lambda e: e)
    assert [[items.index(e) for e in g] for g in groups] == [[0, 2], [1, 3]]
