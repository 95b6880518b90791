"""Feature rank (Fan, Pascanu, Jaggi 2024, "Deep Grokking: Would Deep Neural Networks
Generalize Better?"): how many directions a layer really uses.

Fan et al. track the rank of each layer's features over training and find it falls at each
generalisation jump (and rises in between: a double descent of feature rank), so it is a
candidate early indicator. Two definitions, selected by ``analysis.rank_definition``:

``fan2024`` (the default, :func:`fan2024_rank`): the paper's (Sec. 2, "Numerical rank of
    representations"; their code is not public): the singular values of the covariance
    matrix of the *output activation* ``W`` (n samples x d units) of an internal layer,
    counted above a relative tolerance ``max(n, d) * eps``, with ``eps`` the machine epsilon
    of W's dtype, "the tolerance of PyTorch's ``matrix_rank`` function" (their footnote 4).
    The paper does not centre: the covariance is ``W^T W``. The output activation is the
    layer's value after its nonlinearity.

``centred_preactivation`` (grokspec's earlier variant, :func:`numerical_rank`): the
    *pre-activations* (before the nonlinearity), mean removed, singular values above
    ``analysis.rank_tolerance`` (1e-3) times the largest.

The two can differ in both directions: a ReLU's zeros can add or remove directions, centring
removes at most one, and the tolerances differ (float32, n = d = 512: ``fan2024`` counts
singular values of W above ~7.8e-3 of the largest, since those of ``W^T W`` are squares).
"""

from __future__ import annotations

import torch


def numerical_rank(features: torch.Tensor, tol: float = 1e-3) -> int:
    """Rank of the covariance of ``features`` (n samples x d features), relative ``tol``.

    grokspec's ``centred_preactivation`` definition. The mean over samples is removed first
    (a covariance), so a constant offset shared by all samples adds no rank. Singular values
    of the centred matrix above ``tol`` times the largest (covariance eigenvalues above
    ``tol^2`` times the largest) count. Returns 0 for a matrix with no variance.
    """
    if features.ndim != 2:
        raise ValueError(f"features must be (n, d), got shape {tuple(features.shape)}")
    h = features.detach().to(torch.float64)
    h = h - h.mean(dim=0, keepdim=True)
    s = torch.linalg.svdvals(h)
    if s.numel() == 0 or float(s[0]) == 0.0:
        return 0
    return int((s > tol * s[0]).sum())


def fan2024_tolerance(n: int, d: int, dtype: torch.dtype) -> float:
    """Fan et al.'s relative tolerance ``max(n, d) * eps(dtype)`` for an n x d feature matrix."""
    return max(n, d) * torch.finfo(dtype).eps


def fan2024_rank(activations: torch.Tensor) -> int:
    """Fan et al. 2024's feature rank of a layer's output activations (n samples x d units).

    The number of singular values of the covariance ``C = W^T W`` (d x d, not centred) above
    ``max(n, d) * eps(W.dtype)`` times the largest. They are computed in float64, as the squared
    singular values of ``W`` (so that the count does not depend on float32 round-off in a
    product), while the tolerance keeps the epsilon of the activations' own dtype, as in the
    paper. Returns 0 for
    an all-zero matrix (a layer of dead units).
    """
    if activations.ndim != 2:
        raise ValueError(
            f"activations must be (n, d), got shape {tuple(activations.shape)}"
        )
    n, d = activations.shape
    dtype = activations.dtype if activations.is_floating_point() else torch.float32
    w = activations.detach().to(torch.float64)
    # The singular values of C = W^T W are the squares of W's: taken from W directly, C is
    # never formed (its float64 product cost ~7x the decomposition on a 512 x 512 layer) and
    # the small ones keep their precision. Largest first.
    s = torch.linalg.svdvals(w) ** 2
    if s.numel() == 0 or float(s[0]) == 0.0:
        return 0
    return int((s > fan2024_tolerance(n, d, dtype) * s[0]).sum())
