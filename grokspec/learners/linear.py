"""Linear and logistic models trained by gradient descent (Miller et al. 2023; Levi et al. 2023).

The simplest learner that groks: Levi et al. 2023 ("Grokking in linear estimators") train a
linear student on a linear teacher's outputs by gradient descent and count a test output as
correct when it lies within a tolerance of the teacher's; test accuracy then jumps long after
train accuracy, with no feature learning at all. Miller et al. 2023 show the same for linear
regression with spurious input dimensions.

Regression: ``y = W x + b`` (one output per target column), trained on MSE. Classification:
multinomial logistic regression (one logit per class, cross-entropy or ``train.loss: mse``).
Token inputs are one-hot encoded and concatenated (:mod:`grokspec.learners.encoding`), so on
modular arithmetic this runs, but cannot generalize (the answer is not linear in the one-hot
operands) - a useful negative control in a cross-model comparison.

L2 regularisation is ``train.optimizer.weight_decay``: with ``kind: sgd`` or ``adam`` it is
added to the gradient (coupled L2, the ridge penalty ``wd/2 * ||W||^2``); with ``adamw`` it is
decoupled decay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from grokspec.learners.base import LearnerSpecBase
from grokspec.learners.contract import PARAMETERS, TOKEN_EMBEDDINGS

if TYPE_CHECKING:
    from torch import nn

    from grokspec.datasets.base import Dataset


class LinearSpec(LearnerSpecBase):
    """A linear map from inputs to outputs (Levi et al. 2023): regression, or logistic
    regression for classes. Token inputs are read as concatenated one-hot codes."""

    kind: Literal["linear"] = "linear"
    provides: ClassVar[frozenset[str]] = frozenset({TOKEN_EMBEDDINGS, PARAMETERS})
    bias: bool = Field(default=True, description="Learn an intercept per output.")
    init_scale: float = Field(
        default=1.0,
        ge=0.0,
        description="Multiplier on PyTorch's default initial weights (uniform in "
        "+-1/sqrt(fan_in)); 0 starts from the zero map, as a student in Levi et al. 2023 "
        "that starts at the origin.",
    )
    dtype: Literal["float32", "float64"] = Field(
        default="float32",
        description="Parameter precision. float64 resolves the slow late phase of gradient "
        "descent on an ill-conditioned design (small eigenvalues) without rounding noise.",
    )

    def build(self, dataset: Dataset) -> nn.Module:
        from grokspec.learners.models.linear import Linear

        return Linear(self, dataset)


def __getattr__(name: str) -> Any:
    """The torch modules live in :mod:`grokspec.learners.models.linear`; importing one from
    here (``from grokspec.learners.linear import Linear``) still works and imports torch
    only then."""
    if name in _MODELS:
        from grokspec.learners.models import linear as models

        return getattr(models, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_MODELS = frozenset({
    "Linear"
})
