"""Routing-pathway metrics for mixture-of-experts models (Li et al. 2025, "Where to find
grokking in LLM pretraining? Monitor memorization-to-generalization without test").

Li et al. watch the *pathway* of each training sample, its expert choices through the
layers, and find that pathways become shared across samples and simpler within a sample as
the model moves from memorising to generalising, with no test set needed. Their code is not
public, so grokspec fixes the formulas as follows:

- **Pathway** of a sample: the sequence, layer by layer and within a layer position by
  position (operand tokens, then ``=``), of the *set* of experts the router picked (top-k;
  the ids sorted, so the order of the k picks does not matter). Length = layers x positions.
- ``progress/pathway_distance``: mean over pairs of samples *with the same label* of the
  normalised edit distance between their pathways, ``Levenshtein(a, b) / max(|a|, |b|)``
  (each element of a pathway is one symbol; substitution, insertion and deletion cost 1).
  0 = every same-class pair routes identically; falls as routes become shared. At most
  ``MAX_PAIRS`` pairs, taken in a fixed order, bound the cost.
- ``progress/pathway_consistency``: for each sample and each pair of consecutive layers
  (l, l+1), the cosine similarity between the sample's *gate-weighted expert output* at
  the answer (last) position in the two layers, ``h_l = sum_{e in topk} g_e * expert_e(a_l)``
  (exactly the block's MoE output); averaged over samples and layer pairs. Needs >= 2 layers.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

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
    """Mean normalised edit distance over same-label pairs (0.0 when there is no pair)."""
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


def pathways_of(model: nn.Module, x: torch.Tensor) -> tuple[list[Pathway], list[torch.Tensor]]:
    """Pathways and gate-weighted expert outputs at the last position, per layer.

    Relies on the moe_transformer's ``routing(tokens)`` (ids, gates per layer) and, for the
    expert outputs, on each block's ``ln2`` (the MoE input) and ``experts`` modules.
    """
    blocks = list(getattr(model, "blocks", []))
    inputs: dict[int, torch.Tensor] = {}
    hooks = []
    for i, blk in enumerate(blocks):
        ln2 = getattr(blk, "ln2", None)
        if isinstance(ln2, nn.Module) and hasattr(blk, "experts"):
            hooks.append(
                ln2.register_forward_hook(lambda _m, _i, out, i=i: inputs.__setitem__(i, out))
            )
    try:
        routing = model.routing(x)
    finally:
        for h in hooks:
            h.remove()
    routes = pathways_from_routing([ids for ids, _ in routing])
    outputs: list[torch.Tensor] = []
    if len(inputs) == len(blocks) == len(routing):
        with torch.no_grad():
            for i, (ids, gates) in enumerate(routing):
                a = inputs[i][:, -1]  # (B, d): the answer position's MoE input
                ids_last, g_last = ids[:, -1], gates[:, -1]  # (B, k)
                h = torch.zeros_like(a)
                for e, expert in enumerate(blocks[i].experts):
                    rows, slot = (ids_last == e).nonzero(as_tuple=True)
                    if rows.numel():
                        h.index_add_(0, rows, g_last[rows, slot, None] * expert(a[rows]))
                outputs.append(h)
    return routes, outputs
