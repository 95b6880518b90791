"""Lazy vs rich training (Kumar et al. 2024, "Grokking as the transition from lazy to rich
training dynamics").

In the lazy regime the network behaves like its linearisation: parameters barely move and
the empirical neural tangent kernel (NTK) stays what it was at initialisation. Kumar et al.
read grokking as the late switch to feature learning, visible as the parameters moving away
from their initial values, the NTK changing, and the NTK aligning with the targets. The
kernel functions here are pure; :func:`empirical_ntk` computes a kernel from a torch model.

Definitions (exact):

- ``param_movement = ||theta_t - theta_0||_2 / ||theta_0||_2`` over all parameters.
- ``kernel_change = ||K_t - K_0||_F / ||K_0||_F`` on a fixed batch.
- ``kernel_alignment = <K, Y Y^T>_F / (||K||_F ||Y Y^T||_F)`` with ``Y`` the targets
  (one-hot for classes) centred over the batch. For one scalar target this is the
  ``y^T K y / (||K||_F ||y||^2)`` of Kumar et al.; for one-hot targets it is the kernel-target
  alignment of Cristianini et al. Centring keeps a kernel's constant mode from counting as
  alignment. The value lies in [-1, 1].
- The kernel of a C-output model is the *trace NTK* ``K_ij = sum_c <df_c(x_i), df_c(x_j)>``.
  With ``projections = m > 0`` it is instead the NTK of ``V f`` for a fixed Gaussian
  ``V`` (m x C) scaled by ``1/sqrt(m)``: an unbiased estimate of the trace NTK at m/C of the
  cost, and the same ``V`` at every step so that its change over training is meaningful.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import torch
from torch import nn


def param_movement(initial: Iterable[torch.Tensor], current: Iterable[torch.Tensor]) -> float:
    """``||theta - theta_0|| / ||theta_0||`` over matching parameter tensors."""
    num, den = 0.0, 0.0
    for a, b in zip(initial, current, strict=True):
        a64, b64 = a.detach().to(torch.float64), b.detach().to(torch.float64)
        num += float(((b64 - a64) ** 2).sum())
        den += float((a64**2).sum())
    if den == 0.0:
        return float("inf") if num > 0 else 0.0
    return (num / den) ** 0.5


def kernel_change(k0: torch.Tensor, k: torch.Tensor) -> float:
    """Relative Frobenius change of a kernel since ``k0``."""
    den = float(torch.linalg.matrix_norm(k0.to(torch.float64)))
    return float(torch.linalg.matrix_norm((k - k0).to(torch.float64))) / den if den else 0.0


def targets_matrix(y: torch.Tensor, n_classes: int | None) -> torch.Tensor:
    """Targets as an (n, C) float matrix: one-hot for classes, a column for regression."""
    if n_classes is not None and not torch.is_floating_point(y):
        return torch.nn.functional.one_hot(y, n_classes).to(torch.float64)
    return y.to(torch.float64).reshape(y.shape[0], -1)


def kernel_alignment(k: torch.Tensor, targets: torch.Tensor) -> float:
    """``<K, Y Y^T>_F / (||K||_F ||Y Y^T||_F)`` with ``Y`` (n, C) centred over the batch."""
    y = targets.to(torch.float64)
    y = y - y.mean(dim=0, keepdim=True)
    yy = y @ y.T
    k64 = k.to(torch.float64)
    den = float(torch.linalg.matrix_norm(k64)) * float(torch.linalg.matrix_norm(yy))
    return float((k64 * yy).sum()) / den if den else 0.0


def projection_matrix(n_outputs: int, m: int, seed: int = 0) -> torch.Tensor:
    """Fixed Gaussian (m, C) projection with ``E[V^T V] = I`` (so the kernel is unbiased)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(m, n_outputs, generator=g, dtype=torch.float64) / m**0.5


def empirical_ntk(
    model: nn.Module, x: torch.Tensor, projection: torch.Tensor | None = None
) -> torch.Tensor:
    """The (n, n) empirical NTK of ``model`` on inputs ``x`` (trace over outputs).

    The Jacobian of the batch's (n, outputs) matrix with respect to the parameters, as one
    ``torch.autograd.grad`` with ``is_grads_batched``: the reverse passes are vmapped over the
    n x outputs one-hot cotangents, never over the inputs, so any model whose samples do not
    interact in eval mode works (``F.one_hot``, which vmap over inputs rejects, included).
    (``torch.func.jacrev`` computes the same but imports ``torch._dynamo`` on first use, ~2 s
    of CPU per process.) Memory: n x outputs x parameters floats. Evaluated in eval mode (no
    dropout); the model's mode is restored.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad(), warnings.catch_warnings():
            # vmap has no batching rule for embedding_bag's backward (the one-hot MLP's first
            # layer) and says so once per process; its fallback loop is correct, and rare here.
            warnings.filterwarnings("ignore", message="There is a performance drop")
            out = model(x)
            out = out.reshape(out.shape[0], -1)  # (n, C); scalar regression -> (n, 1)
            if projection is not None:
                out = out @ projection.to(out.dtype).T.to(out.device)
            n, c = out.shape
            eye = torch.eye(n * c, dtype=out.dtype, device=out.device).reshape(n * c, n, c)
            jac = torch.autograd.grad(out, params, eye, is_grads_batched=True, allow_unused=True)
    finally:
        model.train(was_training)
    k = torch.zeros(n, n, dtype=torch.float64, device=x.device)
    for j in jac:
        if j is None:  # a parameter the outputs do not depend on
            continue
        # (outputs, n, p) @ (outputs, p, n) in the parameters' precision (float32: a quarter
        # of float64's time on CPU; the kernel's relative error stays ~1e-6), summed in float64.
        j = j.reshape(n, c, -1).transpose(0, 1)
        k += torch.bmm(j, j.transpose(1, 2)).sum(0).to(torch.float64)
    return k
