"""A spec named after a paper builds that paper's model (issue 17 item 1).

For each paper whose authors' model grokspec builds, the authors' architecture is
instantiated from torch's own modules as their code composes them (bench/peers.py, a
transcription read from the public code: ironjr/grokfast ``main.py`` ``Decoder``; Nanda et
al.'s ``transformers.py``), and grokspec's model from the paper spec is checked against it:

- parameter shapes and counts, parameter by parameter through a name mapping;
- initialisation statistics of every parameter (std, mean, bound of uniform draws), against
  draws of the authors' modules (so torch's own init is the oracle, not a number we wrote);
- the function: the authors' weights copied into grokspec's model give the same logits.

Negative controls: grokspec's default transformer (pre-LN residual, N(0, 1/d) positions) is
*not* the Grokfast model (same weights, other outputs), and its position init is not theirs.
"""

from __future__ import annotations

import functools
import importlib.util
import math
from pathlib import Path

import pytest
import torch

from grokspec.spec.loading import validate_data
from grokspec.sweep.expand import load_sweep

ROOT = Path(__file__).resolve().parents[1]


@functools.cache
def peers():  # noqa: ANN201 - bench/ is not a package (loaded once)
    spec = importlib.util.spec_from_file_location("peers", ROOT / "bench" / "peers.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def grokspec_model(path: str, seed: int = 0, overrides: list[str] | None = None):  # noqa: ANN201
    sweep = load_sweep(ROOT / path, overrides or [])
    exp = sweep.points[0].experiment
    data = exp.dataset.build(exp.seed)
    torch.manual_seed(seed)
    return exp, data, exp.learner.build(data)


# ------------------------------------------------------------------------------ Grokfast


def grokfast_mapping(model, ref) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:  # noqa: ANN001
    """authors' parameter name -> (theirs, ours): ours concatenated where they fuse."""
    out = {"tok_embeddings": (ref.tok.weight, model.embed.weight),
           "position_embeddings[:4]": (ref.pos.weight[:4], model.pos),
           "ln_f.weight": (ref.ln_f.weight, model.ln_f.weight),
           "ln_f.bias": (ref.ln_f.bias, model.ln_f.bias),
           "head.weight": (ref.head.weight, model.unembed.weight)}
    for i, (theirs, ours) in enumerate(zip(ref.layers, model.blocks, strict=True)):
        pairs = {
            "attn.in_proj_weight": (theirs.attn.in_proj_weight,
                                    torch.cat([ours.q.weight, ours.kv.weight])),
            "attn.in_proj_bias": (theirs.attn.in_proj_bias, torch.cat([ours.q.bias, ours.kv.bias])),
            "attn.out_proj.weight": (theirs.attn.out_proj.weight, ours.o.weight),
            "attn.out_proj.bias": (theirs.attn.out_proj.bias, ours.o.bias),
            "ln_1.weight": (theirs.ln_1.weight, ours.ln1.weight),
            "ln_1.bias": (theirs.ln_1.bias, ours.ln1.bias),
            "ln_2.weight": (theirs.ln_2.weight, ours.ln2.weight),
            "ln_2.bias": (theirs.ln_2.bias, ours.ln2.bias),
            "mlp.0.weight": (theirs.mlp[0].weight, ours.mlp_in.weight),
            "mlp.0.bias": (theirs.mlp[0].bias, ours.mlp_in.bias),
            "mlp.2.weight": (theirs.mlp[2].weight, ours.mlp_out.weight),
            "mlp.2.bias": (theirs.mlp[2].bias, ours.mlp_out.bias),
        }
        out.update({f"layers.{i}.{k}": v for k, v in pairs.items()})
    return out


def grokfast_reference(p: int = 97):  # noqa: ANN201
    """The authors' Decoder for x*y mod p: 2 layers, dim 128, 4 heads, p + 2 tokens, 5
    positions (main.py builds it with seq_len=5 and feeds 4 tokens)."""
    return peers().DecoderPreLN(layers=2, dim=128, heads=4, vocab=p + 2, seq_len=5)


def test_grokfast_parameters_match_the_authors_decoder() -> None:
    _, _, model = grokspec_model("specs/papers/lee2024.yaml")
    ref = grokfast_reference()
    theirs = sum(p.numel() for p in ref.parameters())
    ours = sum(p.numel() for p in model.parameters())
    assert theirs == 422_784
    assert theirs - ours == 128  # the one position row their code allocates and never reads
    pairs = grokfast_mapping(model, ref)
    assert sum(a.numel() for a, _ in pairs.values()) == ours  # every parameter mapped once
    for name, (a, b) in pairs.items():
        assert a.shape == b.shape, name


def _draws(make, n: int = 8) -> list[dict[str, torch.Tensor]]:  # noqa: ANN001
    out = []
    for s in range(n):
        torch.manual_seed(100 + s)
        out.append(make())
    return out


def test_grokfast_init_statistics_match_the_authors_decoder() -> None:
    """Per parameter: the std and mean of our draw lie within the spread of 8 draws of the
    authors' modules, zero stays zero, uniform bounds agree."""
    ours_by_seed, theirs_by_seed = [], []
    for s in range(4):
        _, _, model = grokspec_model("specs/papers/lee2024.yaml", seed=200 + s)
        ref = grokfast_reference()
        torch.manual_seed(300 + s)
        ref = grokfast_reference()
        pairs = grokfast_mapping(model, ref)
        ours_by_seed.append({k: b.detach().clone() for k, (_, b) in pairs.items()})
        theirs_by_seed.append({k: a.detach().clone() for k, (a, _) in pairs.items()})
    for name in ours_by_seed[0]:
        t = torch.stack([d[name].float().flatten() for d in theirs_by_seed])
        o = torch.stack([d[name].float().flatten() for d in ours_by_seed])
        t_std, o_std = t.std(dim=1), o.std(dim=1)
        if float(t_std.max()) == 0.0:  # constant init (zeros, ones)
            assert torch.equal(o, t), name
            continue
        assert abs(float(o_std.mean()) / float(t_std.mean()) - 1) < 0.15, name
        assert abs(float(o.abs().max()) - float(t.abs().max())) <= 0.25 * float(t.abs().max()), name


def _copy_authors_weights(model, ref) -> None:  # noqa: ANN001
    with torch.no_grad():
        for name, (a, b) in grokfast_mapping(model, ref).items():
            if name.endswith("in_proj_weight") or name.endswith("in_proj_bias"):
                continue
            b.copy_(a)
        for theirs, ours in zip(ref.layers, model.blocks, strict=True):
            d = ours.q.weight.shape[0]
            ours.q.weight.copy_(theirs.attn.in_proj_weight[:d])
            ours.kv.weight.copy_(theirs.attn.in_proj_weight[d:])
            ours.q.bias.copy_(theirs.attn.in_proj_bias[:d])
            ours.kv.bias.copy_(theirs.attn.in_proj_bias[d:])


def _authors_logits(ref, x: torch.Tensor, p: int) -> torch.Tensor:  # noqa: ANN001
    seq = peers().with_op_token(x, p)  # x op y =, op = p + 1, = p
    return ref.eval()(seq.T)[-1]  # (seq, batch) in, the last position's logits


@pytest.mark.parametrize("p", [97, 11])
def test_grokfast_model_computes_the_authors_function(p: int) -> None:
    _, data, model = grokspec_model("specs/papers/lee2024.yaml",
                                    overrides=[f"dataset.p={p}", "train.batch_size=32"])
    torch.manual_seed(1)
    ref = grokfast_reference(p)
    _copy_authors_weights(model, ref)
    x = data.x_train[:64]
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), _authors_logits(ref, x, p), rtol=1e-4,
                                   atol=1e-4)


