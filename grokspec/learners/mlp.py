"""Multi-layer perceptron (Liu et al. 2022 "Omnigrok", Kumar et al. 2024, Fan et al. 2024).

Token inputs are one-hot encoded (or embedded) and concatenated; feature inputs are used
as they are. ``init_scale`` multiplies every initial weight (Omnigrok's large initialisation,
Fan et al.'s alpha). ``output_scale`` is Kumar et al.'s laziness knob instead: the network is
centred on a frozen copy of its initial self and its output scaled by alpha, trained on the
gradient of L / alpha^2 (see :func:`lazy_scaled`): large alpha = lazy, small = rich.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, model_validator

from grokspec.learners.base import LearnerSpecBase
from grokspec.learners.contract import PARAMETERS, PROBES, TOKEN_EMBEDDINGS
from grokspec.spec.base import field_error

if TYPE_CHECKING:
    from torch import nn

    from grokspec.datasets.base import Dataset
    from grokspec.spec.experiment import Experiment


class MLPSpec(LearnerSpecBase):
    """Fully connected network: ``depth`` hidden layers of ``width`` units."""

    kind: Literal["mlp"] = "mlp"
    provides: ClassVar[frozenset[str]] = frozenset({PROBES, TOKEN_EMBEDDINGS, PARAMETERS})
    depth: int = Field(default=1, ge=1, le=64, description="Number of hidden layers.")
    width: int = Field(default=512, ge=1, description="Units per hidden layer.")
    activation: Literal["relu", "gelu", "tanh", "silu", "quadratic", "kumar2024"] = Field(
        default="relu",
        description="Hidden activation; `quadratic` is x^2; `kumar2024` is Kumar et al. "
        "2024's phi(z) = z + (eps/2) z^2 (eps: activation_eps), a nearly linear network whose "
        "small quadratic part must grow to learn a quadratic teacher.",
    )
    activation_eps: float = Field(
        default=0.02,
        gt=0.0,
        description="eps of activation kumar2024 (Kumar et al.'s Fig. 1: 0.02); rejected with "
        "any other activation.",
    )
    readout: Literal["trained", "fixed_mean"] = Field(
        default="trained",
        description="trained: a linear output layer. fixed_mean: the output is the mean of the "
        "last hidden layer's units, nothing trained (Kumar et al.'s f(x) = (1/N) sum_i "
        "phi(w_i . x)); regression only.",
    )
    weight_init: Literal["torch", "standard_normal"] = Field(
        default="torch",
        description="torch: nn.Linear's default draw. standard_normal: hidden weights "
        "N(0, 1), biases 0 (the mean-field/NTK convention of Kumar et al., whose inputs are "
        "N(0, I/D)). init_scale multiplies either.",
    )
    input_encoding: Literal["one_hot", "embedding", "embedding_sum"] = Field(
        default="one_hot",
        description="For token inputs: one-hot per token, a learned embedding per token "
        "(concatenated over positions), or a learned embedding per token summed over "
        "positions (Liu et al. 2022's toy: the decoder reads E_x + E_y). Ignored for "
        "feature inputs.",
    )
    embed_dim: int = Field(
        default=128, ge=1, description="Embedding size (input_encoding: embedding or "
        "embedding_sum; Liu et al.'s toy uses 1)."
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

    @model_validator(mode="after")
    def _fields_apply(self) -> MLPSpec:
        if "activation_eps" in self.model_fields_set and self.activation != "kumar2024":
            raise field_error("activation_eps", f"activation_eps is the eps of activation "
                              f"kumar2024; activation {self.activation} does not use it "
                              "(remove it, or set activation: kumar2024)")
        if "embed_dim" in self.model_fields_set and self.input_encoding == "one_hot":
            raise field_error("embed_dim", "embed_dim is the size of a learned embedding; "
                              "input_encoding one_hot has none (remove it, or set "
                              "input_encoding: embedding or embedding_sum)")
        return self

    def parameter_groups(self) -> dict[str, str]:
        """A learned embedding and the layers after it (Liu et al. 2022 give the
        representation and the decoder their own learning rate and weight decay)."""
        if self.input_encoding == "one_hot":
            return {}
        return {"embedding": "the token embedding", "decoder": "every layer after it"}

    def check_experiment(self, experiment: Experiment) -> None:
        fields = self.model_fields_set & {"input_encoding", "embed_dim"}
        if fields and experiment.dataset.input_kind != "tokens":
            name = sorted(fields)[0]
            raise field_error(f"learner.{name}", f"{name} says how tokens are read; dataset kind "
                              f"'{experiment.dataset.kind}' gives feature vectors (remove it)")
        if self.readout == "fixed_mean" and experiment.dataset.task != "regression":
            raise field_error("learner.readout", "readout: fixed_mean averages the hidden "
                              "units into one output: it needs a regression dataset (use "
                              "readout: trained for classification)")

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
    "ACTIVATIONS", "MLP", "MeanReadout", "OneHotLinear", "Quadratic", "KumarActivation",
    "_under_vmap", "lazy_scaled"
})
