"""``progress/feature_rank/<layer>``: the rank of each hidden layer's features on a fixed batch
of training inputs (Fan et al. 2024; definition: ``analysis.rank_definition``)."""

from __future__ import annotations

from typing import Any

from grokspec.learners.contract import PROBES, require
from grokspec.metrics import names
from grokspec.metrics.registry import MeasureDef, register


def preactivation_layers(model: Any) -> dict[str, Any]:
    """The model's hidden layers' pre-activation probe points, by name (the contract's
    ``probes()``)."""
    require(model, {PROBES}, "feature_rank")
    return {name: probe.pre for name, probe in model.probes().items()}


class FeatureRank:
    """``analysis.rank_definition``: ``fan2024`` reads each layer's post-activations (Fan et
    al. 2024), ``centred_preactivation`` its pre-activations (:mod:`grokspec.metrics.rank`).
    The activations come from the evaluation's forward pass (the shared capture)."""

    def __init__(self, analysis: Any, dataset: Any, device: Any, capture: Any = None) -> None:
        from grokspec.metrics.capture import EvalCapture

        self.x = dataset.x_train[: min(analysis.rank_batch, dataset.n_train)].to(device)
        self.tol = analysis.rank_tolerance
        self.fan = analysis.rank_definition == "fan2024"
        self.kind = "post" if self.fan else "pre"
        self.capture = capture if capture is not None else EvalCapture()
        self.capture.want_probes(self.kind, len(self.x))

    def __call__(self, step: int, model: Any) -> dict[str, float]:
        from grokspec.metrics.rank import fan2024_rank, numerical_rank

        require(model, {PROBES}, "feature_rank")
        rec = self.capture.take(model, self.x, step)
        out = {}
        for name in model.probes():
            h = rec.probe(name, self.kind, len(self.x))  # its own rows, whatever else runs
            if h is None:
                continue
            h = h.reshape(-1, h.shape[-1])
            if h.shape[0] < 2:
                continue
            rank = fan2024_rank(h) if self.fan else numerical_rank(h, self.tol)
            out[names.FEATURE_RANK.format(layer=name)] = float(rank)
        return out


MEASURE = register(MeasureDef(
    name="feature_rank", order=30, needs=frozenset({PROBES}), interval=500,
    default_learners=frozenset({"mlp", "transformer", "moe_transformer"}),
    build=lambda ctx: FeatureRank(ctx.experiment.analysis, ctx.dataset, ctx.device,
                                  ctx.capture),
    doc="rank of each hidden layer's features on a fixed batch of training inputs, "
    "`progress/feature_rank/<layer>` (Fan et al. 2024; definition: `rank_definition`).",
))
