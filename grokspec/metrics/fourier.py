"""Fourier progress measures for modular arithmetic (Nanda et al. 2023, "Progress measures
for grokking via mechanistic interpretability").

A network that groks ``x + y mod p`` represents each operand by a few frequencies
``w_k = 2 pi k / p`` and computes ``cos(w_k (x + y - z))`` for each answer ``z``. Three
numbers track that circuit forming before the test accuracy shows it:

- **Fourier sparsity**: the operand embedding, expressed in the discrete Fourier basis over
  the token axis, concentrates its norm in a few *key frequencies*.
  ``fourier_sparsity`` = (squared norm in the top-k frequencies) / (squared norm in all
  non-constant frequencies). The constant component (frequency 0: the same vector added to
  every token) is left out, since it carries nothing about the operand. A random embedding
  scores about ``k / (p // 2)``; an exact k-frequency embedding scores 1.
- **Restricted loss**: the logits over the full ``p x p`` input grid, projected (per output
  class) onto the span of ``cos(w_k (x + y))`` and ``sin(w_k (x + y))`` for the key
  frequencies, plus each logit's mean over the grid (softmax needs that baseline). The loss
  of these restricted logits on *all* pairs falls as the generalising circuit forms.
- **Excluded loss**: the same directions *removed* from the logits, loss on the *training*
  pairs only. It rises as the training set comes to be fitted by the Fourier circuit instead
  of memorisation.

For ``x - y`` the directions are ``cos/sin(w_k (x - y))``. The functions here are pure (tensors
in, numbers out); :mod:`grokspec.metrics.measures` finds the embedding inside a model.

**Key frequencies**, two definitions (``analysis.key_frequencies``):

- ``nanda2023`` (the default, :func:`nanda2023_key_frequencies`): Nanda et al.'s own, from
  ``calculate_key_freqs`` in ``transformers.py`` of their public code
  (github.com/mechanistic-interpretability-grokking/progress-measures-paper): the MLP
  neurons' activations over all p x p inputs, centred per neuron, in the 2-D Fourier basis;
  each neuron's frequency is the k whose linear and quadratic terms (the 3 x 3 block of
  basis pairs {const, cos k, sin k} x {const, cos k, sin k}) explain the largest fraction of
  its squared norm; the key frequencies are the distinct neuron frequencies.
- ``embedding_top_k`` (grokspec's earlier variant): the ``top_k`` frequencies with the most
  squared norm in the operand embeddings (:func:`fourier_sparsity`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F


def n_frequencies(p: int) -> int:
    """Non-constant frequencies of the real Fourier basis over Z_p: 1 .. p // 2."""
    return p // 2


