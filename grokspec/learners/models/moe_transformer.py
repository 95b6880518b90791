"""The torch modules of :mod:`grokspec.learners.moe_transformer` (its spec is there: validating a
spec must not import torch)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from grokspec.learners.contract import (
    PARAMETERS,
    PENALTY,
    PROBES,
    ROUTING,
    TOKEN_EMBEDDINGS,
    LayerRouting,
    Probe,
)
from grokspec.learners.models.transformer import Block, Transformer

if TYPE_CHECKING:
    from grokspec.learners.moe_transformer import MoETransformerSpec
    from grokspec.learners.transformer import TransformerSpec


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
        assert hasattr(spec, "experts"), "an MoE block is built from a moe_transformer spec"
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
    #: the spec declares the same set (tests/test_learner_contract.py checks)
    provides = frozenset({PROBES, TOKEN_EMBEDDINGS, PARAMETERS, ROUTING, PENALTY})
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
