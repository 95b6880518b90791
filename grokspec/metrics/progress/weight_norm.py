"""``weights/l2_norm/<module>``: the L2 norm of each parameter group (Power et al. 2022;
Liu et al. 2023, Omnigrok). The total, ``weights/l2_norm``, is a uniform metric of every run."""

from __future__ import annotations

from typing import Any

from grokspec.learners.contract import PARAMETERS, require
from grokspec.metrics import names
from grokspec.metrics.registry import Context, MeasureDef, register


def group_norms(model: Any) -> dict[str, float]:
    """L2 norm per parameter group: the module that owns the parameter (``net.0``, ``embed``),
    or the parameter itself when it sits on the root module (``pos``)."""
    import torch

    sq: dict[str, float] = {}
    with torch.no_grad():
        for name, p in model.named_parameters():
            group = name.rsplit(".", 1)[0] if "." in name else name
            sq[group] = sq.get(group, 0.0) + float((p.detach().double() ** 2).sum())
    return {names.WEIGHT_NORM_GROUP.format(group=g): v**0.5 for g, v in sq.items()}


def measure(step: int, model: Any) -> dict[str, float]:
    require(model, {PARAMETERS}, "weight_norm")
    return group_norms(model)


def build(ctx: Context) -> Any:
    return measure


MEASURE = register(MeasureDef(
    name="weight_norm", order=10, build=build, needs=frozenset({PARAMETERS}),
    doc="L2 norm of each parameter group, `weights/l2_norm/<module>` (Power et al. 2022; Liu "
    "et al. 2023 Omnigrok). The total is always logged as `weights/l2_norm`.",
))
