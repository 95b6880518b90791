"""The learner contract: what a model shows the progress measures, declared, never guessed.

Progress measures (:mod:`grokspec.metrics.measures`) need to look inside a model: its hidden
pre-activations (feature rank), its token embeddings (Fourier measures), its expert routing
(MoE pathways), its trainable parameters (weight norms, movement, NTK). Rather than search a
model for attributes with familiar names, every model *declares* what it provides in
``provides`` and implements the matching methods; a measure reads a model only through them,
so a third-party model that implements the contract is measured like a built-in one, and one
that does not is rejected with a message naming the missing piece.

The contract, in the style of TransformerLens' named hook points:

``provides: frozenset[str]``
    The capabilities below that this model implements.
``probes() -> dict[str, Probe]`` (capability ``probes``)
    Named probe points, one per hidden layer, in forward order: ``Probe(pre, post)`` are the
    modules whose forward *outputs* are the layer's pre-activations (input of the
    nonlinearity) and post-activations (its output), e.g.
    ``{"net.0": Probe(first_linear, first_activation)}`` (TransformerLens' ``hook_pre`` /
    ``hook_post``). The name is the metric suffix (``progress/feature_rank/<name>``). Forward
    hooks on these modules read the values during any forward pass, so the evaluation's own
    pass serves the measures (:class:`grokspec.metrics.measures.EvalCapture`). An output's
    rows are the samples (any middle axes are positions), except where a module sees only
    some tokens (a mixture's expert): then rows are those tokens.
``token_embeddings() -> list[Tensor]`` (capability ``token_embeddings``)
    The (vocab, d) input representation of each input position's tokens: one matrix per
    position, or a single matrix when all positions share one embedding (a transformer).
    For a one-hot first layer this is its weight's column block per position.
``routing(tokens) -> list[LayerRouting]`` (capability ``routing``)
    Per layer of a mixture of experts: expert ids and gates per token, and the gate-weighted
    expert output (the block's MoE output) per token.
``penalty() -> Tensor`` (capability ``penalty``)
    An extra training-loss term computed after the forward pass (the Bayesian net's KL, the
    MoE load-balancing loss); the training loop adds it.
capability ``parameters``
    ``parameters()`` are the learned weights, trained by gradients: weight norms per module,
    parameter movement and the NTK are taken over them.

Learner *specs* declare the same set in :meth:`LearnerSpecBase.provides` so that validation
rejects a measure the learner cannot serve before anything is built; a test checks that each
built model provides what its spec declares.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, NamedTuple

from grokspec.spec.lazy import lazy_module

if TYPE_CHECKING:
    import torch
    from torch import nn
else:  # the learner specs import this module: validating a spec must not import torch
    torch = lazy_module("torch")
    nn = lazy_module("torch.nn")

PROBES = "probes"
TOKEN_EMBEDDINGS = "token_embeddings"
ROUTING = "routing"
PENALTY = "penalty"
PARAMETERS = "parameters"

#: capability -> what a model must implement to provide it (used in error messages).
CAPABILITIES: dict[str, str] = {
    PROBES: "probes() -> dict[str, Probe]: per hidden layer, the modules whose outputs are "
    "its pre- and post-activations",
    TOKEN_EMBEDDINGS: "token_embeddings() -> list[Tensor]: the (vocab, d) input embedding "
    "per input position",
    ROUTING: "routing(tokens) -> list[LayerRouting]: expert ids, gates and mixed outputs "
    "per layer",
    PENALTY: "penalty() -> Tensor: an extra loss term of the last forward pass",
    PARAMETERS: "parameters(): learned weights trained by gradients (an nn.Module)",
}


class Probe(NamedTuple):
    """A hidden layer's two probe points: modules whose outputs are its pre-activations and
    its post-activations (the nonlinearity's output)."""

    pre: nn.Module
    post: nn.Module


class LayerRouting(NamedTuple):
    """One mixture-of-experts layer's routing of a batch, every position.

    ``ids`` and ``gates`` are (batch, positions, top_k): the chosen experts (in the router's
    order) and their gate weights; ``mixed`` is (batch, positions, d): the gate-weighted sum
    of the chosen experts' outputs, exactly what the block adds to its residual stream.
    """

    ids: torch.Tensor
    gates: torch.Tensor
    mixed: torch.Tensor


class ContractError(TypeError):
    """A model does not provide what a measure reads."""


class Probed:
    """Mixin for grokspec's models: the contract's methods, defaulting to "not provided".

    A model lists its capabilities in ``provides`` and overrides the methods it provides;
    the defaults raise, so a declared-but-missing method fails loudly in the contract test.
    """

    provides: ClassVar[frozenset[str]] = frozenset()

    def probes(self) -> dict[str, Probe]:
        raise ContractError(f"{type(self).__name__} does not provide probes()")

    def token_embeddings(self) -> list[torch.Tensor]:
        raise ContractError(f"{type(self).__name__} does not provide token_embeddings()")


def capabilities(model: object) -> frozenset[str]:
    """The capabilities a model declares (none for an object outside the contract)."""
    declared = getattr(model, "provides", None)  # the contract's one declared attribute
    return frozenset(declared) if isinstance(declared, (set, frozenset)) else frozenset()


def require(model: object, needs: frozenset[str] | set[str], measure: str) -> None:
    """Raise :class:`ContractError` naming what ``model`` lacks for ``measure``."""
    missing = sorted(set(needs) - capabilities(model))
    if PARAMETERS in needs and not isinstance(model, nn.Module):
        missing = sorted(set(missing) | {PARAMETERS})
    if missing:
        what = "; ".join(f"{m}: {CAPABILITIES[m]}" for m in missing)
        raise ContractError(
            f"the measure '{measure}' cannot read {type(model).__name__}: it does not provide "
            f"{what} (declare it in `provides` and implement it; see "
            "grokspec.learners.contract)"
        )


def penalty_term(model: object) -> torch.Tensor | None:
    """The model's extra loss term for the last forward pass, if it declares one."""
    if PENALTY in capabilities(model):
        return model.penalty()  # type: ignore[attr-defined]
    return None