def fourier_basis(p: int, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, list[int]]:
    """Orthonormal real Fourier basis over ``Z_p`` as rows (p, p), and each row's frequency.

    Rows: the constant, then ``cos(w_k x)``, ``sin(w_k x)`` for k = 1 .. (p-1)//2, and for even
    p the Nyquist row ``cos(pi x)`` (its sine is identically zero).
    """
    x = torch.arange(p, dtype=dtype)
    rows = [torch.full((p,), 1.0 / math.sqrt(p), dtype=dtype)]
    freqs = [0]
    for k in range(1, (p - 1) // 2 + 1):
        w = 2 * math.pi * k / p
        rows += [torch.cos(w * x) * math.sqrt(2 / p), torch.sin(w * x) * math.sqrt(2 / p)]
        freqs += [k, k]
    if p % 2 == 0:
        rows.append(torch.cos(math.pi * x) / math.sqrt(p))
        freqs.append(p // 2)
    return torch.stack(rows), freqs


def frequency_norms(embedding: torch.Tensor) -> torch.Tensor:
    """Squared norm of a (p, d) token embedding per frequency 0 .. p // 2 (sums to its norm^2)."""
    p = embedding.shape[0]
    basis, freqs = fourier_basis(p)
    coeff = basis @ embedding.detach().to(torch.float64)  # (p, d) in the Fourier basis
    per_row = (coeff**2).sum(dim=1)
    out = torch.zeros(n_frequencies(p) + 1, dtype=torch.float64)
    out.index_add_(0, torch.tensor(freqs), per_row)
    return out


def fourier_sparsity(
    embeddings: Sequence[torch.Tensor], top_k: int
) -> tuple[float, list[int]]:
    """Fraction of the non-constant squared norm in the ``top_k`` strongest frequencies.

    ``embeddings`` are (p, d) matrices, one per operand (a transformer shares one; a one-hot
    MLP has one per operand: its first layer's weight columns). Their per-frequency norms are
    summed, so the key frequencies are those of the whole input layer. Returns the sparsity
    and the key frequencies (strongest first).
    """
    norms = sum(frequency_norms(e) for e in embeddings)
    assert isinstance(norms, torch.Tensor)
    nonconst = norms[1:]
    total = float(nonconst.sum())
    k = min(top_k, nonconst.numel())
    top = torch.topk(nonconst, k)
    keys = [int(i) + 1 for i in top.indices]
    if total <= 0.0:
        return 0.0, keys
    return float(top.values.sum()) / total, keys


def sum_directions(p: int, freqs: Sequence[int], sign: int = 1) -> torch.Tensor:
    """Orthonormal rows ``cos/sin(w_k (x + sign*y))`` over the grid (index ``x * p + y``).

    Each has squared norm p^2 / 2 before normalisation; distinct frequencies in 1 .. p//2 are
    orthogonal to each other and to the constant. The sine of the Nyquist frequency is zero
    and is dropped.
    """
    x = torch.arange(p, dtype=torch.float64).repeat_interleave(p)
    y = torch.arange(p, dtype=torch.float64).repeat(p)
    rows = []
    for k in sorted(set(freqs)):
        if not 1 <= k <= p // 2:
            raise ValueError(f"frequency {k} is outside 1..{p // 2}")
        arg = 2 * math.pi * k / p * (x + sign * y)
        for r in (torch.cos(arg), torch.sin(arg)):
            norm = float(r.norm())
            if norm > 1e-9 * p:
                rows.append(r / norm)
    return torch.stack(rows) if rows else torch.zeros(0, p * p, dtype=torch.float64)


def restricted_and_excluded(
    grid_logits: torch.Tensor,
    labels: torch.Tensor,
    train_index: torch.Tensor,
    freqs: Sequence[int],
    sign: int = 1,
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
) -> tuple[float, float]:
    """Restricted loss (on every grid pair) and excluded loss (on ``train_index`` pairs).

    ``grid_logits`` is (p*p, C), row ``x * p + y``; ``labels`` (p*p,) the answers;
    ``train_index`` the grid rows of the training pairs.
    """
    n = grid_logits.shape[0]
    p = math.isqrt(n)
    if p * p != n:
        raise ValueError(f"grid_logits must have p*p rows, got {n}")
    logits = grid_logits.detach().to(torch.float64)
    dirs = sum_directions(p, freqs, sign)
    mean = logits.mean(dim=0, keepdim=True)
    along = dirs.T @ (dirs @ (logits - mean))  # the key-frequency part of every logit
    restricted = mean + along
    excluded = logits - along
    r = float(loss(restricted, labels))
    e = float(loss(excluded[train_index], labels[train_index]))
    return r, e


@dataclass(frozen=True)
class NeuronFrequencies:
    """What :func:`nanda2023_key_frequencies` read off a layer of neurons.

    ``key_freqs``: the distinct neuron frequencies, most neurons first (ties: lower
    frequency first); ``counts``: neurons per key frequency, same order; ``neuron_freqs``:
    each neuron's frequency, 0 for a neuron whose activation is constant over the grid (it has
    no frequency: Nanda et al.'s loop divides by zero and leaves it at -1, which their
    ``np.unique`` would then list as a key frequency; here it is left out); ``frac_explained``:
    each neuron's best fraction (0 for constant neurons). A neuron that varies gets its
    argmax frequency even when every candidate explains ~nothing of it, as in their loop.
    """

    key_freqs: list[int]
    counts: list[int]
    neuron_freqs: torch.Tensor
    frac_explained: torch.Tensor

    @property
    def mean_frac_explained(self) -> float:
        """Mean best fraction over the neurons that vary (0.0 when none does)."""
        alive = self.neuron_freqs > 0
        return float(self.frac_explained[alive].mean()) if bool(alive.any()) else 0.0


def neuron_frequency_fractions(activations: torch.Tensor, p: int) -> torch.Tensor:
    """Per neuron and frequency k = 1 .. p//2 - 1: the fraction of the neuron's centred
    squared activation in the linear and quadratic terms of k (Nanda et al. 2023).

    ``activations`` is (p*p, neurons), row ``x * p + y`` for the input pair (x, y). Returns
    (p//2 - 1, neurons); a neuron with constant activation gets zeros. The candidate
    frequencies are those of Nanda et al.'s loop, ``range(1, p // 2)``: p//2 itself is never
    a candidate there, so not here either.

    In the real orthonormal basis {const, cos k, sin k} of each axis the 3 x 3 block of
    frequency k spans the same space as the complex exponentials with x- and y-frequencies
    in {0, k, -k}, so with the unitary 2-D DFT ``F`` its squared norm is the sum of
    ``|F[a, b]|^2`` over those nine (a, b). For a real, centred activation ``F[0, 0] = 0`` and
    ``|F[-a, -b]| = |F[a, b]|``, leaving four terms, each a 1-D DFT of a marginal:
    ``F[k, 0]`` of the sums over y, ``F[0, k]`` of the sums over x, ``F[k, k]`` of the sums
    along x + y = s and ``F[k, -k]`` along x - y = d (mod p). That is O(p^2) per neuron
    rather than a 2-D FFT, which for a prime p (the usual case) is several times dearer.
    """
    return _fractions_and_norms(activations, p)[0]


def _fractions_and_norms(activations: torch.Tensor, p: int) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`neuron_frequency_fractions` and each neuron's centred squared norm."""
    n, neurons = activations.shape
    if n != p * p:
        raise ValueError(f"activations must have p*p = {p * p} rows, got {n}")
    ks = torch.arange(1, p // 2, dtype=torch.float64)
    a = activations.detach().to(torch.float64)
    if ks.numel() == 0:
        return torch.zeros(0, neurons, dtype=torch.float64), ((a - a.mean(0)) ** 2).sum(0)
    a = a - a.mean(dim=0, keepdim=True)  # centre each neuron: no constant term
    x = torch.arange(p).repeat_interleave(p)
    y = torch.arange(p).repeat(p)
    marginals = []
    for index in (x, y, (x + y) % p, (x - y) % p):
        marginals.append(torch.zeros(p, neurons, dtype=torch.float64).index_add_(0, index, a))
    angle = 2 * math.pi / p * ks[:, None] * torch.arange(p, dtype=torch.float64)[None, :]
    cos, sin = torch.cos(angle), torch.sin(angle)  # (K, p)
    block = sum((cos @ m) ** 2 + (sin @ m) ** 2 for m in marginals)  # sum of |F|^2, K x N
    assert isinstance(block, torch.Tensor)
    block = 2 * block / (p * p)  # unitary DFT, and the four mirrored terms
    total = (a**2).sum(dim=0)  # = sum of all |F|^2 (Parseval)
    safe = torch.where(total > 0, total, torch.ones_like(total))
    return torch.where(total > 0, block / safe, torch.zeros_like(block)), total


def nanda2023_key_frequencies(activations: torch.Tensor, p: int) -> NeuronFrequencies:
    """Nanda et al. 2023's key frequencies of a layer (``calculate_key_freqs``).

    Each neuron's frequency is the candidate with the largest fraction from
    :func:`neuron_frequency_fractions` (the first on ties, like their strict ``>``); the key
    frequencies are the distinct frequencies of the neurons that vary, ordered by how many
    neurons have each. Nanda et al. return them sorted by frequency (``np.unique``); the
    order here is for logging (``fourier_key_freq/0`` is the most common) and the set is
    theirs.
    """
    frac, norms = _fractions_and_norms(activations, p)
    neurons = activations.shape[1]
    if frac.shape[0] == 0:
        z = torch.zeros(neurons)
        return NeuronFrequencies([], [], z.long(), z.double())
    best, arg = frac.max(dim=0)
    alive = norms > 0  # not constant over the grid
    freqs = torch.where(alive, arg + 1, torch.zeros_like(arg))
    counts = torch.bincount(freqs[alive], minlength=p // 2)
    keys = sorted((k for k in range(1, p // 2) if counts[k] > 0), key=lambda k: (-counts[k], k))
    return NeuronFrequencies(
        key_freqs=[int(k) for k in keys],
        counts=[int(counts[k]) for k in keys],
        neuron_freqs=freqs,
        frac_explained=torch.where(alive, best, torch.zeros_like(best)),
    )
