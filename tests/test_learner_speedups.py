"""The learners' exact shortcuts give the outputs and gradients of the plain computation.

Each shortcut (issue 14) is compared with the computation a textbook model does: the one-hot
first layer of the MLP with a dense one-hot matrix product, the transformer's tabulated first
layer (and last-position-only last layer) with every position run through every block.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from grokspec.learners.mlp import OneHotLinear
from grokspec.learners.moe_transformer import MoETransformerSpec
from grokspec.learners.transformer import Transformer, TransformerSpec


def plain_block(block, h: torch.Tensor) -> torch.Tensor:
    """A textbook causal block on every position, written out here (not the model's code):
    attention by hand, the residual from the stream (pre-LN) or from ln1(h) (normalized)."""
    a = block.ln1(h)
    q = block.q(a)
    k, v = block.kv(a).chunk(2, dim=-1)
    b, t, d = h.shape
    heads = block.heads

    def split(z: torch.Tensor) -> torch.Tensor:
        return z.view(b, t, heads, d // heads).transpose(1, 2)

    scores = split(q) @ split(k).transpose(-1, -2) / (d // heads) ** 0.5
    causal = torch.ones(t, t, dtype=torch.bool).tril()
    att = scores.masked_fill(~causal, float("-inf")).softmax(-1) @ split(v)
    base = a if block.normalized else h
    h = base + block.o(att.transpose(1, 2).reshape(b, t, d))
    if hasattr(block, "experts"):
        return h + block.mlp(block.ln2(h))
    return h + block.mlp_out(block.act(block.mlp_in(block.ln2(h))))


def plain_transformer(model: Transformer, tokens: torch.Tensor) -> torch.Tensor:
    """Embed every position, run every block on every position, read the last one."""
    eq = torch.full_like(tokens[:, :1], model.eq_token)
    if model.op_token is None:
        seq = torch.cat([tokens, eq], dim=1)
    else:
        seq = torch.cat([tokens[:, :1], torch.full_like(eq, model.op_token), tokens[:, 1:], eq], 1)
    h = model.embed(seq) + model.pos
    for block in model.blocks:
        h = plain_block(block, h)
    return model.unembed(model.ln_f(h[:, -1]))


def grads(model: torch.nn.Module, out: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    model.zero_grad(set_to_none=True)
    F.cross_entropy(out, y).backward()
    return {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}


PAPER = {"residual": "normalized", "operator_token": True, "attention_bias": True,
         "attention_init": "xavier", "output": "vocabulary", "activation": "gelu",
         "position_init": "unit"}


@pytest.mark.parametrize(
    ("layers", "layer_norm", "last_only", "moe", "extra"),
    [(1, False, True, False, {}), (2, False, True, False, {}), (2, True, True, False, {}),
     (1, True, False, False, {}), (3, True, True, False, {}), (2, True, True, True, {}),
     (2, True, True, False, PAPER), (1, True, True, False, PAPER),
     (2, True, False, False, PAPER), (2, True, True, True, PAPER), (3, True, True, False, PAPER),
     (1, False, True, False, {"init": "nanda2023", "token_init": "scaled",
                              "output": "vocabulary"})],
)
def test_tabulated_transformer_equals_every_position(
    layers: int, layer_norm: bool, last_only: bool, moe: bool, extra: dict
) -> None:
    torch.manual_seed(0)
    vocab, n = 13, 2
    kw = {"layers": layers, "d_model": 32, "heads": 4, "d_mlp": 48, "layer_norm": layer_norm,
          "last_position_only": last_only, **extra}
    spec = MoETransformerSpec(**kw, experts=3, top_k=2) if moe else TransformerSpec(**kw)
    if moe:
        from grokspec.learners.moe_transformer import MoETransformer

        model: Transformer = MoETransformer(spec, vocab, n, vocab)
    else:
        model = Transformer(spec, vocab, n, vocab)
    x = torch.randint(0, vocab, (64, n))
    y = torch.randint(0, vocab, (64,))
    fast = model(x)
    g_fast = grads(model, fast, y)
    ref = plain_transformer(model, x)
    g_ref = grads(model, ref, y)
    torch.testing.assert_close(fast, ref, rtol=1e-5, atol=1e-5)
    # A parameter that only unread positions use (an expert routed to from them alone) has a
    # zero gradient in the plain computation and none in the shortcut.
    for k in g_fast.keys() | g_ref.keys():
        ref_k = g_ref.get(k, torch.zeros_like(g_fast.get(k, torch.zeros(0))))
        fast_k = g_fast.get(k, torch.zeros_like(ref_k))
        torch.testing.assert_close(fast_k, ref_k, rtol=1e-4, atol=1e-5, msg=k)


@pytest.mark.parametrize("operator_token", [False, True])
def test_input_table_rows_are_embedding_plus_position(operator_token: bool) -> None:
    torch.manual_seed(0)
    spec = TransformerSpec(d_model=16, heads=2, d_mlp=16, operator_token=operator_token)
    model = Transformer(spec, 7, 2, 7)
    x = torch.tensor([[0, 6], [3, 1]])
    seq = model.sequence(x)
    table, rows = model.input_table(), model.table_rows(seq)
    n_tok = 7 + 1 + int(operator_token)
    assert table.shape == (seq.shape[1] * n_tok, 16)
    want = model.embed(seq) + model.pos
    assert torch.equal(table[rows], want)
    assert seq[:, -1].eq(7).all()
    if operator_token:
        assert seq.shape[1] == 4 and seq[:, 1].eq(8).all() and torch.equal(seq[:, [0, 2]], x)


@pytest.mark.parametrize("bias", [True, False])
def test_one_hot_linear_equals_dense_one_hot_product(bias: bool) -> None:
    torch.manual_seed(0)
    seq, vocab, out = 2, 11, 9
    layer = OneHotLinear(seq, vocab, out, bias=bias)
    torch.manual_seed(0)
    dense = torch.nn.Linear(seq * vocab, out, bias=bias)  # same init draws, same values
    assert torch.equal(layer.weight, dense.weight)
    assert layer.table.is_contiguous() and layer.table.shape == (seq * vocab, out)
    x = torch.randint(0, vocab, (40, seq))
    one_hot = F.one_hot(x, vocab).flatten(1).float()
    torch.testing.assert_close(layer(x), dense(one_hot), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(layer(one_hot), dense(one_hot), rtol=1e-6, atol=1e-6)
    g = torch.randn(40, out)
    layer(x).backward(g)
    dense(one_hot).backward(g)
    torch.testing.assert_close(layer.table.grad.T, dense.weight.grad, rtol=1e-5, atol=1e-6)
    if bias:
        torch.testing.assert_close(layer.bias.grad, dense.bias.grad)


def test_dropout_model_in_eval_mode_takes_the_shortcuts_and_equals_plain() -> None:
    """With dropout the first position is tabulated only in eval mode (a training pass draws
    a mask per sample); in eval mode the outputs equal the plain computation."""
    torch.manual_seed(0)
    spec = TransformerSpec(layers=2, d_model=32, heads=4, d_mlp=48, dropout=0.3)
    model = Transformer(spec, 13, 2, 13).eval()
    x = torch.randint(0, 13, (50, 2))
    torch.testing.assert_close(model(x), plain_transformer(model, x), rtol=1e-5, atol=1e-6)
    model.train()  # the per-sample path: dropout active, so two passes differ
    assert not torch.equal(model(x), model(x))


@pytest.mark.parametrize("learner", [
    {"kind": "mlp", "depth": 1, "width": 64, "activation": "quadratic"},
    {"kind": "transformer", "d_model": 32, "heads": 4, "d_mlp": 64, "layers": 2,
     "operator_token": True, "layer_norm": True},
])
def test_evaluation_in_cpu_chunks_equals_one_pass(
    learner: dict, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Evaluation runs 1024-row chunks on a CPU (issue 23: cache-sized, faster): the same
    per-example correctness and accuracy as one pass over the whole set, the mean loss equal
    up to float summation order."""
    from grokspec.metrics import capture
    from grokspec.spec.loading import validate_data
    from grokspec.training.evaluation import evaluate
    from tests.helpers import TINY_GROK

    exp = validate_data({**TINY_GROK, "dataset": {"kind": "modular", "op": "x/y", "p": 71,
                                                  "train_fraction": 0.3}, "learner": learner})
    data = exp.dataset.build(exp.seed)
    torch.manual_seed(0)
    model = exp.learner.build(data)
    assert data.n_test > 2 * capture.EVAL_CHUNK_CPU  # several chunks
    chunked = evaluate(model, data.x_test, data.y_test, data, exp.train)
    monkeypatch.setattr(capture, "EVAL_CHUNK_CPU", 10**9)
    whole = evaluate(model, data.x_test, data.y_test, data, exp.train)
    assert torch.equal(chunked[2], whole[2]) and chunked[1] == whole[1]
    assert chunked[0] == pytest.approx(whole[0], rel=1e-6)


@pytest.mark.parametrize(("queries", "keys", "masked"),
                         [(1, 3, False), (1, 4, False), (2, 4, True), (3, 3, True), (4, 4, True),
                          (6, 6, True)])
def test_few_position_attention_equals_sdpa(queries: int, keys: int, masked: bool) -> None:
    """The broadcast-product attention (at most FEW_PAIRS pairs; 6 x 6 takes SDPA) gives
    SDPA's outputs and gradients, for the prefix mask (the last queries, causal) and none."""
    from grokspec.learners.models.transformer import FEW_PAIRS, attention, causal_mask

    torch.manual_seed(0)
    b, heads, d = 64, 4, 32
    q = torch.randn(b, queries, d, requires_grad=True)
    k, v = (torch.randn(b, keys, d, requires_grad=True) for _ in range(2))
    mask = causal_mask(queries, keys, q.device) if masked else None
    assert (queries * keys <= FEW_PAIRS) == (queries * keys < 36)

    def split(t: torch.Tensor) -> torch.Tensor:
        return t.view(b, t.shape[1], heads, d // heads).transpose(1, 2)

    ref = F.scaled_dot_product_attention(split(q), split(k), split(v), attn_mask=mask)
    ref = ref.transpose(1, 2).reshape(b, queries, d)
    out = attention(q, k, v, heads, mask)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    g = torch.randn_like(ref)
    want = torch.autograd.grad(ref, (q, k, v), g)
    got = torch.autograd.grad(out, (q, k, v), g)
    for a, e in zip(got, want, strict=True):
        torch.testing.assert_close(a, e, rtol=1e-5, atol=1e-5)
