"""Reference training loops, written the way grokking researchers write them.

These are the baselines of bench/throughput.py and bench/end_to_end.py. None of them uses
grokspec's models: each is an independent re-implementation (not a copy) of how the public
code of the field builds its model and steps it, so that "faster than" means faster than
what a researcher runs, not faster than grokspec itself.

- :class:`OneHotMLP`: the one-hot MLP of Liu et al.'s / Gromov's modular-addition setups as
  one writes it by hand: ``F.one_hot`` of both operands, concatenated, a dense ``nn.Linear``.
- :class:`NandaTransformer`: Nanda et al. 2023 (progress-measures-paper, ``transformers.py``):
  weights as raw parameters, attention and MLP as ``einsum``, no LayerNorm, every position
  computed and unembedded, the loss taken in float64 (their ``cross_entropy_high_precision``).
- :class:`DecoderPostLN`: danielmamay/grokking (``model.py``): ``nn.MultiheadAttention`` on
  (seq, batch, dim), post-LayerNorm blocks, a bias-free 4x ReLU MLP, ``x op y =`` (4 tokens),
  the unembedding applied to every position and the last one read.
- :class:`DecoderPreLN`: ironjr/grokfast (``main.py``): the same attention module with a float
  causal mask rebuilt every forward pass, LayerNorm before attention and MLP, a GELU MLP, a
  final LayerNorm and head on every position.

All three transformers run every position of every layer, as their authors' code does.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# ----------------------------------------------------------------------------------- MLP


class OneHotMLP(nn.Module):
    """``x, y -> Linear(one_hot(x) ++ one_hot(y)) -> act -> Linear`` (dense one-hot product)."""

    def __init__(self, p: int, width: int, activation: str = "quadratic") -> None:
        super().__init__()
        self.p = p
        self.fc1 = nn.Linear(2 * p, width)
        self.fc2 = nn.Linear(width, p)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc1(F.one_hot(x, self.p).flatten(1).float())
        h = h * h if self.activation == "quadratic" else F.relu(h)
        return self.fc2(h)


# ----------------------------------------------------------------- Nanda et al. 2023 style


class NandaTransformer(nn.Module):
    """One-or-more-layer transformer with einsum attention, as in the progress-measures code."""

    def __init__(self, vocab: int, n_ctx: int, d_model: int = 128, heads: int = 4,
                 d_mlp: int = 512, layers: int = 1) -> None:
        super().__init__()
        d_head = d_model // heads
        s = 1 / math.sqrt(d_model)
        self.W_E = nn.Parameter(torch.randn(d_model, vocab) * s)
        self.W_pos = nn.Parameter(torch.randn(n_ctx, d_model) * s)
        self.blocks = nn.ModuleList()
        for _ in range(layers):
            blk = nn.Module()
            blk.W_Q = nn.Parameter(torch.randn(heads, d_head, d_model) * s)
            blk.W_K = nn.Parameter(torch.randn(heads, d_head, d_model) * s)
            blk.W_V = nn.Parameter(torch.randn(heads, d_head, d_model) * s)
            blk.W_O = nn.Parameter(torch.randn(d_model, d_head * heads) * s)
            blk.W_in = nn.Parameter(torch.randn(d_mlp, d_model) * s)
            blk.b_in = nn.Parameter(torch.zeros(d_mlp))
            blk.W_out = nn.Parameter(torch.randn(d_model, d_mlp) * s)
            blk.b_out = nn.Parameter(torch.zeros(d_model))
            self.blocks.append(blk)
        self.W_U = nn.Parameter(torch.randn(d_model, vocab) / math.sqrt(vocab))  # Unembed
        self.register_buffer("mask", torch.tril(torch.ones(n_ctx, n_ctx)))
        self.d_head = d_head

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (batch, pos) -> (batch, pos, vocab)
        h = torch.einsum("dbp->bpd", self.W_E[:, x]) + self.W_pos[: x.shape[-1]]
        n = x.shape[-1]
        for b in self.blocks:
            k = torch.einsum("ihd,bpd->biph", b.W_K, h)
            q = torch.einsum("ihd,bpd->biph", b.W_Q, h)
            v = torch.einsum("ihd,bpd->biph", b.W_V, h)
            scores = torch.einsum("biph,biqh->biqp", k, q)
            masked = torch.tril(scores) - 1e10 * (1 - self.mask[:n, :n])
            attn = F.softmax(masked / math.sqrt(self.d_head), dim=-1)
            z = torch.einsum("biph,biqp->biqh", v, attn)
            z = z.permute(0, 2, 1, 3).reshape(z.shape[0], n, -1)
            h = h + torch.einsum("df,bqf->bqd", b.W_O, z)
            pre = torch.einsum("md,bpd->bpm", b.W_in, h) + b.b_in
            h = h + torch.einsum("dm,bpm->bpd", b.W_out, F.relu(pre)) + b.b_out
        return h @ self.W_U


def cross_entropy_high_precision(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The loss as the progress-measures code takes it: log-softmax in float64."""
    logprobs = F.log_softmax(logits.to(torch.float64), dim=-1)
    return -torch.gather(logprobs, -1, labels[:, None]).mean()


