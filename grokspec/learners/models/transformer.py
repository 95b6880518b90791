"""The torch modules of :mod:`grokspec.learners.transformer` (its spec is there: validating a
spec must not import torch)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from grokspec.learners.contract import PARAMETERS, PROBES, TOKEN_EMBEDDINGS, Probe, Probed

if TYPE_CHECKING:
    from grokspec.learners.transformer import TransformerSpec


class Block(nn.Module):
    def __init__(self, spec: TransformerSpec) -> None:
        super().__init__()
        d = spec.d_model
        self.heads = spec.heads
        bias = spec.attention_bias
        self.q = nn.Linear(d, d, bias=bias)
        self.kv = nn.Linear(d, 2 * d, bias=bias)
        self.o = nn.Linear(d, d, bias=bias)
        self._build_mlp(spec)
        self.ln1 = nn.LayerNorm(d) if spec.layer_norm else nn.Identity()
        self.ln2 = nn.LayerNorm(d) if spec.layer_norm else nn.Identity()
        self.drop = nn.Dropout(spec.dropout)
        #: residual: normalized (the Grokfast code's block): the stream becomes ln1(h)
        self.normalized = spec.residual == "normalized"
        # Declared probe points (TransformerLens-style): the MLP's hidden layer at the answer
        # position, (batch, d_mlp), whatever path computed it.
        self.hook_mlp_pre, self.hook_mlp_post = nn.Identity(), nn.Identity()
        _init_block(self, spec)

    def _build_mlp(self, spec: TransformerSpec) -> None:
        """The position-wise MLP; the mixture of experts overrides this and :meth:`mlp`."""
        self.mlp_in = nn.Linear(spec.d_model, spec.d_mlp)
        self.mlp_out = nn.Linear(spec.d_mlp, spec.d_model)
        self.act = nn.ReLU() if spec.activation == "relu" else nn.GELU()

    def mlp(self, a: torch.Tensor, probe: bool = True) -> torch.Tensor:
        """``probe``: ``a`` is (batch, positions, d) ending at the answer position; False for
        the per-token table of position 0, which no probe reads."""
        pre = self.mlp_in(a)
        post = self.act(pre)
        if probe:
            self.hook_mlp_pre(pre[:, -1])
            self.hook_mlp_post(post[:, -1])
        return self.mlp_out(post)

    def residual(self, h: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """What attention is added to: the stream ``h``, or its normalisation ``a = ln1(h)``."""
        return a if self.normalized else h

    def keys_values(self, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """K and V of ``a`` by two products with the halves of the fused ``kv`` map (one
        parameter, as the papers' fused in-projection). Chunking one product instead costs
        a concatenation of K's and V's gradients along the feature axis in the backward pass,
        from strided views: 1.7 ms of a 45 ms step at the Power et al. setting (profile,
        issue 23); slicing the weight moves that to a (2d, d) weight gradient."""
        d = self.kv.out_features // 2
        w, b = self.kv.weight, self.kv.bias
        return (F.linear(a, w[:d], None if b is None else b[:d]),
                F.linear(a, w[d:], None if b is None else b[d:]))

    def forward(self, h: torch.Tensor, last_only: bool) -> torch.Tensor:
        """``last_only``: return only the last position's output (B, 1, D)."""
        a = self.ln1(h)
        k, v = self.keys_values(a)
        # The last position attends to every position: no mask is needed for it alone.
        q = self.q(a[:, -1:] if last_only else a)
        return self.attend(self.residual(h, a), q, k, v, last_only)

    def attend_only(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, n: int
    ) -> torch.Tensor:
        """Causal multi-head attention of ``n`` positions, heads merged back: (B, n, d)."""
        return attention(q, k, v, self.heads, causal_mask(n, n, q.device))

    def attend(
        self, h: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
        last_only: bool, mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The block after its Q/K/V projections: attention, output map, MLP, residuals.

        ``h`` is the residual base of the positions computed here (the last one alone when
        ``last_only``), ``q`` their queries, ``k`` and ``v`` every position they attend to;
        ``mask`` (queries x keys, True = attend) replaces the causal mask when the queries
        are not all positions.
        """
        if last_only:  # the last query sees every key
            att = attention(q, k, v, self.heads, None)
            h = h[:, -1:]
        else:
            if mask is None:
                mask = causal_mask(q.shape[1], k.shape[1], q.device)
            att = attention(q, k, v, self.heads, mask)
        h = h + self.drop(self.o(att))
        return h + self.drop(self.mlp(self.ln2(h)))


def causal_mask(queries: int, keys: int, device: torch.device) -> torch.Tensor:
    """(queries x keys, True = attend): the last ``queries`` positions of ``keys``, causal."""
    return torch.ones(queries, keys, dtype=torch.bool, device=device).tril(keys - queries)


#: Above this many query x key pairs attention goes to torch's SDPA kernel.
FEW_PAIRS = 16


def attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, mask: torch.Tensor | None,
) -> torch.Tensor:
    """Multi-head softmax attention on (batch, positions, d) tensors, heads merged back.

    ``mask``: (queries x keys, True = attend), None for every key. For the papers' few
    positions (at most :data:`FEW_PAIRS` query x key pairs: 1-2 queries over 3-4 keys) it
    is broadcast products in the (batch, position, head, feature) layout: SDPA's kernel and
    the head transposes around it are mostly overhead there (forward + backward at batch
    512 on a CPU, one thread: 3.6-4.0 ms vs 2.8-3.1 ms with a 2 x 4 mask, 1.9 vs 1.2 ms for
    one query; issue 23). Equal to SDPA up to float rounding (~1e-6, tests).
    """
    b, nq, d = q.shape
    nk, dh = k.shape[1], d // heads
    if nq * nk > FEW_PAIRS:
        split = lambda t: t.view(b, t.shape[1], heads, dh).transpose(1, 2)  # noqa: E731
        att = F.scaled_dot_product_attention(split(q), split(k), split(v), attn_mask=mask)
        return att.transpose(1, 2).reshape(b, nq, d)
    scores = (q.reshape(b, nq, 1, heads, dh) * k.reshape(b, 1, nk, heads, dh)).sum(-1)
    scores = scores * dh ** -0.5  # (batch, queries, keys, heads)
    if mask is not None:
        scores = scores.masked_fill(~mask[:, :, None], float("-inf"))
    weights = scores.softmax(2).unsqueeze(-1)
    return (weights * v.reshape(b, 1, nk, heads, dh)).sum(2).reshape(b, nq, d)


def _init_block(block: Block, spec: TransformerSpec) -> None:
    """Redraw what ``spec`` asks to differ from nn.Linear's init (torch's default is kept
    untouched, so ``init: torch`` draws exactly what it always drew)."""
    d = spec.d_model
    attention = (block.q, block.kv, block.o)
    if spec.init == "nanda2023":
        # Nanda et al.'s code: every W is randn(...) / sqrt(d_model), biases zero.
        for lin in (*attention, block.mlp_in, block.mlp_out):
            nn.init.normal_(lin.weight, std=1 / math.sqrt(d))
            if lin.bias is not None:
                nn.init.zeros_(lin.bias)
    elif spec.attention_init == "xavier":
        # nn.MultiheadAttention: xavier_uniform_ on the fused (3d, d) in-projection (fan_in d,
        # fan_out 3d), zero in_proj_bias and out_proj.bias; out_proj.weight keeps nn.Linear's.
        bound = math.sqrt(6.0 / (d + 3 * d))
        for lin in (block.q, block.kv):
            nn.init.uniform_(lin.weight, -bound, bound)
        for lin in attention:
            if lin.bias is not None:
                nn.init.zeros_(lin.bias)


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
        operands: int,
        n_classes: int,
        block: type[Block] = Block,
    ) -> None:
        super().__init__()
        d = spec.d_model
        #: tokens: 0..vocab-1 the operands, vocab "=", vocab + 1 the operator (if any)
        self.eq_token = vocab
        self.op_token = vocab + 1 if spec.operator_token else None
        self.n_tokens = vocab + 1 + int(spec.operator_token)
        seq_len = spec.sequence_length(operands)
        self.last_position_only = spec.last_position_only
        self.embed = nn.Embedding(self.n_tokens, d)
        self.pos = nn.Parameter(torch.randn(seq_len, d))
        with torch.no_grad():
            if spec.position_init == "scaled":
                self.pos.div_(math.sqrt(d))
            if spec.token_init == "scaled":
                self.embed.weight.div_(math.sqrt(d))
        self.blocks = nn.ModuleList(block(spec) for _ in range(spec.layers))
        self.ln_f = nn.LayerNorm(d) if spec.layer_norm else nn.Identity()
        n_out = self.n_tokens if spec.output == "vocabulary" else n_classes
        self.unembed = nn.Linear(d, n_out, bias=False)
        if spec.init == "nanda2023":  # W_U = randn(d_model, d_vocab) / sqrt(d_vocab)
            nn.init.normal_(self.unembed.weight, std=1 / math.sqrt(n_out))

    def probes(self) -> dict[str, Probe]:
        """Each block's MLP hidden layer at the answer position, named after its hook point
        (``blocks.<i>.hook_mlp_pre``; the hook's input is the MLP's input map's output)."""
        return {
            f"blocks.{i}.hook_mlp_pre": Probe(blk.hook_mlp_pre, blk.hook_mlp_post)
            for i, blk in enumerate(self.blocks)
        }

    def token_embeddings(self) -> list[torch.Tensor]:
        """The token embedding, shared by every position (operands first, then ``=``, then
        the operator token if any)."""
        return [self.embed.weight]

    def sequence(self, tokens: torch.Tensor) -> torch.Tensor:
        """The model's input for the dataset's operand tokens: ``x y =`` or ``x op y =``."""
        eq = torch.full_like(tokens[:, :1], self.eq_token)
        if self.op_token is None:
            return torch.cat([tokens, eq], dim=1)
        op = torch.full_like(tokens[:, :1], self.op_token)
        return torch.cat([tokens[:, :1], op, tokens[:, 1:], eq], dim=1)

    def input_table(self) -> torch.Tensor:
        """Every first-layer input that can occur: ``embed[token] + pos[position]`` for every
        position x token, row ``position * n_tokens + token``."""
        return (self.embed.weight[None] + self.pos[:, None]).reshape(-1, self.pos.shape[1])

    def table_rows(self, seq: torch.Tensor) -> torch.Tensor:
        """Each sample's row of :meth:`input_table` per position, shape (B, seq_len)."""
        return seq + torch.arange(seq.shape[1], device=seq.device) * self.n_tokens

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        seq = self.sequence(tokens)
        table = self.input_table()
        rows = self.table_rows(seq)
        first, layers = self.blocks[0], len(self.blocks)
        # First layer: LayerNorm and Q/K/V once per table row, gathered per sample.
        a = first.ln1(table)
        (k_tab, v_tab), q_tab = first.keys_values(a), first.q(a)
        base_tab = first.residual(table, a)
        if self.tabulate_first_position and (first.drop.p == 0 or not self.training):
            return self._forward_prefix_tabulated(seq, base_tab, rows, k_tab, v_tab, q_tab)
        h = F.embedding(rows, base_tab)  # = embed(seq) + pos (or its ln1), gathered
        k, v = F.embedding(rows, k_tab), F.embedding(rows, v_tab)
        last_only = self.last_position_only and layers == 1
        if last_only:  # the last position always holds "=": one query for the whole batch
            q = F.embedding(rows[:1, -1:], q_tab).expand(seq.shape[0], 1, -1)
        else:
            q = F.embedding(rows, q_tab)
        h = first.attend(h, q, k, v, last_only)
        for i in range(1, layers):
            h = self.blocks[i](h, last_only=self.last_position_only and i == layers - 1)
        return self.unembed(self.ln_f(h[:, -1]))

    def prefix_length(self) -> int:
        """Leading positions whose residual stream depends on the first token alone: position
        0 and the constant operator token after it (``x op``), since causal attention lets
        position j see only positions <= j."""
        return 1 if self.op_token is None else 2

    def _forward_prefix_tabulated(
        self, seq: torch.Tensor, base_tab: torch.Tensor, rows: torch.Tensor,
        k_tab: torch.Tensor, v_tab: torch.Tensor, q_tab: torch.Tensor,
    ) -> torch.Tensor:
        """Causal attention lets the first P positions (:meth:`prefix_length`) see only
        themselves, and they hold the first token and constants: their residual streams at
        every layer are a function of the first token alone, computed once per token
        (``n_tokens`` sequences of length P, not ``batch``) and gathered where later positions
        attend to them. The other positions run per sample. Needs no dropout (a per-sample
        mask would differ) and blocks whose MLP keeps no per-call state."""
        n_tok, layers, d = self.n_tokens, len(self.blocks), base_tab.shape[1]
        big_p = self.prefix_length()
        tok0 = seq[:, 0]
        b, n = seq.shape[0], seq.shape[1] - big_p  # positions P.. are computed per sample
        mask = causal_mask(n, n + big_p, seq.device)
        pre_seq = seq[:1, :big_p].expand(n_tok, big_p).clone()
        pre_seq[:, 0] = torch.arange(n_tok, device=seq.device)
        pre_rows = self.table_rows(pre_seq)  # (n_tokens, P): the prefix of every first token
        h0 = F.embedding(pre_rows, base_tab)  # (n_tokens, P, d)
        k0, v0 = F.embedding(pre_rows, k_tab), F.embedding(pre_rows, v_tab)
        q0 = F.embedding(pre_rows, q_tab)
        h = F.embedding(rows[:, big_p:], base_tab)  # (B, n, d)
        k, v = F.embedding(rows[:, big_p:], k_tab), F.embedding(rows[:, big_p:], v_tab)
        for i, block in enumerate(self.blocks):
            last_only = self.last_position_only and i == layers - 1
            if i > 0:
                a0 = block.ln1(h0)
                (k0, v0), q0 = block.keys_values(a0), block.q(a0)
                h0 = block.residual(h0, a0)
                a = block.ln1(h)
                k, v = block.keys_values(a)
                q = block.q(a[:, -1:] if last_only else a)
                h = block.residual(h, a)
            elif last_only:  # one layer: the query of "=" is the same for every sample
                q = F.embedding(rows[:1, -1:], q_tab).expand(b, 1, -1)
            else:
                q = F.embedding(rows[:, big_p:], q_tab)
            # the prefix's keys and values gathered per sample, then the sample's own
            keys = torch.cat([F.embedding(tok0, k0.reshape(n_tok, -1)).view(b, big_p, d), k], 1)
            vals = torch.cat([F.embedding(tok0, v0.reshape(n_tok, -1)).view(b, big_p, d), v], 1)
            h_next = block.attend(h, q, keys, vals, last_only, None if last_only else mask)
            if i < layers - 1:
                h0 = self._prefix_block(block, h0, q0, k0, v0)
            h = h_next
        return self.unembed(self.ln_f(h[:, -1]))

    @staticmethod
    def _prefix_block(
        block: Block, h0: torch.Tensor, q0: torch.Tensor, k0: torch.Tensor, v0: torch.Tensor,
    ) -> torch.Tensor:
        """One block on the per-token prefix (n_tokens, P, d), causal within it. Position 0
        attends to itself alone: its attention output is its value (the one-position prefix
        skips attention: softmax over one key is 1)."""
        if h0.shape[1] == 1:
            att = v0
        else:
            att = block.attend_only(q0, k0, v0, h0.shape[1])
        h0 = h0 + block.drop(block.o(att))
        return h0 + block.drop(block.mlp(block.ln2(h0), probe=False))
