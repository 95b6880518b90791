"""Decoder-only transformer for token tasks (Power et al. 2022; Nanda et al. 2023).

Input ``x y =`` (or ``x op y =`` with ``operator_token``): the dataset's operand tokens plus
an ``=`` token (and an operator token) added here; the answer is read from the last position.

The papers' models differ in choices that change *what* the model learns, not only how fast:
the scale of the position embedding (N(0, 1) as ``nn.Embedding`` draws it, or N(0, 1/d)), the
operator token, where the residual is taken from, attention biases and their init, the
activation, the output vocabulary, and how every weight is drawn. Each is a field here with a
documented default, so a paper spec states its model instead of inheriting ours
(``specs/papers/lee2024.yaml``, ``nanda2023.yaml``; ``tests/test_paper_models.py`` checks them
against the authors' code, parameter by parameter).

Two exact shortcuts make a step cheaper than the textbook
model's (bench/throughput.py; tests/test_learner_speedups.py checks both against it):

- Only the last position's output is ever used, so the last layer computes its attention
  query, MLP and unembedding for that position alone (``last_position_only``).
- The first layer's input at a position depends only on (position, token): there are
  ``positions x tokens`` such pairs, far fewer than
  the batch's positions. Its LayerNorm and Q/K/V projections are computed once on that table
  and gathered per sample, instead of once per sample and position.
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


class TransformerSpec(LearnerSpecBase):
    """A small causal transformer. The default sizes are Nanda et al.'s one-layer model; its
    initialisation (``init: torch``) is torch's, not Nanda's (``init: nanda2023``)."""

    kind: Literal["transformer"] = "transformer"
    input_kinds: ClassVar[frozenset[str]] = frozenset({"tokens"})
    tasks: ClassVar[frozenset[str]] = frozenset({"classification"})
    provides: ClassVar[frozenset[str]] = frozenset({PROBES, TOKEN_EMBEDDINGS, PARAMETERS})
    layers: int = Field(default=1, ge=1, le=24, description="Number of transformer blocks.")
    d_model: int = Field(default=128, ge=1, description="Residual stream width.")
    heads: int = Field(default=4, ge=1, description="Attention heads; must divide d_model.")
    d_mlp: int = Field(default=512, ge=1, description="Hidden width of each block's MLP.")
    activation: Literal["relu", "gelu"] = Field(default="relu", description="MLP activation.")
    layer_norm: bool = Field(
        default=False,
        description="Pre-layer-norm blocks and a final layer norm. Nanda et al. use none.",
    )
    residual: Literal["pre_ln", "normalized"] = Field(
        default="pre_ln",
        description="pre_ln: h + attn(ln1(h)) (GPT-2 style). normalized: the block replaces the "
        "stream by ln1(h) and adds attention to it, h = ln1(h); h = h + attn(h), as the "
        "Grokfast code's Block does (needs layer_norm: true).",
    )
    operator_token: bool = Field(
        default=False,
        description="Put an operator token between the two operands: `x op y =` (Power et al.; "
        "the Grokfast code), instead of `x y =` (Nanda et al.). Needs two operand tokens.",
    )
    output: Literal["classes", "vocabulary"] = Field(
        default="classes",
        description="Unembed to the dataset's classes, or to every input token (operands, "
        "`=`, and the operator token if any): p + 2 outputs in the Grokfast code, p + 1 in "
        "Nanda et al.'s. Labels are the operand tokens either way.",
    )
    init: Literal["torch", "nanda2023"] = Field(
        default="torch",
        description="How linear maps are drawn. torch: nn.Linear's defaults. nanda2023: Nanda "
        "et al.'s code, N(0, 1/d_model) for attention and both MLP maps, N(0, 1/outputs) for "
        "the unembedding, zero MLP biases.",
    )
    attention_init: Literal["linear", "xavier"] = Field(
        default="linear",
        description="(init: torch only) linear: nn.Linear's init for Q, K, V. xavier: "
        "nn.MultiheadAttention's: xavier-uniform over the fused (3d, d) in-projection, zero "
        "in- and out-projection biases (the Grokfast code).",
    )
    attention_bias: bool = Field(
        default=False,
        description="Biases on the Q, K, V and output projections (nn.MultiheadAttention has "
        "them; Nanda et al.'s attention has none).",
    )
    token_init: Literal["unit", "scaled"] = Field(
        default="unit",
        description="Token embedding drawn N(0, 1) (unit, nn.Embedding's) or N(0, 1/d_model) "
        "(scaled, Nanda et al.'s).",
    )
    position_init: Literal["unit", "scaled"] = Field(
        default="scaled",
        description="Position embedding drawn N(0, 1) (unit: the Grokfast code's nn.Embedding) "
        "or N(0, 1/d_model) (scaled: Nanda et al.'s). The scale decides whether the model "
        "picks up the commutativity shortcut on x*y (tests/test_paper_models.py).",
    )
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0, description="Dropout probability.")
    last_position_only: bool = Field(
        default=True,
        description="Compute the last layer only at the answer position (same outputs, "
        "faster). False runs every position, as a naive implementation would.",
    )

    @model_validator(mode="after")
    def _heads_divide(self) -> TransformerSpec:
        if self.d_model % self.heads:
            divisors = [h for h in range(1, min(self.d_model, 16) + 1) if self.d_model % h == 0]
            raise ValueError(
                f"d_model={self.d_model} is not divisible by heads={self.heads} "
                f"(valid heads for this d_model: {divisors})"
            )
        return self

    @model_validator(mode="after")
    def _fields_apply(self) -> TransformerSpec:
        """Reject a field that would do nothing in this combination (never ignored silently)."""
        if self.residual == "normalized" and not self.layer_norm:
            raise field_error("residual", "residual: normalized takes the residual from ln1(h); "
                              "it needs layer_norm: true (or use residual: pre_ln)")
        if self.init == "nanda2023" and "attention_init" in self.model_fields_set:
            raise field_error("attention_init", "init: nanda2023 draws attention weights "
                              "itself; attention_init applies to init: torch only (remove it)")
        return self

    def sequence_length(self, operands: int) -> int:
        """Positions the model sees for ``operands`` dataset tokens: operands, the operator
        token if any, and ``=``."""
        return operands + 1 + int(self.operator_token)

    def check_experiment(self, experiment: Experiment) -> None:
        ds = experiment.dataset
        if self.output == "vocabulary" and not type(ds).classes_are_tokens:
            raise field_error("learner.output", "output: vocabulary unembeds to the input "
                              f"tokens, but dataset kind '{ds.kind}' has classes that are not "
                              "tokens (use output: classes)")

    def check_dataset(self, dataset: Dataset) -> None:
        if dataset.input_kind != "tokens" or dataset.task != "classification":
            raise ValueError(
                "the transformer reads token sequences and predicts a class; this dataset has "
                f"{dataset.input_kind} inputs for {dataset.task} (use kind: mlp)"
            )
        if self.operator_token and dataset.input_dim != 2:
            raise ValueError(f"operator_token puts a token between two operands; this dataset "
                             f"has {dataset.input_dim} input tokens (use operator_token: false)")
        if self.output == "vocabulary" and (dataset.n_classes or 0) > (dataset.vocab_size or 0):
            raise ValueError(f"output: vocabulary unembeds to the input tokens, but the "
                             f"{dataset.n_classes} classes are not all tokens (use output: "
                             "classes)")

    def build(self, dataset: Dataset) -> nn.Module:
        from grokspec.learners.models.transformer import Transformer

        self.check_dataset(dataset)
        assert dataset.vocab_size is not None and dataset.n_classes is not None
        return Transformer(self, dataset.vocab_size, dataset.input_dim, dataset.n_classes)


def __getattr__(name: str) -> Any:
    """The torch modules live in :mod:`grokspec.learners.models.transformer`; importing one from
    here (``from grokspec.learners.transformer import Block``) still works and imports torch
    only then."""
    if name in _MODELS:
        from grokspec.learners.models import transformer as models

        return getattr(models, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_MODELS = frozenset({
    "Block", "Transformer"
})
