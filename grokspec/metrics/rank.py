"""Feature rank (Fan et al. 2024, "Deep Grokking"): how many directions a layer really uses.

Fan et al. track the rank of each layer's features over training and find it falls at each
generalisation jump (and rises in between: a double descent of feature rank), so it is a
candidate early indicator. grokspec takes a layer's *pre-activations* (the output of the
linear map before its nonlinearity) on a fixed batch of training inputs and reports the
numerical rank of their covariance.

Numerical rank needs a tolerance: an exactly rank-r covariance computed in float32 has
d - r tiny but non-zero eigenvalues. ``numerical_rank`` counts singular values of the
centred matrix above ``tol`` times the largest one (equivalently, covariance eigenvalues above
``tol^2`` times the largest), the convention of ``numpy.linalg.matrix_rank`` with an explicit
relative tolerance.
"""

from __future__ import annotations

import torch


def numerical_rank(features: torch.Tensor, tol: float = 1e-3) -> int:
    """Rank of the covariance of ``features`` (n samples x d features), relative ``tol``.

    The mean over samples is removed first (a covariance), so a constant offset shared by all
    samples adds no rank. Returns 0 for a matrix with no variance.
    """
    if features.ndim != 2:
        raise ValueError(f"features must be (n, d), got shape {tuple(features.shape)}")
    h = features.detach().to(torch.float64)
    h = h - h.mean(dim=0, keepdim=True)
    s = torch.linalg.svdvals(h)
    if s.numel() == 0 or float(s[0]) == 0.0:
        return 0
    return int((s > tol * s[0]).sum())
