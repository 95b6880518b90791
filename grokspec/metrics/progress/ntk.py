"""``progress/ntk_change`` and ``progress/ntk_alignment``: the empirical NTK on a fixed batch of
training inputs, its change since the first evaluation and its alignment with the centred
targets (Kumar et al. 2024). Skipped, with a note, above ``analysis.ntk_max_params``."""

from __future__ import annotations

import sys
from typing import Any

from grokspec.learners.contract import PARAMETERS, require
from grokspec.metrics import names
from grokspec.metrics.registry import MeasureDef, register


class NTKMeasure:
    """Change of the empirical NTK since the first evaluation, and its target alignment."""

    def __init__(self, analysis: Any, dataset: Any, device: Any) -> None:
        from grokspec.metrics.laziness import targets_matrix

        n = min(analysis.ntk_batch, dataset.n_train)
        self.x = dataset.x_train[:n].to(device)
        self.targets = targets_matrix(dataset.y_train[:n], dataset.n_classes)
        self.m = analysis.ntk_projections
        self.max_params = analysis.ntk_max_params
        self.k0: Any = None
        self.skip: str | None = None
        self.projection: Any = None

    def __call__(self, step: int, model: Any) -> dict[str, float]:
        import torch

        from grokspec.metrics.laziness import (
            empirical_ntk,
            kernel_alignment,
            kernel_change,
            projection_matrix,
        )

        require(model, {PARAMETERS}, "ntk")
        if self.skip is not None:
            return {}
        n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
        if n_params > self.max_params:
            self.skip = f"{n_params} parameters > analysis.ntk_max_params={self.max_params}"
            print(f"grokspec: NTK measure skipped: {self.skip}", file=sys.stderr)
            return {}
        if self.projection is None and self.m > 0:
            was = model.training
            model.eval()
            try:
                with torch.no_grad():
                    n_out = model(self.x[:1]).reshape(1, -1).shape[1]
            finally:
                model.train(was)
            self.projection = projection_matrix(n_out, self.m) if self.m < n_out else None
        k = empirical_ntk(model, self.x, self.projection)
        if self.k0 is None:
            self.k0 = k  # resumed runs: the change is measured from the first evaluation
        return {
            names.NTK_CHANGE: kernel_change(self.k0, k),
            names.NTK_ALIGNMENT: kernel_alignment(k, self.targets),
        }


MEASURE = register(MeasureDef(
    name="ntk", order=50, needs=frozenset({PARAMETERS}), interval=1500,
    default_learners=frozenset({"mlp"}),
    build=lambda ctx: NTKMeasure(ctx.experiment.analysis, ctx.dataset, ctx.device),
    doc="empirical NTK on a fixed batch: `progress/ntk_change` = ||K_t - K_0||_F/||K_0||_F "
    "and `progress/ntk_alignment` = <K, Y Y^T>_F / (||K||_F ||Y Y^T||_F) with centred "
    "targets Y (Kumar et al. 2024). Skipped for models above `ntk_max_params`.",
))
