"""The Fourier progress measures on modular data (Nanda et al. 2023): sparsity of the operand
embeddings, key frequencies, restricted and excluded loss. The computation carries the most
state of any measure and lives in :mod:`grokspec.metrics.fourier_measure` (numbers:
:mod:`grokspec.metrics.fourier`); this module declares it."""

from __future__ import annotations

from typing import Any

from grokspec.learners.contract import TOKEN_EMBEDDINGS
from grokspec.metrics.registry import Context, MeasureDef, register


def modular_only(dataset: Any) -> str | None:
    if getattr(dataset, "kind", None) != "modular":
        return "needs a modular dataset (kind: modular)"
    return None


def build(ctx: Context) -> Any:
    from grokspec.metrics.fourier_measure import FourierMeasure

    return FourierMeasure(ctx.experiment, ctx.dataset, ctx.device, ctx.capture)


MEASURE = register(MeasureDef(
    name="fourier", order=20, build=build, needs=frozenset({TOKEN_EMBEDDINGS}),
    interval=500, applies=modular_only,
    doc="modular datasets only (Nanda et al. 2023): `progress/fourier_sparsity` (fraction of "
    "the operand embeddings' squared norm in the top-k frequencies), the key frequencies "
    "`progress/fourier_key_freq/<i>` (definition: `key_frequencies`), and for x+y / x-y "
    "`progress/restricted_loss` and `progress/excluded_loss`.",
))
