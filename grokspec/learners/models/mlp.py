"""The torch modules of :mod:`grokspec.learners.mlp` (its spec is there: validating a
spec must not import torch)."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from grokspec.datasets.base import Dataset
from grokspec.learners.contract import PARAMETERS, PROBES, TOKEN_EMBEDDINGS, Probe, Probed

if TYPE_CHECKING:
    from grokspec.learners.mlp import MLPSpec


class Quadratic(nn.Module):
    """x -> x^2: the activation with which a one-hidden-layer MLP groks modular addition fast."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * x


class KumarActivation(nn.Module):
    """Kumar et al. 2024's phi(z) = z + (eps / 2) z^2."""

    def __init__(self, eps: float = 0.02) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + (0.5 * self.eps) * (x * x)


class MeanReadout(nn.Module):
    """The output is the mean of the hidden units (one output, nothing trained): Kumar et
    al.'s f(x) = (1/N) sum_i phi(w_i . x)."""

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h.mean(dim=-1, keepdim=True)


ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "silu": nn.SiLU,
    "quadratic": Quadratic,
    "kumar2024": KumarActivation,
}


def activation(spec: MLPSpec) -> nn.Module:
    if spec.activation == "kumar2024":
        return KumarActivation(spec.activation_eps)
    return ACTIVATIONS[spec.activation]()


class OneHotLinear(nn.Module):
    """A linear layer over the concatenated one-hot codes of ``seq`` tokens.

    Computes exactly ``nn.Linear(seq * vocab, out)`` of the one-hot vector, with the same
    initial values (drawn as ``nn.Linear`` draws them), but stores the weight transposed and
    contiguous, as a ``(seq * vocab, out)`` table with one row per (position, token), and on
    token ids sums one row per position with ``F.embedding_bag``: no mostly-zero matrix
    product, no per-position intermediate, and a contiguous gradient for the optimizer
    (together ~1.4x a quickstart training step, bench/throughput.py; tested equal to the
    dense product in tests/test_learner_speedups.py). ``weight`` is the ``(out, in)`` view
    ``nn.Linear`` code expects; float inputs (explicit one-hot vectors) still work.
    """

    def __init__(self, seq: int, vocab: int, out: int, bias: bool = True) -> None:
        super().__init__()
        self.in_features, self.out_features = seq * vocab, out
        dense = nn.Linear(seq * vocab, out, bias=bias)  # the reference init, same RNG draws
        self.table = nn.Parameter(dense.weight.detach().t().contiguous())
        self.bias = nn.Parameter(dense.bias.detach().clone()) if bias else None
        self.register_buffer("offsets", torch.arange(seq) * vocab, persistent=False)

    @property
    def weight(self) -> torch.Tensor:
        """The ``(out, in)`` weight of the equivalent ``nn.Linear`` (a view of ``table``)."""
        return self.table.t()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.is_floating_point():
            h = x @ self.table
        elif _under_vmap(self.table):  # embedding_bag has no vmap rule (a slow per-member
            h = sum(  # loop); one embedding per position was the fastest rule (1.6x .sum(-2))
                F.embedding(x[..., k] + self.offsets[k], self.table) for k in range(x.shape[-1])
            )
        else:
            h = F.embedding_bag(x + self.offsets, self.table, mode="sum")
        return h if self.bias is None else h + self.bias


def _under_vmap(t: torch.Tensor) -> bool:
    """Whether ``t`` is a vmapped (stacked-members) tensor; torch has no public test."""
    is_batched = getattr(torch._C._functorch, "is_batchedtensor", None)
    return bool(is_batched is not None and is_batched(t))


