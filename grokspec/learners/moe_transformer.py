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

from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from grokspec.datasets.base import Dataset
from grokspec.learners.contract import (
    PARAMETERS,
    PENALTY,
    PROBES,
    ROUTING,
    TOKEN_EMBEDDINGS,
    LayerRouting,
    Probe,
)
from grokspec.learners.transformer import Block, Transformer, TransformerSpec

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
        return self

    def build(self, dataset: Dataset) -> nn.Module:
        self.check_dataset(dataset)
        assert dataset.vocab_size is not None and dataset.n_classes is not None
        return MoETransformer(self, dataset.vocab_size, dataset.input_dim + 1, dataset.n_classes)


class Expert(nn.Module):
    def __init__(self, d_model: int, d_mlp: int, activation: str) -> None:
        super().__init__()
        self.mlp_in = nn.Linear(d_model, d_mlp)
        self.mlp_out = nn.Linear(d_mlp, d_model)
        self.act = nn.ReLU() if activation == "relu" else nn.GELU()

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return self.mlp_out(self.act(self.mlp_in(a)))


class MoEBlock(Block):
    """A transformer block whose MLP is a routed mixture; remembers its last routing."""

    def _build_mlp(self, spec: TransformerSpec) -> None:
        assert isinstance(spec, MoETransformerSpec)
        self.router = nn.Linear(spec.d_model, spec.experts, bias=False)
        self.experts = nn.ModuleList(
            Expert(spec.d_model, spec.d_mlp, spec.activation) for _ in range(spec.experts)
        )
        self.top_k = spec.top_k
        self.last_routing: LayerRouting | None = None
        self.last_balance: torch.Tensor | None = None

    def mlp(self, a: torch.Tensor) -> torch.Tensor:
        b, t, d = a.shape
        flat = a.reshape(b * t, d)
        probs = self.router(flat).softmax(-1)
        gates, ids = probs.topk(self.top_k, dim=-1)  # (N, k) each
        out = torch.zeros_like(flat)
        for e, expert in enumerate(self.experts):
            rows, slot = (ids == e).nonzero(as_tuple=True)
            if rows.numel():
                out.index_add_(0, rows, gates[rows, slot, None] * expert(flat[rows]))
        n_exp = len(self.experts)
        share = F.one_hot(ids, n_exp).sum(1).to(probs.dtype).mean(0) / self.top_k
        self.last_balance = n_exp * (share * probs.mean(0)).sum()
        self.last_routing = LayerRouting(
            ids.view(b, t, -1), gates.detach().view(b, t, -1), out.detach().view(b, t, d)
        )
        return out.view(b, t, d)


class MoETransformer(Transformer):
    provides = MOE_PROVIDES
    tabulate_first_position = False  # routing and balance loss are per call: one pass only

    def __init__(self, spec: MoETransformerSpec, vocab: int, seq_len: int, n_classes: int) -> None:
        super().__init__(spec, vocab, seq_len, n_classes, block=MoEBlock)
        self.balance_weight = spec.balance_loss

    def penalty(self) -> torch.Tensor:
        """Load-balancing loss of the last forward pass (the training batch's)."""
        total = sum(blk.last_balance for blk in self.blocks if blk.last_balance is not None)
        return self.balance_weight * total

    def probes(self) -> dict[str, Probe]:
        """Each expert's MLP input map, ``blocks.<i>.experts.<e>.mlp_in`` (an expert's
        probe sees only the tokens routed to it)."""
        return {
            f"blocks.{i}.experts.{e}.mlp_in": Probe(expert.mlp_in, expert.act)
            for i, blk in enumerate(self.blocks)
            for e, expert in enumerate(blk.experts)
        }

    @torch.no_grad()
    def routing(self, tokens: torch.Tensor) -> list[LayerRouting]:
        """Per layer: expert ids and gate weights (batch, positions, top_k) and the mixed
        expert output (batch, positions, d), for every position (the operand tokens, then
        ``=`` last). Runs in eval mode, all positions."""
        was_training, last_only = self.training, self.last_position_only
        self.eval()
        self.last_position_only = False
        try:
            self(tokens)
            out = [blk.last_routing for blk in self.blocks]
        finally:
            self.train(was_training)
            self.last_position_only = last_only
        return [LayerRouting(*(t.clone() for t in r)) for r in out]
