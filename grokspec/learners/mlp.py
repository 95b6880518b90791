"""Multi-layer perceptron (Liu et al. 2022 "Omnigrok", Kumar et al. 2024, Fan et al. 2024).

Token inputs are one-hot encoded (or embedded) and concatenated; feature inputs are used
as they are. ``init_scale`` multiplies every initial weight (Omnigrok's large initialisation,
Fan et al.'s alpha). ``output_scale`` is Kumar et al.'s laziness knob instead: the network is
centred on a frozen copy of its initial self and its output scaled by alpha, trained on the
gradient of L / alpha^2 (see :func:`lazy_scaled`): large alpha = lazy, small = rich.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from grokspec.learners.base import LearnerSpecBase
from grokspec.learners.contract import PARAMETERS, PROBES, TOKEN_EMBEDDINGS

if TYPE_CHECKING:
    from torch import nn

    from grokspec.datasets.base import Dataset


class MLPSpec(LearnerSpecBase):
    """Fully connected network: ``depth`` hidden layers of ``width`` units."""

    kind: Literal["mlp"] = "mlp"
    provides: ClassVar[frozenset[str]] = frozenset({PROBES, TOKEN_EMBEDDINGS, PARAMETERS})
    depth: int = Field(default=1, ge=1, le=64, description="Number of hidden layers.")
    width: int = Field(default=512, ge=1, description="Units per hidden layer.")
    activation: Literal["relu", "gelu", "tanh", "silu", "quadratic"] = Field(
        default="relu", description="Hidden activation; `quadratic` is x^2."
    )
    input_encoding: Literal["one_hot", "embedding"] = Field(
        default="one_hot",
        description="For token inputs: one-hot per token, or a learned embedding per token "
        "(concatenated). Ignored for feature inputs.",
    )
    embed_dim: int = Field(
        default=128, ge=1, description="Embedding size (input_encoding: embedding)."
    )
    init_scale: float = Field(
        default=1.0, gt=0.0, description="Multiplier on PyTorch's default initial weights."
    )
    output_scale: float | None = Field(
        default=None,
        gt=0.0,
        description="Kumar et al. 2024's laziness knob alpha (after Chizat et al. 2019): the "
        "network becomes f(x) = alpha * (net(x) - net_0(x)), centred on a frozen copy of its "
        "initial self (f = 0 at initialisation), trained on the gradient of L / alpha^2 "
        "(their loss convention, so the function moves at an alpha-independent rate while "
        "the parameters move ~1/alpha: large alpha = lazy, small = rich). The logged loss "
        "is L itself. Pair with optimizer kind gd (their plain gradient descent). Omit for "
        "a plain network.",
    )
    bias: bool = Field(default=True, description="Use biases in the linear layers.")
    dtype: Literal["float32", "float64"] = Field(
        default="float32", description="Parameter precision (float64 for very deep nets)."
    )

    def build(self, dataset: Dataset) -> nn.Module:
        from grokspec.learners.models.mlp import MLP

        return MLP(self, dataset)


def __getattr__(name: str) -> Any:
    """The torch modules live in :mod:`grokspec.learners.models.mlp`; importing one from
    here (``from grokspec.learners.mlp import ACTIVATIONS``) still works and imports torch
    only then."""
    if name in _MODELS:
        from grokspec.learners.models import mlp as models

        return getattr(models, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_MODELS = frozenset({
    "ACTIVATIONS", "MLP", "OneHotLinear", "Quadratic", "_under_vmap", "lazy_scaled"
})