class MLP(Probed, nn.Module):
    def __init__(self, spec: MLPSpec, dataset: Dataset) -> None:
        super().__init__()
        self.tokens = dataset.input_kind == "tokens"
        self.one_hot = self.tokens and spec.input_encoding == "one_hot"
        self.vocab = dataset.vocab_size or 0
        seq = dataset.input_dim
        if not self.tokens:
            d_in = seq
        elif self.one_hot:
            d_in = seq * self.vocab
        else:
            self.embed = nn.Embedding(self.vocab, spec.embed_dim)
            self.summed = spec.input_encoding == "embedding_sum"
            d_in = spec.embed_dim if self.summed else seq * spec.embed_dim
            #: train.optimizer.groups -> parameter-name prefixes (learners/contract.py)
            self.parameter_group_prefixes = {"embedding": ("embed.",), "decoder": ("net.",)}
        d_out = dataset.n_classes if dataset.task == "classification" else 1
        assert d_out is not None
        dims = [d_in] + [spec.width] * spec.depth
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:], strict=True):
            linear = (
                OneHotLinear(seq, self.vocab, b, bias=spec.bias)
                if self.one_hot and not layers
                else nn.Linear(a, b, bias=spec.bias)
            )
            if spec.weight_init == "standard_normal":
                weight = linear.table if isinstance(linear, OneHotLinear) else linear.weight
                nn.init.normal_(weight)
                bias = linear.bias
                if bias is not None:
                    nn.init.zeros_(bias)
            layers += [linear, activation(spec)]
        if spec.readout == "fixed_mean":
            assert d_out == 1, "readout: fixed_mean is for regression (checked at validation)"
            layers.append(MeanReadout())
        else:
            layers.append(nn.Linear(dims[-1], d_out, bias=spec.bias))
        self.net = nn.Sequential(*layers)
        self.seq = seq
        self.provides = frozenset({PROBES, PARAMETERS}) | (
            frozenset({TOKEN_EMBEDDINGS}) if self.tokens else frozenset()
        )
        self.regression = dataset.task == "regression"
        dtype = torch.float64 if spec.dtype == "float64" else torch.float32
        self.to(dtype)
        self.dtype_ = dtype
        if spec.init_scale != 1.0:
            with torch.no_grad():
                for p in self.parameters():
                    p.mul_(spec.init_scale)
        self.output_scale = spec.output_scale
        if self.output_scale is not None:
            # theta_0 as buffers (not parameters: never trained, not in weight norms), so
            # it moves with the model, is checkpointed, and is stacked per member when seeds
            # are trained as one vmapped batch.
            self._init_names = [n for n, _ in self.named_parameters()]
            for i, (_, p) in enumerate(self.named_parameters()):
                self.register_buffer(f"theta0_{i}", p.detach().clone())
            # net_0 runs on a storage-free twin of ``net`` (meta tensors, unregistered), with
            # theta_0 swapped in: no forward hook on ``net`` (probes) ever sees its pass.
            self._twin = (copy.deepcopy(self.net).to("meta"),)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """What the first layer reads: token ids (one-hot, see OneHotLinear), embeddings or
        features."""
        if self.one_hot:
            return x
        if self.tokens:
            e = self.embed(x)
            return e.sum(-2) if self.summed else e.flatten(-2)
        return x.to(self.dtype_)

    def probes(self) -> dict[str, Probe]:
        """Each hidden layer: its linear map and activation, named after the linear map."""
        mods = list(self.net)
        return {f"net.{i}": Probe(mods[i], mods[i + 1]) for i in range(0, len(mods) - 1, 2)}

    def token_embeddings(self) -> list[torch.Tensor]:
        """One (vocab, width) block of the first layer per position (one-hot), or the shared
        learned embedding (``input_encoding: embedding``)."""
        if not self.tokens:
            return []
        if not self.one_hot:
            return [self.embed.weight]
        first = self.net[0]
        assert isinstance(first, OneHotLinear)
        return list(first.table.split(self.vocab, dim=0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(self.encode(x))
        if self.output_scale is not None:
            out = lazy_scaled(out, self.initial_output(x), self.output_scale)
        return out.squeeze(-1) if self.regression else out

    def initial_output(self, x: torch.Tensor) -> torch.Tensor:
        """net_0(x): the network at its initial parameters (the ``theta0_*`` buffers), no
        gradient. Used to centre an ``output_scale`` network."""
        theta0 = {n: getattr(self, f"theta0_{i}") for i, n in enumerate(self._init_names)}
        with torch.no_grad():
            if self.one_hot:
                h = x
            elif self.tokens:
                e = F.embedding(x, theta0["embed.weight"])
                h = e.sum(-2) if self.summed else e.flatten(-2)
            else:
                h = x.to(self.dtype_)
            state = {n[len("net."):]: t for n, t in theta0.items() if n.startswith("net.")}
            state.update(dict(self.net.named_buffers()))
            return torch.func.functional_call(self._twin[0], state, (h,))


def lazy_scaled(out: torch.Tensor, out0: torch.Tensor, alpha: float) -> torch.Tensor:
    """``alpha * (out - out0)`` in value, with gradients of ``L / alpha^2`` flowing back.

    Kumar et al. 2024 (and Chizat et al. 2019) train ``alpha * (f - f_0)`` on the loss divided
    by ``alpha^2``. Dividing the gradient that reaches the network by ``alpha^2`` is the same
    update for any optimizer linear in the gradient (GD, SGD) and lets the spec's loss, and
    the logged loss, stay the plain one.
    """
    d = out - out0
    d = d.detach() + (d - d.detach()) / (alpha * alpha)
    return alpha * d