def test_negative_control_the_default_transformer_is_not_the_grokfast_model() -> None:
    """Same sizes, same copied weights, grokspec's defaults for the rest: other logits, and
    position embeddings drawn 1/sqrt(d) smaller (the commutativity shortcut's cause)."""
    p = 11
    sizes = {"kind": "transformer", "layers": 2, "d_model": 128, "heads": 4, "d_mlp": 512,
             "layer_norm": True, "activation": "gelu", "operator_token": True,
             "output": "vocabulary", "attention_bias": True}
    exp = validate_data({"name": "x", "dataset": {"kind": "modular", "op": "x*y", "p": p,
                         "nonzero_y": True, "train_fraction": 0.5}, "learner": sizes})
    data = exp.dataset.build(0)
    model = exp.learner.build(data)
    assert float(model.pos.detach().std()) < 0.2  # N(0, 1/128): std ~0.09, theirs ~1
    torch.manual_seed(1)
    ref = grokfast_reference(p)
    _copy_authors_weights(model, ref)
    x = data.x_train[:64]
    with torch.no_grad():
        assert not torch.allclose(model.eval()(x), _authors_logits(ref, x, p), atol=1e-2)


def test_lee2024_dataset_is_the_authors_table() -> None:
    """x in 0..p-1, y in 1..p-1, x*y mod p, half for training (main.py's split size)."""
    exp = load_sweep(ROOT / "specs" / "papers" / "lee2024.yaml").points[0].experiment
    data = exp.dataset.build(0)
    x = torch.cat([data.x_train, data.x_test])
    assert len(x) == 97 * 96 and data.n_train == 97 * 96 // 2
    assert int(x[:, 1].min()) == 1 and int(x[:, 0].min()) == 0
    y = torch.cat([data.y_train, data.y_test])
    assert torch.equal(y, x[:, 0] * x[:, 1] % 97)


