"""Routing-pathway metrics for mixture-of-experts models (Li et al. 2025, "Where to find
grokking in LLM pretraining? Monitor memorization-to-generalization without test").

Li et al. watch the *pathway* of each training sample, its expert choices through the
layers, and find that pathways become shared across samples and simpler within a sample as
the model moves from memorising to generalising, with no test set needed. Their code is not
public, so grokspec fixes the formulas as follows:

- **Pathway** of a sample: the sequence, layer by layer and within a layer position by
  position (operand tokens, then ``=``), of the *set* of experts the router picked (top-k;
  the ids sorted, so the order of the k picks does not matter). Length = layers x positions.
- ``progress/pathway_distance``: mean over pairs of samples of the normalised edit distance
  between their pathways, ``Levenshtein(a, b) / max(|a|, |b|)`` (each element of a pathway is
  one symbol; substitution, insertion and deletion cost 1). Which pairs, by
  ``analysis.pathway_pairs``: ``li2025`` (the default, :func:`pathway_distance_all_pairs`),
  *all* pairs of samples, as in Li et al.'s pathway similarity between samples (their
  D_path averages the edit distance over every pair of a data group, whatever the label);
  ``same_label`` (grokspec's earlier variant, :func:`pathway_distance`), pairs with the same
  label only. 0 = every pair routes identically; falls as routes become shared. At most
  ``MAX_PAIRS`` pairs bound the cost: ``same_label`` takes them in a fixed order, ``li2025``
  a fixed uniform sample (seeded, so every evaluation uses the same pairs).
- ``progress/pathway_consistency``: for each sample and each pair of consecutive layers
  (l, l+1), the cosine similarity between the sample's *gate-weighted expert output* at
  the answer (last) position in the two layers, ``h_l = sum_{e in topk} g_e * expert_e(a_l)``
  (exactly the block's MoE output); averaged over samples and layer pairs. Needs >= 2 layers.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from grokspec.learners.contract import LayerRouting

MAX_PAIRS = 4096

Pathway = tuple[tuple[int, ...], ...]


def edit_distance(a: Sequence, b: Sequence) -> int:
    """Levenshtein distance between two sequences of hashable symbols."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, sa in enumerate(a, 1):
        cur = [i]
        for j, sb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (sa != sb)))
        prev = cur
    return prev[-1]


def normalised_edit_distance(a: Sequence, b: Sequence) -> float:
    n = max(len(a), len(b))
    return edit_distance(a, b) / n if n else 0.0


def pathway_distance(pathways: Sequence[Pathway], labels: torch.Tensor) -> float:
    """grokspec's ``same_label`` variant: mean normalised edit distance over same-label pairs
    (0.0 when there is no pair)."""
    by_label: dict[int, list[int]] = {}
    for i, y in enumerate(labels.tolist()):
        by_label.setdefault(int(y), []).append(i)
    total, count = 0.0, 0
    for members in by_label.values():
        for a in range(len(members)):
            for b in range(a + 1, len(members)):
                if count >= MAX_PAIRS:
                    break
                total += normalised_edit_distance(pathways[members[a]], pathways[members[b]])
                count += 1
    return total / count if count else 0.0


def all_pairs(n: int, max_pairs: int = MAX_PAIRS) -> list[tuple[int, int]]:
    """Every pair ``(a, b)``, ``a < b < n``; above ``max_pairs``, a fixed uniform sample of them.

    The sample is drawn without replacement from a generator seeded with 0, so it is the same
    at every evaluation and in every run (the mean over it is an unbiased estimate of the mean
    over all pairs).
    """
    total = n * (n - 1) // 2
    if total <= max_pairs:
        return [(a, b) for a in range(n) for b in range(a + 1, n)]
    picks = torch.randperm(total, generator=torch.Generator().manual_seed(0))[:max_pairs]
    # Pair index k in row-major order of the upper triangle -> (a, b).
    starts = [a * n - a * (a + 1) // 2 for a in range(n)]  # index of pair (a, a+1)
    out = []
    for k in sorted(picks.tolist()):
        a = bisect.bisect_right(starts, k) - 1
        out.append((a, a + 1 + k - starts[a]))
    return out


def pathway_distance_all_pairs(pathways: Sequence[Pathway]) -> float:
    """Li et al. 2025's pathway distance: mean normalised edit distance over all sample pairs.

    (0.0 with fewer than two samples.) Above ``MAX_PAIRS`` pairs, over the fixed sample of
    :func:`all_pairs`.
    """
    pairs = all_pairs(len(pathways))
    if not pairs:
        return 0.0
    total = sum(normalised_edit_distance(pathways[a], pathways[b]) for a, b in pairs)
    return total / len(pairs)


def pathway_distance_by(
    pairs: str, pathways: Sequence[Pathway], labels: torch.Tensor
) -> float:
    """The pathway distance under ``analysis.pathway_pairs`` (``li2025`` or ``same_label``)."""
    if pairs == "li2025":
        return pathway_distance_all_pairs(pathways)
    if pairs == "same_label":
        return pathway_distance(pathways, labels)
    raise ValueError(f"unknown pathway_pairs {pairs!r} (valid: ['li2025', 'same_label'])")


def pathway_consistency(outputs: Sequence[torch.Tensor]) -> float:
    """Mean cosine similarity of per-sample vectors at consecutive layers.

    ``outputs[l]`` is (batch, d): each sample's gate-weighted expert output at layer l.
    """
    if len(outputs) < 2:
        raise ValueError("pathway consistency needs at least two layers")
    sims = [
        F.cosine_similarity(a.double(), b.double(), dim=-1).mean()
        for a, b in zip(outputs[:-1], outputs[1:], strict=True)
    ]
    return float(torch.stack(sims).mean())


def pathways_from_routing(ids_per_layer: Sequence[torch.Tensor]) -> list[Pathway]:
    """Pathways from per-layer expert ids, each (batch, positions, top_k)."""
    ids = torch.stack([t.sort(dim=-1).values for t in ids_per_layer], dim=1)  # (B, L, T, k)
    b = ids.shape[0]
    flat = ids.reshape(b, -1, ids.shape[-1]).tolist()
    return [tuple(tuple(step) for step in sample) for sample in flat]


def pathways_of(routing: Sequence[LayerRouting]) -> tuple[list[Pathway], list[torch.Tensor]]:
    """Pathways, and the gate-weighted expert outputs at the last (answer) position per layer,
    from a model's routing of a batch (the learner contract's ``routing(tokens)``)."""
    routes = pathways_from_routing([r.ids for r in routing])
    outputs = [r.mixed[:, -1] for r in routing]  # (B, d) per layer
    return routes, outputs
