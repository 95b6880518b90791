"""The papers' own definitions of the progress measures, each against an oracle computed
here independently: Nanda et al.'s neuron key frequencies (a 2-D DFT), Fan et al.'s feature
rank (matrices of known rank), Li et al.'s all-pairs pathway distance (brute force)."""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import pytest
import torch

from grokspec.metrics import names
from grokspec.metrics.fourier import (
    nanda2023_key_frequencies,
    neuron_frequency_fractions,
    restricted_and_excluded,
)
from grokspec.metrics.fourier_measure import FourierMeasure
from grokspec.metrics.pathways import (
    MAX_PAIRS,
    pathway_distance,
    pathway_distance_all_pairs,
    pathway_distance_by,
)
from grokspec.metrics.progress.feature_rank import FeatureRank
from grokspec.metrics.rank import fan2024_rank, numerical_rank
from tests.helpers import experiment

# ------------------------------------------------------------ Nanda et al. 2023 key freqs
from tests.metrics_helpers import measured


def nanda_oracle(acts: np.ndarray, p: int) -> tuple[np.ndarray, list[int]]:
    """Nanda et al.'s calculate_key_freqs, transcribed with numpy: their real Fourier basis
    (const, then cos k, sin k, each normalised), the 2-D transform of the centred neurons,
    and per neuron the 3 x 3 block [0, 2k-1, 2k] of each k in range(1, p // 2)."""
    x = np.arange(p)
    basis = [np.ones(p) / np.sqrt(p)]
    for k in range(1, p // 2 + 1):
        for row in (np.cos(2 * np.pi * k * x / p), np.sin(2 * np.pi * k * x / p)):
            basis.append(row / np.linalg.norm(row))
    b = np.stack(basis)  # (p, p) for odd p
    centred = acts - acts.mean(axis=0, keepdims=True)
    four = np.einsum("xyn,fx,gy->fgn", centred.reshape(p, p, -1), b, b)
    fracs = np.zeros((p // 2 - 1, acts.shape[1]))
    for i, k in enumerate(range(1, p // 2)):
        idx = [0, 2 * k - 1, 2 * k]
        fracs[i] = (four[np.ix_(idx, idx)] ** 2).sum(axis=(0, 1)) / (four**2).sum(axis=(0, 1))
    best = fracs.argmax(axis=0) + 1
    return fracs, sorted(set(best.tolist()))


def grid(p: int) -> tuple[np.ndarray, np.ndarray]:
    return np.repeat(np.arange(p), p), np.tile(np.arange(p), p)  # row x * p + y


def test_neuron_frequencies_match_the_real_basis_2d_transform() -> None:
    p = 23
    x, y = grid(p)
    w = 2 * np.pi / p
    rng = np.random.default_rng(0)
    cols = []
    for k in (2, 2, 2, 7, 7, 9):  # known frequencies: linear, quadratic and product terms
        a, b, c = rng.normal(size=3)
        cols.append(a * np.cos(w * k * x) + b * np.sin(w * k * y)
                    + c * np.cos(w * k * x) * np.cos(w * k * y) + 0.05 * rng.normal(size=p * p))
    acts = np.stack(cols, axis=1)
    fracs, keys = nanda_oracle(acts, p)
    got = neuron_frequency_fractions(torch.tensor(acts), p)
    assert np.allclose(got.numpy(), fracs, atol=1e-10)
    res = nanda2023_key_frequencies(torch.tensor(acts), p)
    assert sorted(res.key_freqs) == keys == [2, 7, 9]
    assert res.key_freqs == [2, 7, 9] and res.counts == [3, 2, 1]  # most neurons first
    assert res.neuron_freqs.tolist() == [2, 2, 2, 7, 7, 9]
    # The same through numpy.fft: |F|^2 over x- and y-frequencies {0, k, -k}.
    power = np.abs(np.fft.fft2((acts - acts.mean(0)).reshape(p, p, -1), axes=(0, 1))) ** 2
    for i, k in enumerate(range(1, p // 2)):
        idx = [0, k, p - k]
        block = power[np.ix_(idx, idx)].sum(axis=(0, 1)) / power.sum(axis=(0, 1))
        assert np.allclose(block, fracs[i], atol=1e-10)


def test_key_frequency_edge_cases_follow_their_loop() -> None:
    p = 11
    x, y = grid(p)
    w = 2 * np.pi / p
    acts = np.stack([np.cos(w * 5 * x), np.ones(p * p), np.cos(w * 3 * (x + y))], axis=1)
    res = nanda2023_key_frequencies(torch.tensor(acts), p)
    # k = p // 2 = 5 is never a candidate in range(1, p // 2): like their loop, that neuron
    # still gets its argmax frequency, explaining ~nothing of it; the constant neuron gets
    # none (their loop divides by zero and keeps -1).
    assert res.neuron_freqs[1] == 0 and res.neuron_freqs[2] == 3
    assert 1 <= int(res.neuron_freqs[0]) <= 4 and float(res.frac_explained[0]) < 1e-12
    assert set(res.key_freqs) == {3, int(res.neuron_freqs[0])}
    assert res.mean_frac_explained == pytest.approx(0.5)


class ProbedAdder(torch.nn.Module):
    """A one-hidden-layer network on one-hot (x, y) whose hidden units are cos/sin of known
    frequencies of x and y, declared through the learner contract (probes, embeddings)."""

    provides = frozenset({"probes", "token_embeddings"})

    def __init__(self, p: int, freqs: list[int]) -> None:
        from grokspec.learners.contract import Probe  # noqa: PLC0415

        super().__init__()
        self.p = p
        w = 2 * math.pi / p
        t = torch.arange(p, dtype=torch.float32)
        rows = []
        for k in freqs:
            rows += [torch.cat([torch.cos(w * k * t), torch.cos(w * k * t)]),
                     torch.cat([torch.sin(w * k * t), torch.sin(w * k * t)])]
        self.inp = torch.nn.Linear(2 * p, len(rows), bias=False)
        self.act = torch.nn.Identity()
        self.out = torch.nn.Linear(len(rows), p)
        with torch.no_grad():
            self.inp.weight.copy_(torch.stack(rows))
        self.probe = Probe(self.inp, self.act)

    def probes(self) -> dict:
        return {"inp": self.probe}

    def token_embeddings(self) -> list[torch.Tensor]:
        return [self.inp.weight[:, : self.p].T, self.inp.weight[:, self.p :].T]

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        one_hot = torch.cat([torch.nn.functional.one_hot(tokens[:, i], self.p) for i in (0, 1)], 1)
        return self.out(self.act(self.inp(one_hot.float())))


def test_fourier_measure_logs_nanda_key_frequencies_and_uses_them() -> None:
    p = 13
    exp = experiment(dataset={"p": p, "train_fraction": 0.5}, analysis={"fourier_top_k": 2})
    assert exp.analysis.key_frequencies == "nanda2023"  # the paper's is the default
    data = exp.dataset.build(exp.seed)
    torch.manual_seed(0)
    model = ProbedAdder(p, [4, 4, 4, 1])
    out = measured(FourierMeasure(exp, data, torch.device("cpu")), model)
    # Oracle: hidden activations on the grid computed here, Nanda's transform in numpy.
    gx, gy = grid(p)
    tokens = torch.tensor(np.stack([gx, gy], axis=1))
    with torch.no_grad():
        hidden = model.act(model.inp(torch.cat(
            [torch.nn.functional.one_hot(tokens[:, i], p) for i in (0, 1)], 1).float()))
    _, keys = nanda_oracle(hidden.double().numpy(), p)
    assert keys == [1, 4]
    assert out[names.FOURIER_KEY_FREQ_COUNT] == 2.0
    assert [out[names.FOURIER_KEY_FREQ.format(i=i)] for i in range(2)] == [4.0, 1.0]
    assert out[names.FOURIER_NEURON_FRAC] == pytest.approx(1.0, abs=1e-6)
    # Restricted / excluded loss over exactly those key frequencies.
    idx = tokens[:, 0] * p + tokens[:, 1]
    labels = (tokens[:, 0] + tokens[:, 1]) % p
    with torch.no_grad():
        logits = model(tokens)
    ox = torch.cat([data.meta_train["operand_x"], data.meta_test["operand_x"]]).long()
    oy = torch.cat([data.meta_train["operand_y"], data.meta_test["operand_y"]]).long()
    train_rows = (ox * p + oy)[: data.n_train]
    r, e = restricted_and_excluded(logits[idx.argsort()], labels, train_rows, keys)
    assert out[names.RESTRICTED_LOSS] == pytest.approx(r, rel=1e-6)
    assert out[names.EXCLUDED_LOSS] == pytest.approx(e, rel=1e-6)
    # grokspec's embedding_top_k is kept under its name.
    exp2 = experiment(dataset={"p": p, "train_fraction": 0.5},
                      analysis={"fourier_top_k": 2, "key_frequencies": "embedding_top_k"})
    out2 = FourierMeasure(exp2, data, torch.device("cpu"))(0, model)
    assert names.FOURIER_KEY_FREQ_COUNT not in out2
    assert out2[names.FOURIER_KEY_FREQ.format(i=0)] == 4.0


# ------------------------------------------------------------------ Fan et al. 2024 rank


def known_rank(n: int, d: int, r: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, r, generator=g) @ torch.randn(r, d, generator=g)).float()


@pytest.mark.parametrize(("n", "d", "r"), [(200, 40, 1), (200, 40, 7), (64, 128, 30)])
def test_fan_rank_of_matrices_of_known_rank(n: int, d: int, r: int) -> None:
    assert fan2024_rank(known_rank(n, d, r, seed=r)) == r
    # numpy's matrix_rank of the covariance at the paper's tolerance agrees
    w = known_rank(n, d, r, seed=r).double().numpy()
    cov = w.T @ w
    tol = max(n, d) * np.finfo(np.float32).eps * np.linalg.svd(cov, compute_uv=False)[0]
    assert np.linalg.matrix_rank(cov, tol=tol) == r


def test_fan_rank_is_uncentred_and_differs_from_centred_preactivation() -> None:
    full = torch.randn(300, 50, generator=torch.Generator().manual_seed(0))
    assert fan2024_rank(full) == 50  # well-conditioned: full rank
    w = known_rank(100, 20, 4, seed=3) + 5.0  # a constant offset: one more direction
    assert fan2024_rank(w) == 5 and numerical_rank(w) == 4
    assert fan2024_rank(torch.zeros(10, 6)) == 0
    # The tolerance is the dtype's: noise at 1e-6 relative survives in float64 only.
    noisy = known_rank(300, 30, 3, seed=1).double()
    g = torch.Generator().manual_seed(2)
    noisy = noisy + 1e-6 * noisy.abs().max() * torch.randn(300, 30, generator=g, dtype=noisy.dtype)
    assert fan2024_rank(noisy.float()) == 3 and fan2024_rank(noisy) == 30


def test_feature_rank_measure_reads_post_activations_by_default() -> None:
    exp = experiment(learner={"depth": 1, "width": 16, "activation": "relu"})
    assert exp.analysis.rank_definition == "fan2024"
    data = exp.dataset.build(exp.seed)
    model = exp.learner.build(data)
    with torch.no_grad():  # pre-activations of rank 2, but ReLU makes the outputs fuller
        model.net[0].weight.copy_(known_rank(16, model.net[0].in_features, 2, seed=5))
    x = data.x_train[: exp.analysis.rank_batch]
    with torch.no_grad():
        pre = model.net[0](x)
        post = model.net[1](pre)
    fan = FeatureRank(exp.analysis, data, torch.device("cpu"))(0, model)
    assert fan[names.FEATURE_RANK.format(layer="net.0")] == float(fan2024_rank(post))
    p64 = post.double().numpy()
    cov = p64.T @ p64
    tol = max(p64.shape) * np.finfo(np.float32).eps * np.linalg.svd(cov, compute_uv=False)[0]
    assert fan[names.FEATURE_RANK.format(layer="net.0")] == np.linalg.matrix_rank(cov, tol=tol)
    exp2 = experiment(learner={"depth": 1, "width": 16, "activation": "relu"},
                      analysis={"rank_definition": "centred_preactivation"})
    own = FeatureRank(exp2.analysis, data, torch.device("cpu"))(0, model)
    assert own[names.FEATURE_RANK.format(layer="net.0")] == float(numerical_rank(pre)) <= 2


# ---------------------------------------------------------- Li et al. 2025 pathway distance


@functools.cache
def levenshtein(a: tuple, b: tuple) -> int:
    """Textbook recursion (an oracle independent of the iterative DP under test)."""
    if not a or not b:
        return len(a) + len(b)
    return min(levenshtein(a[1:], b) + 1, levenshtein(a, b[1:]) + 1,
               levenshtein(a[1:], b[1:]) + (a[0] != b[0]))


def random_pathways(n: int, seed: int, length: int = 6, experts: int = 3) -> list:
    rng = np.random.default_rng(seed)
    return [tuple((int(e),) for e in rng.integers(0, experts, length)) for _ in range(n)]


def test_li_pathway_distance_is_the_mean_over_all_pairs() -> None:
    routes = random_pathways(40, seed=0)
    labels = torch.tensor(np.random.default_rng(1).integers(0, 3, 40))
    pairs = list(itertools.combinations(range(40), 2))
    brute = sum(levenshtein(routes[a], routes[b]) / 6 for a, b in pairs) / len(pairs)
    assert pathway_distance_all_pairs(routes) == pytest.approx(brute, rel=1e-12)
    assert pathway_distance_by("li2025", routes, labels) == pytest.approx(brute, rel=1e-12)
    same = [(a, b) for a, b in pairs if labels[a] == labels[b]]
    own = sum(levenshtein(routes[a], routes[b]) / 6 for a, b in same) / len(same)
    assert pathway_distance_by("same_label", routes, labels) == pytest.approx(own, rel=1e-12)
    assert pathway_distance(routes, labels) == pytest.approx(own, rel=1e-12)
    # Identical routes within each label, different across labels: the same-label distance
    # is 0, all pairs see the difference.
    fixed = [((int(lab),),) * 3 for lab in labels.tolist()]
    assert pathway_distance(fixed, labels) == 0.0 and pathway_distance_all_pairs(fixed) > 0.5


def test_li_pathway_distance_samples_pairs_beyond_the_cap() -> None:
    n = 200  # 19900 pairs > MAX_PAIRS: a fixed uniform sample, same value every call
    assert n * (n - 1) // 2 > MAX_PAIRS
    routes = random_pathways(n, seed=3)
    brute = np.mean([levenshtein(routes[a], routes[b]) / 6
                     for a, b in itertools.combinations(range(n), 2)])
    est = pathway_distance_all_pairs(routes)
    assert est == pathway_distance_all_pairs(routes)
    assert est == pytest.approx(brute, abs=0.02)