# ------------------------------------------------------------------------------ Nanda


def nanda_mapping(model, ref) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:  # noqa: ANN001
    """Nanda's parameter -> (theirs in our layout, ours)."""
    b = ref.blocks[0]
    d = ref.W_pos.shape[1]
    ours = model.blocks[0]
    return {
        "W_E": (ref.W_E.T, model.embed.weight),
        "W_pos": (ref.W_pos, model.pos),
        "W_Q": (b.W_Q.reshape(d, d), ours.q.weight),
        "W_K,W_V": (torch.cat([b.W_K.reshape(d, d), b.W_V.reshape(d, d)]), ours.kv.weight),
        "W_O": (b.W_O, ours.o.weight),
        "W_in": (b.W_in, ours.mlp_in.weight),
        "b_in": (b.b_in, ours.mlp_in.bias),
        "W_out": (b.W_out, ours.mlp_out.weight),
        "b_out": (b.b_out, ours.mlp_out.bias),
        "W_U": (ref.W_U.T, model.unembed.weight),
    }


def nanda_reference(p: int):  # noqa: ANN201
    return peers().NandaTransformer(vocab=p + 1, n_ctx=3, d_model=128, heads=4, d_mlp=512)


def test_nanda_parameters_init_and_function_match_the_authors_transformer() -> None:
    exp = load_sweep(ROOT / "specs" / "papers" / "nanda2023.yaml", []).points[0].experiment
    data = exp.dataset.build(0)
    torch.manual_seed(0)
    model = exp.learner.build(data)
    p = exp.dataset.p
    torch.manual_seed(0)
    ref = nanda_reference(p)
    pairs = nanda_mapping(model, ref)
    assert sum(a.numel() for a, _ in pairs.values()) == sum(p_.numel() for p_ in ref.parameters())
    assert sum(b.numel() for _, b in pairs.values()) == sum(p_.numel() for p_ in model.parameters())
    for name, (a, b) in pairs.items():
        assert a.shape == b.shape, name
        if float(a.detach().std()) == 0.0:
            assert torch.equal(a, b), name
        else:
            assert abs(float(b.detach().std()) / float(a.detach().std()) - 1) < 0.1, name
    assert abs(float(model.unembed.weight.detach().std()) - 1 / math.sqrt(p + 1)) < 0.01
    with torch.no_grad():
        for _, (a, b) in pairs.items():
            b.copy_(a)
        x = data.x_train[:32]
        seq = torch.cat([x, torch.full_like(x[:, :1], p)], dim=1)
        torch.testing.assert_close(model.eval()(x), ref(seq)[:, -1], rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------------------ Kumar


def test_kumar_model_is_the_papers_network() -> None:
    """f(x) = alpha (h(x) - h_0(x)), h(x) = (1/N) sum_i phi(w_i . x), phi(z) = z + (eps/2) z^2,
    no bias, no trained readout: computed here by hand from the model's own weights."""
    exp = load_sweep(ROOT / "specs" / "papers" / "kumar2024.yaml").points[1].experiment
    alpha = exp.learner.output_scale
    data = exp.dataset.build(0)
    torch.manual_seed(0)
    model = exp.learner.build(data)
    params = dict(model.named_parameters())
    assert list(params) == ["net.0.weight"]  # N x D hidden weights: nothing else is trained
    w = params["net.0.weight"].detach()
    assert w.shape == (500, 100) and abs(float(w.std()) - 1.0) < 0.02  # N(0, 1) draws
    eps = 0.02
    x = data.x_test[:16]
    with torch.no_grad():
        w.add_(0.01 * torch.randn_like(w))  # move away from the start: f != 0
        z = x @ w.T
        h = (z + eps / 2 * z * z).mean(-1)
        z0 = x @ model.theta0_0.T
        h0 = (z0 + eps / 2 * z0 * z0).mean(-1)
        torch.testing.assert_close(model(x), alpha * (h - h0), rtol=1e-4, atol=1e-6)


def test_kumar_dataset_is_the_papers_task() -> None:
    """x ~ N(0, I/D), y = (beta . x)^2 / 2 with beta ~ N(0, I)."""
    exp = load_sweep(ROOT / "specs" / "papers" / "kumar2024.yaml").points[0].experiment
    data = exp.dataset.build(0)
    x = torch.cat([data.x_train, data.x_test])
    assert abs(float(x.std()) - 0.1) < 0.005  # 1/sqrt(100)
    beta = data.info["beta"]
    torch.testing.assert_close(torch.cat([data.y_train, data.y_test]), 0.5 * (x @ beta) ** 2)


def test_kumar_fields_that_do_not_apply_are_rejected() -> None:
    from grokspec.spec.loading import SpecError as Err

    base = {"name": "k", "dataset": {"kind": "modular", "p": 7}}
    with pytest.raises(Err, match="readout: fixed_mean .* regression"):
        validate_data({**base, "learner": {"kind": "mlp", "readout": "fixed_mean"}})
    with pytest.raises(Err, match="activation_eps"):
        validate_data({**base, "learner": {"kind": "mlp", "activation_eps": 0.1}})


# ------------------------------------------------------------------------------ Liu


def test_liu_toy_is_the_papers_task_and_model() -> None:
    """Integer addition of 0..9 (45 of the 55 unordered pairs trained); a 1-D representation
    per symbol, E_i + E_j read by a decoder of width 200 with one logit per possible sum; the
    representation at lr 1e-3 without weight decay, the decoder at each grid point's own."""
    sweep = load_sweep(ROOT / "specs" / "papers" / "liu2022.yaml")
    exp = sweep.points[5].experiment
    data = exp.dataset.build(exp.seed)
    assert (data.n_train, data.n_test, data.n_classes) == (45, 10, 19)
    torch.manual_seed(0)
    model = exp.learner.build(data)
    shapes = {n: tuple(p.shape) for n, p in model.named_parameters()}
    assert shapes["embed.weight"] == (10, 1)
    assert shapes["net.0.weight"] == (200, 1) and shapes["net.4.weight"] == (19, 200)
    x = torch.tensor([[3, 4], [1, 6]])  # 3 + 4 = 1 + 6
    with torch.no_grad():
        model.embed.weight.copy_(torch.arange(10.0).unsqueeze(1))
        torch.testing.assert_close(model(x)[0], model(x)[1])  # a linear E: one output per sum
    opt = exp.train.optimizer
    assert opt.groups["embedding"].lr == 1e-3 and opt.groups["embedding"].weight_decay == 0.0
    from grokspec.training.optim import build_optimizer, parameter_groups

    named = list(model.named_parameters())
    torch_opt, _ = build_optimizer([p for _, p in named], opt,
                                   parameter_groups(named, model.parameter_group_prefixes))
    emb, dec = torch_opt.param_groups
    assert emb["params"] == [model.embed.weight] and (emb["lr"], emb["weight_decay"]) == (
        1e-3, 0.0)
    assert (dec["lr"], dec["weight_decay"]) == (opt.lr, opt.weight_decay)
    assert len(dec["params"]) == len(named) - 1
