"""``progress/pathway_distance`` and ``progress/pathway_consistency``: how a mixture of experts
routes its inputs (Li et al. 2025), from the contract's ``routing(tokens)``."""

from __future__ import annotations

from typing import Any

from grokspec.learners.contract import ROUTING, require
from grokspec.metrics import names
from grokspec.metrics.registry import MeasureDef, register


class PathwayMeasure:
    """Li et al. 2025 routing metrics on a fixed batch of training inputs."""

    def __init__(self, analysis: Any, dataset: Any, device: Any) -> None:
        n = min(analysis.pathway_batch, dataset.n_train)
        self.x = dataset.x_train[:n].to(device)
        self.y = dataset.y_train[:n].cpu()
        self.pairs = analysis.pathway_pairs  # li2025: all pairs; same_label: grokspec's

    def __call__(self, step: int, model: Any) -> dict[str, float]:
        from grokspec.metrics.pathways import (
            pathway_consistency,
            pathway_distance_by,
            pathways_of,
        )

        require(model, {ROUTING}, "pathways")
        routes, outputs = pathways_of(model.routing(self.x))
        out = {names.PATHWAY_DISTANCE: pathway_distance_by(self.pairs, routes, self.y)}
        if len(outputs) >= 2:
            out[names.PATHWAY_CONSISTENCY] = pathway_consistency(outputs)
        return out


MEASURE = register(MeasureDef(
    name="pathways", order=60, needs=frozenset({ROUTING}), interval=500,
    default_learners=frozenset({"moe_transformer"}),
    build=lambda ctx: PathwayMeasure(ctx.experiment.analysis, ctx.dataset, ctx.device),
    doc="mixture-of-experts learners only (Li et al. 2025): `progress/pathway_distance` "
    "(pairs: `pathway_pairs`) and `progress/pathway_consistency`.",
))