# --------------------------------------------------------------- danielmamay/grokking style


class PostLNBlock(nn.Module):
    def __init__(self, dim: int, heads: int, seq_len: int) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, bias=False)
        self.attn_norm = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, 4 * dim, bias=False), nn.ReLU(),
                                 nn.Linear(4 * dim, dim, bias=False))
        self.ffn_norm = nn.LayerNorm(dim)
        self.register_buffer("mask", torch.triu(torch.full((seq_len, seq_len), -1e10), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (seq, batch, dim)
        a, _ = self.attn(x, x, x, attn_mask=self.mask)
        a = self.attn_norm(x + a)
        return self.ffn_norm(a + self.ffn(a))


class DecoderPostLN(nn.Module):
    def __init__(self, layers: int, dim: int, heads: int, vocab: int, seq_len: int) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab, dim)
        self.pos = nn.Embedding(seq_len, dim)
        self.layers = nn.Sequential(*[PostLNBlock(dim, heads, seq_len) for _ in range(layers)],
                                    nn.Linear(dim, vocab, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (batch, seq) -> (seq, batch, vocab)
        b, n = x.shape
        pos = torch.arange(n, device=x.device).unsqueeze(0).expand(b, n)
        return self.layers((self.tok(x) + self.pos(pos)).transpose(0, 1))


# -------------------------------------------------------------------- ironjr/grokfast style


class PreLNBlock(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (seq, batch, dim)
        mask = torch.triu(torch.full((len(x), len(x)), -float("inf"), dtype=x.dtype), 1)
        x = self.ln_1(x)
        a, _ = self.attn(x, x, x, attn_mask=mask, need_weights=False)
        x = x + a
        return x + self.mlp(self.ln_2(x))


class DecoderPreLN(nn.Module):
    def __init__(self, layers: int, dim: int, heads: int, vocab: int, seq_len: int) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab, dim)
        self.pos = nn.Embedding(seq_len, dim)
        self.layers = nn.ModuleList(PreLNBlock(dim, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (seq, batch) -> (seq, batch, vocab)
        h = self.tok(x) + self.pos(torch.arange(x.shape[0]).unsqueeze(-1)).expand(
            x.shape[0], x.shape[1], -1)
        for layer in self.layers:
            h = layer(h)
        return self.head(self.ln_f(h))


def with_op_token(x: torch.Tensor, p: int) -> torch.Tensor:
    """``x y`` -> ``x op y =`` with op = p + 1 and = p (the peers' 4-token equations)."""
    op = torch.full_like(x[:, :1], p + 1)
    eq = torch.full_like(x[:, :1], p)
    return torch.cat([x[:, :1], op, x[:, 1:2], eq], dim=1)
