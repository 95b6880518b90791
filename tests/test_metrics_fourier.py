"""Fourier measures (Nanda et al. 2023) against embeddings and logits with known answers."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from grokspec.metrics import names
from grokspec.metrics.fourier import (
    fourier_basis,
    fourier_sparsity,
    frequency_norms,
    restricted_and_excluded,
    sum_directions,
)
from grokspec.metrics.fourier_measure import FourierMeasure, operand_embeddings
from tests.helpers import experiment
from tests.metrics_helpers import measured

P = 23
KEYS = (3, 7)


def fourier_embedding(p: int, freqs: tuple[int, ...], scale: float = 1.0) -> torch.Tensor:
    """(p, 2 * len(freqs)) embedding whose columns are cos/sin of the given frequencies."""
    x = torch.arange(p, dtype=torch.float64)
    cols = []
    for k in freqs:
        w = 2 * math.pi * k / p
        cols += [torch.cos(w * x), torch.sin(w * x)]
    return scale * torch.stack(cols, dim=1)


@pytest.mark.parametrize("p", [7, 8, 23])
def test_basis_is_orthonormal(p: int) -> None:
    basis, freqs = fourier_basis(p)
    assert torch.allclose(basis @ basis.T, torch.eye(p, dtype=torch.float64), atol=1e-12)
    assert freqs[0] == 0 and max(freqs) == p // 2


def test_exact_fourier_embedding_is_fully_sparse_with_its_key_frequencies() -> None:
    emb = fourier_embedding(P, KEYS) + 5.0  # a constant offset is frequency 0, left out
    norms = frequency_norms(emb)
    assert torch.isclose(norms.sum(), (emb**2).sum())
    sparsity, keys = fourier_sparsity([emb], top_k=2)
    assert sparsity == pytest.approx(1.0, abs=1e-12)
    assert sorted(keys) == list(KEYS)
    # Half the norm in frequency 3 and half in 7: the top-1 holds exactly half.
    assert fourier_sparsity([emb], top_k=1)[0] == pytest.approx(0.5, abs=1e-12)


def test_random_embedding_scores_about_k_over_number_of_frequencies() -> None:
    g = torch.Generator().manual_seed(0)
    emb = torch.randn(97, 4096, generator=g)
    sparsity, _ = fourier_sparsity([emb], top_k=5)
    assert 5 / 48 < sparsity < 1.3 * 5 / 48


def test_operands_sum_their_frequency_norms() -> None:
    a, b = fourier_embedding(P, (3,)), fourier_embedding(P, (7,), scale=2.0)
    sparsity, keys = fourier_sparsity([a, b], top_k=1)
    assert keys == [7] and sparsity == pytest.approx(4 / 5)


def grid_labels(p: int) -> torch.Tensor:
    x = torch.arange(p).repeat_interleave(p)
    y = torch.arange(p).repeat(p)
    return (x + y) % p


def fourier_logits(p: int, freqs: tuple[int, ...], scale: float) -> torch.Tensor:
    """The ideal circuit: logit_z(x, y) = scale * sum_k cos(w_k (x + y - z))."""
    x = torch.arange(p, dtype=torch.float64).repeat_interleave(p)[:, None]
    y = torch.arange(p, dtype=torch.float64).repeat(p)[:, None]
    z = torch.arange(p, dtype=torch.float64)[None, :]
    return scale * sum(torch.cos(2 * math.pi * k / p * (x + y - z)) for k in freqs)


def test_restricted_keeps_the_circuit_and_excluded_keeps_the_rest() -> None:
    circuit = fourier_logits(P, KEYS, scale=4.0)
    # A memorisation-like part orthogonal to every cos/sin(w(x+y)): a function of x alone.
    x = torch.arange(P, dtype=torch.float64).repeat_interleave(P)[:, None]
    g = torch.Generator().manual_seed(1)
    other = torch.cos(2 * math.pi * 5 / P * x) * torch.randn(1, P, generator=g, dtype=torch.float64)
    labels = grid_labels(P)
    train = torch.randperm(P * P, generator=g)[:150]
    r, e = restricted_and_excluded(circuit + other, labels, train, KEYS)
    assert r == pytest.approx(float(F.cross_entropy(circuit, labels)), rel=1e-9)
    assert e == pytest.approx(float(F.cross_entropy(other[train], labels[train])), rel=1e-9)
    # With the circuit alone, excluding it leaves constant logits: loss ln p.
    _, e0 = restricted_and_excluded(circuit, labels, train, KEYS)
    assert e0 == pytest.approx(math.log(P), rel=1e-9)


def test_directions_are_orthonormal_and_subtraction_uses_its_own() -> None:
    d = sum_directions(P, KEYS, sign=-1)
    assert torch.allclose(d @ d.T, torch.eye(4, dtype=torch.float64), atol=1e-12)
    with pytest.raises(ValueError, match="outside"):
        sum_directions(P, [P // 2 + 1])


class FourierAdder(nn.Module):
    """A hand-built model of x + y mod p: its embedding IS an exact Fourier basis (columns
    cos/sin of the key frequencies, plus an unused `=` row), and it computes
    logit_z = s * sum_k cos(w_k (x + y - z)) from it by the angle-addition identities.
    It shows the measures its embedding through the learner contract, as a third party would."""

    provides = frozenset({"token_embeddings"})

    def token_embeddings(self) -> list[torch.Tensor]:
        return [self.embed.weight]

    def __init__(self, p: int, freqs: tuple[int, ...], scale: float = 4.0) -> None:
        super().__init__()
        self.p, self.freqs, self.scale = p, freqs, scale
        self.embed = nn.Embedding(p + 1, 2 * len(freqs))
        with torch.no_grad():
            self.embed.weight[:p] = fourier_embedding(p, freqs).float()
            self.embed.weight[p] = 0.0

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        ex, ey = self.embed(tokens[:, 0]).double(), self.embed(tokens[:, 1]).double()
        z = torch.arange(self.p, dtype=torch.float64)
        out = torch.zeros(tokens.shape[0], self.p, dtype=torch.float64)
        for i, k in enumerate(self.freqs):
            cx, sx, cy, sy = ex[:, 2 * i], ex[:, 2 * i + 1], ey[:, 2 * i], ey[:, 2 * i + 1]
            c, s = cx * cy - sx * sy, sx * cy + cx * sy  # cos, sin of w(x + y)
            w = 2 * math.pi * k / self.p
            out += c[:, None] * torch.cos(w * z) + s[:, None] * torch.sin(w * z)
        return (self.scale * out).float()


def test_measure_on_a_hand_built_fourier_model() -> None:
    # grokspec's embedding_top_k key frequencies (Nanda et al.'s neuron-based ones, the
    # default: tests/test_paper_definitions_measures.py).
    exp = experiment(
        dataset={"p": P}, analysis={"fourier_top_k": 2, "key_frequencies": "embedding_top_k"}
    )
    data = exp.dataset.build(exp.seed)
    model = FourierAdder(P, KEYS)
    out = measured(FourierMeasure(exp, data, torch.device("cpu")), model)
    assert out[names.FOURIER_SPARSITY] == pytest.approx(1.0, abs=1e-6)
    keys = {out[names.FOURIER_KEY_FREQ.format(i=i)] for i in range(2)}
    assert keys == set(map(float, KEYS))
    with torch.no_grad():
        full = float(F.cross_entropy(model(data.x_test), data.y_test))
    assert out[names.RESTRICTED_LOSS] == pytest.approx(full, rel=1e-3)
    assert out[names.EXCLUDED_LOSS] == pytest.approx(math.log(P), rel=1e-4)


def test_one_hot_mlp_embedding_is_its_first_layer_columns_per_operand() -> None:
    exp = experiment(
        dataset={"p": P}, learner={"width": 8},
        analysis={"fourier_top_k": 2, "key_frequencies": "embedding_top_k"},
    )
    data = exp.dataset.build(exp.seed)
    model = exp.learner.build(data)
    first = model.net[0]
    with torch.no_grad():
        first.weight[:4, :P] = fourier_embedding(P, KEYS).T.float()
        first.weight[4:, :P] = 0.0
        first.weight[:, P:] = 0.0
        first.weight[:2, P:] = fourier_embedding(P, (3,)).T.float()
    embs = operand_embeddings(model, P)
    assert len(embs) == 2 and embs[0].shape == (P, 8)
    out = measured(FourierMeasure(exp, data, torch.device("cpu")), model)
    assert out[names.FOURIER_SPARSITY] == pytest.approx(1.0, abs=1e-6)
    assert out[names.FOURIER_KEY_FREQ.format(i=0)] == 3.0  # 3 carries both operands' norm


def test_restricted_loss_judges_clean_labels_under_label_noise() -> None:
    exp = experiment(
        dataset={"p": P, "label_noise": 0.3},
        analysis={"fourier_top_k": 2, "key_frequencies": "embedding_top_k"},
    )
    data = exp.dataset.build(exp.seed)
    assert bool(data.meta_train["corrupted"].any())
    model = FourierAdder(P, KEYS)
    out = measured(FourierMeasure(exp, data, torch.device("cpu")), model)
    with torch.no_grad():
        clean = float(F.cross_entropy(model(data.x_test), data.y_test))
    assert out[names.RESTRICTED_LOSS] == pytest.approx(clean, rel=1e-3)
    assert out[names.EXCLUDED_LOSS] == pytest.approx(math.log(P), rel=1e-4)


@pytest.mark.parametrize("at", ["final", "each_evaluation"])
def test_restricted_loss_uses_the_final_models_key_frequencies(at: str) -> None:
    """Nanda et al.'s code reads every checkpoint with the final model's key frequencies.
    Step 0's model carries 3 and 7, the final one 2 and 5: with `final`, step 0's restricted
    loss keeps only 2 and 5 of step 0's logits (none of its circuit: about log p); with
    grokspec's `each_evaluation` it keeps step 0's own 3 and 7 (the whole circuit)."""
    exp = experiment(dataset={"p": P}, analysis={"fourier_top_k": 2,
                                                 "key_frequencies": "embedding_top_k",
                                                 "key_frequencies_at": at})
    data = exp.dataset.build(exp.seed)
    first, last = FourierAdder(P, KEYS), FourierAdder(P, (2, 5))
    measure = FourierMeasure(exp, data, torch.device("cpu"))
    live = measure(0, first)
    measure(10, last)
    late = measure.finish(last, 10)
    with torch.no_grad():
        full = float(F.cross_entropy(first(data.x_test), data.y_test))
    if at == "final":
        assert names.RESTRICTED_LOSS not in live and set(late) == {0, 10}
        assert late[0][names.RESTRICTED_LOSS] == pytest.approx(math.log(P), rel=1e-3)
        assert late[10][names.RESTRICTED_LOSS] < 0.5 * math.log(P)
    else:
        assert late == {} and live[names.RESTRICTED_LOSS] == pytest.approx(full, rel=1e-3)
