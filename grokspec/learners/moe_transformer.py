"""Mixture-of-experts transformer: top-k routed MLP experts (Shazeer et al. 2017; Fedus et al.
2022 "Switch Transformer"; Li et al. 2025).

The transformer of :mod:`grokspec.learners.transformer`, with each block's MLP replaced by
``experts`` small MLPs and a linear router. Per token the router's softmax picks the ``top_k``
experts; the block's MLP output is the sum of the chosen experts' outputs weighted by their
router probabilities (not renormalised, as in Switch and OLMoE, so the router also learns
from the task loss when ``top_k`` is 1). Only the chosen experts run on a token.

A Switch-style load-balancing loss, ``experts * sum_e f_e * P_e`` per block (``f_e``: share
of the routing assignments that went to expert e, ``P_e``: its mean router probability),
weighted by ``balance_loss``, is added to the training loss through the gradient runner's
``penalty()`` hook; without it routing tends to collapse onto one expert.

Li et al. 2025 monitor grokking through the *pathways* of training examples: the expert
choices of a sample at every layer. :meth:`MoETransformer.routing` (the learner contract's
``routing`` capability) returns them, per layer, as expert ids, gate weights and the mixed
expert output, for every position of the sequence (operands and ``=``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, model_validator

from grokspec.learners.contract import PARAMETERS, PENALTY, PROBES, ROUTING, TOKEN_EMBEDDINGS
from grokspec.learners.transformer import TransformerSpec
from grokspec.spec.base import field_error

if TYPE_CHECKING:
    from torch import nn

    from grokspec.datasets.base import Dataset


MOE_PROVIDES = frozenset({PROBES, TOKEN_EMBEDDINGS, PARAMETERS, ROUTING, PENALTY})


class MoETransformerSpec(TransformerSpec):
    """A small transformer whose MLP blocks are top-k routed experts (default: 4, top-1)."""

    kind: Literal["moe_transformer"] = "moe_transformer"  # type: ignore[assignment]
    provides: ClassVar[frozenset[str]] = MOE_PROVIDES
    experts: int = Field(default=4, ge=1, le=64, description="Experts per block.")
    top_k: int = Field(default=1, ge=1, description="Experts each token is routed to (<= experts).")
    d_mlp: int = Field(default=128, ge=1, description="Hidden width of each expert's MLP.")
    balance_loss: float = Field(
        default=0.01,
        ge=0.0,
        description="Weight of the Switch Transformer load-balancing loss (Fedus et al. 2022 "
        "use 0.01); 0 lets routing collapse freely.",
    )
    @model_validator(mode="after")
    def _k_fits(self) -> MoETransformerSpec:
        if self.top_k > self.experts:
            raise ValueError(
                f"top_k={self.top_k} exceeds experts={self.experts} (use top_k <= experts)"
            )
        if self.init == "nanda2023":
            raise field_error("init", "init: nanda2023 draws a dense MLP's weights; the experts "
                              "use nn.Linear's init (use init: torch)")
        return self

    def build(self, dataset: Dataset) -> nn.Module:
        from grokspec.learners.models.moe_transformer import MoETransformer

        self.check_dataset(dataset)
        assert dataset.vocab_size is not None and dataset.n_classes is not None
        return MoETransformer(self, dataset.vocab_size, dataset.input_dim, dataset.n_classes)


def __getattr__(name: str) -> Any:
    """The torch modules live in :mod:`grokspec.learners.models.moe_transformer`; importing one from
    here (``from grokspec.learners.moe_transformer import Expert``) still works and imports torch
    only then."""
    if name in _MODELS:
        from grokspec.learners.models import moe_transformer as models

        return getattr(models, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_MODELS = frozenset({
    "Expert", "MoEBlock", "MoETransformer"
})
