"""Which experiments can train as one batched computation (batched seeds and sweeps).

Members of one batch share the architecture, data family, loop length, batch size and
evaluation cadence (they are one vmapped computation), but each may have its own:

- ``seed`` (split, init, batch order: stacked per member),
- ``train.optimizer`` ``lr``, ``weight_decay``, ``betas``, ``momentum``, ``warmup_steps``
  (per-member coefficients of :class:`grokspec.training.batched_optim.BatchedOptimizer`),
- ``train.grokfast`` settings (:class:`grokspec.training.grokfast.GradFilter`:
  per-member ``alpha`` / ``lamb``, Grokfast on or off; the filter kind and an ``ma`` window
  must agree among the members that use it).

Whether a given set of members may batch is answered in one place, :func:`why_not_batched`.

The optimizer ``kind`` must agree (the update rule is the batched computation). Everything
else a run does not train with (``name``, ``description``, ``tracking``) may differ too. This
module is torch-free, so planning a sweep stays cheap.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from grokspec.spec.experiment import Experiment
from grokspec.spec.train import grokfast_incompatible

#: Optimizer fields that may differ between the members of one batch.
PER_MEMBER_OPTIMIZER = ("lr", "weight_decay", "betas", "momentum", "warmup_steps")
#: Top-level fields that do not change the computation.
NOT_TRAINED = ("seed", "name", "description", "tracking", "paper")

T = TypeVar("T")


def batch_key(exp: Experiment) -> str:
    """Identity of what must agree for ``exp`` to share a batch (see the module doc)."""
    data = exp.resolved()
    for k in NOT_TRAINED:
        data.pop(k, None)
    train = data.get("train", {})
    for k in PER_MEMBER_OPTIMIZER:
        train.get("optimizer", {}).pop(k, None)
    train.pop("grokfast", None)  # compatibility of the filters: GrokfastSpec.batch_slot
    return json.dumps(data, sort_keys=True, default=str)


def why_not_batched(experiments: Sequence[Experiment], model: Any = None) -> str | None:
    """THE answer to "can these members train as one vmapped batch, and if not, why" (None:
    they can). Every caller asks this: the sweep launcher and ``run_batch`` before anything is
    built (``model`` None), the loop again with the first built model.

    Spec-level: the runner must honour ``vectorize``; no dropout (a different random mask
    per call); the members must agree on everything but seed, per-member optimizer settings
    and Grokfast settings (:func:`batch_key`; optimizer ``groups`` must be the same), with
    compatible Grokfast filters. Model-level
    (:func:`grokspec.training.batched.model_vectorizable`): no penalty term, dropout or
    batch norm in the built model.
    """
    from grokspec.spec.features import FEATURES, runner_class, runner_name, unsupported

    exp = experiments[0]
    name = runner_name(exp)
    try:
        cls = runner_class(name)
    except LookupError as exc:
        return str(exc)
    if unsupported(cls, {"vectorize": FEATURES["vectorize"]}):
        return f"runner '{name}' does not honour vectorize"
    if getattr(exp.learner, "dropout", 0.0):
        return "dropout draws different random masks per call"
    keys = {batch_key(e) for e in experiments}
    if len(keys) > 1:
        return "the members differ in more than seed, optimizer settings and Grokfast settings"
    why = grokfast_incompatible([e.train.grokfast for e in experiments])
    if why:
        return why
    if model is not None:
        from grokspec.training.batched import model_vectorizable

        return model_vectorizable(model)
    return None


def batch_groups(items: Sequence[T], experiment_of: Callable[[T], Any]) -> list[list[T]]:
    """Partition ``items`` into batchable groups, in order of first appearance.

    Groups are by :func:`batch_key`, then split by Grokfast slot; members with Grokfast off
    join their key's first group (they add nothing to the gradient, whatever the filter).
    """
    by_key: dict[str, list[T]] = {}
    for item in items:
        by_key.setdefault(batch_key(experiment_of(item)), []).append(item)
    groups: list[list[T]] = []
    for same in by_key.values():
        slots: dict[Any, list[T]] = {}
        for item in same:
            gf = experiment_of(item).train.grokfast
            slots.setdefault(gf.batch_slot() if gf else None, []).append(item)
        off = slots.pop(None, [])
        parts = list(slots.values()) or [[]]
        parts[0] = parts[0] + off
        groups += [g for g in parts if g]
    order = {id(item): i for i, item in enumerate(items)}
    groups = [sorted(g, key=lambda item: order[id(item)]) for g in groups]
    groups.sort(key=lambda g: order[id(g[0])])
    return groups
