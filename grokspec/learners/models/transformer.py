"""The torch modules of :mod:`grokspec.learners.transformer` (its spec is there: validating a
spec must not import torch)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from grokspec.learners.contract import PARAMETERS, PROBES, TOKEN_EMBEDDINGS, Probe, Probed
from grokspec.learners.transformer import TransformerSpec


class Block(nn.Module):
    def __init__(self, spec: TransformerSpec) -> None:
        super().__init__()
        d = spec.d_model
        self.heads = spec.heads
        self.q = nn.Linear(d, d, bias=False)
        self.kv = nn.Linear(d, 2 * d, bias=False)
        self.o = nn.Linear(d, d, bias=False)
        self._build_mlp(spec)
        self.ln1 = nn.LayerNorm(d) if spec.layer_norm else nn.Identity()
        self.ln2 = nn.LayerNorm(d) if spec.layer_norm else nn.Identity()
        self.drop = nn.Dropout(spec.dropout)

    def _build_mlp(self, spec: TransformerSpec) -> None:
        """The position-wise MLP; the mixture of experts overrides this and :meth:`mlp`."""
        self.mlp_in = nn.Linear(spec.d_model, spec.d_mlp)
        self.mlp_out = nn.Linear(spec.d_mlp, spec.d_model)
        self.act = nn.ReLU() if spec.activation == "relu" else nn.GELU()

    def mlp(self, a: torch.Tensor) -> torch.Tensor:
        return self.mlp_out(self.act(self.mlp_in(a)))

    def _split(self, t: torch.Tensor) -> torch.Tensor:  # (B, T, D) -> (B, H, T, D/H)
        b, n, d = t.shape
        return t.view(b, n, self.heads, d // self.heads).transpose(1, 2)

    def forward(self, h: torch.Tensor, last_only: bool) -> torch.Tensor:
        """``last_only``: return only the last position's output (B, 1, D)."""
        a = self.ln1(h)
        k, v = self.kv(a).chunk(2, dim=-1)
        # The last position attends to every position: no mask is needed for it alone.
        q = self.q(a[:, -1:] if last_only else a)
        return self.attend(h, q, k, v, last_only)

    def attend(
        self, h: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
        last_only: bool, mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The block after its Q/K/V projections: attention, output map, MLP, residuals.

        ``h`` and ``q`` hold the positions computed here (the last one alone when
        ``last_only``), ``k`` and ``v`` every position they attend to; ``mask`` (queries x
        keys, True = attend) replaces the causal mask when the queries are not all positions.
        """
        qs, ks, vs = self._split(q), self._split(k), self._split(v)
        if last_only:
            att = F.scaled_dot_product_attention(qs, ks, vs)
            h = h[:, -1:]
        elif mask is not None:
            att = F.scaled_dot_product_attention(qs, ks, vs, attn_mask=mask)
        else:
            att = F.scaled_dot_product_attention(qs, ks, vs, is_causal=True)
        att = att.transpose(1, 2).reshape(h.shape[0], h.shape[1], -1)
        h = h + self.drop(self.o(att))
        return h + self.drop(self.mlp(self.ln2(h)))


class Transformer(Probed, nn.Module):
    """Token + learned position embeddings, ``layers`` blocks, an unembedding to classes."""

    provides = frozenset({PROBES, TOKEN_EMBEDDINGS, PARAMETERS})
    #: Compute the first position once per token (see :meth:`_forward_prefix_tabulated`);
    #: off for blocks whose MLP keeps per-call state (the mixture of experts' routing).
    tabulate_first_position = True

    def __init__(
        self,
        spec: TransformerSpec,
        vocab: int,
        seq_len: int,
        n_classes: int,
        block: type[Block] = Block,
    ) -> None:
        super().__init__()
        self.eq_token = vocab  # the appended "=" token
        self.last_position_only = spec.last_position_only
        self.embed = nn.Embedding(vocab + 1, spec.d_model)
        self.pos = nn.Parameter(torch.randn(seq_len, spec.d_model) / math.sqrt(spec.d_model))
        self.blocks = nn.ModuleList(block(spec) for _ in range(spec.layers))
        self.ln_f = nn.LayerNorm(spec.d_model) if spec.layer_norm else nn.Identity()
        self.unembed = nn.Linear(spec.d_model, n_classes, bias=False)

    def probes(self) -> dict[str, Probe]:
        """Each block's MLP hidden layer, named after its input map."""
        return {
            f"blocks.{i}.mlp_in": Probe(blk.mlp_in, blk.act) for i, blk in enumerate(self.blocks)
        }

    def token_embeddings(self) -> list[torch.Tensor]:
        """The token embedding, shared by every position (its last row is ``=``)."""
        return [self.embed.weight]

    def input_table(self, n: int) -> torch.Tensor:
        """Every first-layer input that can occur: ``embed[token] + pos[position]`` for the
        ``n`` operand positions x operand tokens (row ``position * vocab + token``), then the
        ``=`` token at the last position (row ``n * vocab``)."""
        vocab = self.eq_token
        w = self.embed.weight
        operands = (w[None, :vocab] + self.pos[:n, None]).reshape(n * vocab, -1)
        return torch.cat([operands, (w[vocab] + self.pos[n])[None]])

    def table_rows(self, tokens: torch.Tensor) -> torch.Tensor:
        """Each sample's row of :meth:`input_table` per position, shape (B, n + 1)."""
        n = tokens.shape[1]
        rows = tokens + torch.arange(n, device=tokens.device) * self.eq_token
        return torch.cat([rows, torch.full_like(rows[:, :1], n * self.eq_token)], dim=1)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        n = tokens.shape[1]
        table = self.input_table(n)
        rows = self.table_rows(tokens)
        first, layers = self.blocks[0], len(self.blocks)
        # First layer: LayerNorm and Q/K/V once per table row, gathered per sample.
        a = first.ln1(table)
        kv_tab, q_tab = first.kv(a), first.q(a)
        if self.tabulate_first_position and (first.drop.p == 0 or not self.training):
            return self._forward_prefix_tabulated(tokens, table, rows, kv_tab, q_tab)
        h = F.embedding(rows, table)  # = embed(tokens, "=") + pos, gathered
        k, v = F.embedding(rows, kv_tab).chunk(2, dim=-1)
        last_only = self.last_position_only and layers == 1
        if last_only:  # the last position always holds "=": one query for the whole batch
            q = q_tab[-1:].expand(tokens.shape[0], 1, -1)
        else:
            q = F.embedding(rows, q_tab)
        h = first.attend(h, q, k, v, last_only)
        for i in range(1, layers):
            h = self.blocks[i](h, last_only=self.last_position_only and i == layers - 1)
        return self.unembed(self.ln_f(h[:, -1]))

    def _forward_prefix_tabulated(
        self, tokens: torch.Tensor, table: torch.Tensor, rows: torch.Tensor,
        kv_tab: torch.Tensor, q_tab: torch.Tensor,
    ) -> torch.Tensor:
        """Causal attention lets the first position attend only to itself, so its residual
        stream at every layer is a function of its token alone: it is computed once per
        vocabulary entry (``vocab`` rows, not ``batch``) and gathered where later positions
        attend to it. The other positions run per sample. Needs no dropout (a per-sample
        mask would differ) and blocks whose MLP keeps no per-call state."""
        vocab, layers = self.eq_token, len(self.blocks)
        tok0 = tokens[:, 0]
        b, n = tokens.shape  # positions 1..n are computed per sample (n - 1 operands and "=")
        mask = torch.ones(n, n + 1, dtype=torch.bool, device=tokens.device).tril(1)
        h0 = table[:vocab]  # (vocab, d): position 0's residual stream per token
        h = F.embedding(rows[:, 1:], table)  # (B, n, d)
        kv0, kv = kv_tab[:vocab], F.embedding(rows[:, 1:], kv_tab)
        for i, block in enumerate(self.blocks):
            last_only = self.last_position_only and i == layers - 1
            if i > 0:
                a0 = block.ln1(h0)
                kv0 = block.kv(a0)
                a = block.ln1(h)
                kv = block.kv(a)
                q = block.q(a[:, -1:] if last_only else a)
            elif last_only:  # one layer: the query of "=" is the same for every sample
                q = q_tab[-1:].expand(b, 1, -1)
            else:
                q = F.embedding(rows[:, 1:], q_tab)
            k0, v0 = F.embedding(tok0, kv0).chunk(2, dim=-1)
            k_rest, v_rest = kv.chunk(2, dim=-1)
            k = torch.cat([k0[:, None], k_rest], dim=1)
            v = torch.cat([v0[:, None], v_rest], dim=1)
            h_next = block.attend(h, q, k, v, last_only, None if last_only else mask)
            if i < layers - 1:  # position 0 attends to itself alone: its attention output is v
                _, v_own = kv0.chunk(2, dim=-1)
                h0 = h0 + block.drop(block.o(v_own))
                h0 = h0 + block.drop(block.mlp(block.ln2(h0)))
            h = h_next
        return self.unembed(self.ln_f(h[:, -1]))
