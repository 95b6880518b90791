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


def plain_transformer(model: Transformer, tokens: torch.Tensor) -> torch.Tensor:
    """Embed every position, run every block on every position, read the last one."""
    eq = torch.full_like(tokens[:, :1], model.eq_token)
    h = model.embed(torch.cat([tokens, eq], dim=1)) + model.pos
    for block in model.blocks:
        h = block(h, last_only=False)
    return model.unembed(model.ln_f(h[:, -1]))


def grads(model: torch.nn.Module, out: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    model.zero_grad(set_to_none=True)
    F.cross_entropy(out, y).backward()
    return {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize(
    ("layers", "layer_norm", "last_only", "moe"),
    [(1, False, True, False), (2, False, True, False), (2, True, True, False),
     (1, True, False, False), (3, True, True, False), (2, True, True, True)],
)
def test_tabulated_transformer_equals_every_position(
    layers: int, layer_norm: bool, last_only: bool, moe: bool
) -> None:
    torch.manual_seed(0)
    vocab, n = 13, 2
    kw = {"layers": layers, "d_model": 32, "heads": 4, "d_mlp": 48, "layer_norm": layer_norm,
          "last_position_only": last_only}
    spec = MoETransformerSpec(**kw, experts=3, top_k=2) if moe else TransformerSpec(**kw)
    if moe:
        from grokspec.learners.moe_transformer import MoETransformer

        model: Transformer = MoETransformer(spec, vocab, n + 1, vocab)
    else:
        model = Transformer(spec, vocab, n + 1, vocab)
    x = torch.randint(0, vocab, (64, n))
    y = torch.randint(0, vocab, (64,))
    fast = model(x)
    g_fast = grads(model, fast, y)
    ref = plain_transformer(model, x)
    g_ref = grads(model, ref, y)
    torch.testing.assert_close(fast, ref, rtol=1e-5, atol=1e-6)
    assert g_fast.keys() == g_ref.keys()
    for k in g_ref:
        torch.testing.assert_close(g_fast[k], g_ref[k], rtol=1e-4, atol=1e-6, msg=k)


def test_input_table_rows_are_embedding_plus_position() -> None:
    torch.manual_seed(0)
    model = Transformer(TransformerSpec(d_model=16, heads=2, d_mlp=16), 7, 3, 7)
    x = torch.tensor([[0, 6], [3, 1]])
    table, rows = model.input_table(2), model.table_rows(x)
    assert table.shape == (2 * 7 + 1, 16)
    want = model.embed(torch.cat([x, torch.full_like(x[:, :1], 7)], 1)) + model.pos
    assert torch.equal(table[rows], want)


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
    model = Transformer(spec, 13, 3, 13).eval()
    x = torch.randint(0, 13, (50, 2))
    torch.testing.assert_close(model(x), plain_transformer(model, x), rtol=1e-5, atol=1e-6)
    model.train()  # the per-sample path: dropout active, so two passes differ
    assert not torch.equal(model(x), model(x))
