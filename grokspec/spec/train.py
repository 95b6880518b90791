"""How a learner is trained: optimizer, loop length, evaluation cadence, early stop, Grokfast.

Plain pydantic models (no torch import), so validating a spec stays cheap. What each field
does at run time is in :mod:`grokspec.training.loop`; which runner honours which feature is
declared by the runners (:mod:`grokspec.training.features`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from grokspec.spec.base import StrictModel, field_error


class GrokfastSpec(StrictModel):
    """Amplify the slow (low-pass) component of the gradient (Lee et al. 2024, Grokfast).

    Defaults alpha 0.98, lamb 2.0: the usage example of the reference repository's README
    (github.com/ironjr/grokfast). The same repository's ``gradfilter_ema`` signature defaults
    to alpha 0.99, lamb 5.0 (a stronger, slower filter; set them here to use those), and its
    ``gradfilter_ma`` to window 100, lamb 5.0. (grokspec issue 7 quotes the two the other
    way round; the code copies we could read have 0.99/5.0 in the signature.)
    """

    filter: Literal["ema", "ma"] = Field(
        default="ema",
        description="ema: exponential moving average of the gradients (Grokfast-EMA, the "
        "paper's main method); ma: mean of the last `window` gradients (Grokfast-MA).",
    )
    alpha: float = Field(
        default=0.98,
        ge=0.0,
        lt=1.0,
        description="EMA momentum in [0, 1): higher = lower cut-off frequency. Used by `ema`.",
    )
    lamb: float = Field(
        default=2.0,
        ge=0.0,
        description="Amplification: g <- g + lamb * filtered(g). 0 turns the filter off.",
    )
    window: int = Field(
        default=100,
        ge=1,
        le=10_000,
        description="Number of past gradients averaged by `ma` (kept in memory: window x "
        "model size). Used by `ma`.",
    )

    @property
    def active(self) -> bool:
        """lamb 0 adds exactly nothing: the filter is off."""
        return self.lamb != 0.0

    def batch_slot(self) -> tuple[str, int] | None:
        """What this filter must share with the others to filter one stacked batch: the kind
        (ema / ma are different computations) and, for ma, the window (one history length
        for the batch). None: off, joins any batch."""
        if not self.active:
            return None
        return (self.filter, self.window if self.filter == "ma" else 0)

    @model_validator(mode="after")
    def _unused_fields(self) -> GrokfastSpec:
        # A window given to `ema` (or alpha to `ma`) would silently do nothing.
        fields = self.model_fields_set
        if self.filter == "ema" and "window" in fields:
            raise ValueError("`window` is used only by filter: ma (ema uses `alpha`)")
        if self.filter == "ma" and "alpha" in fields:
            raise ValueError("`alpha` is used only by filter: ema (ma uses `window`)")
        return self


class ParameterGroupSpec(StrictModel):
    """Settings for one of the learner's named parameter groups, overriding the optimizer's
    own (Liu et al. 2022 train the representation and the decoder with different learning
    rates and weight decays, and sweep the decoder's). Unset fields keep the optimizer's."""

    lr: float | None = Field(default=None, gt=0.0, description="This group's peak learning "
                             "rate (default: the optimizer's lr).")
    weight_decay: float | None = Field(default=None, ge=0.0, description="This group's weight "
                                       "decay (default: the optimizer's weight_decay).")

    @model_validator(mode="after")
    def _sets_something(self) -> ParameterGroupSpec:
        if self.lr is None and self.weight_decay is None:
            raise ValueError("a parameter group sets lr, weight_decay or both (an empty group "
                             "changes nothing: remove it)")
        return self


def grokfast_incompatible(specs: list[GrokfastSpec | None]) -> str | None:
    """Why these members' Grokfast filters cannot be one batched filter (None: they can).
    The one rule: the batch planner and the filter both ask it."""
    slots = {s.batch_slot() for s in specs if s is not None} - {None}
    if len(slots) > 1:
        return f"the members' Grokfast filters differ in kind or window: {sorted(slots)}"
    return None


class OptimizerSpec(StrictModel):
    """Torch optimizer. Weight decay is decoupled for AdamW, L2-coupled for Adam, SGD and GD.

    ``gd`` is plain full-batch gradient descent, ``theta <- theta - lr * grad`` (Kumar et al.
    2024 train with "vanilla gradient descent"): torch's SGD update with no momentum, on the
    whole training set at every step. Validation rejects ``gd`` with ``momentum`` or
    ``betas`` (they would make it another method, or do nothing) and with a minibatch
    (``train.batch_size`` must be ``full``). ``weight_decay`` stays allowed (gradient descent
    on the loss plus the L2 term); set it to 0 for the unregularised method.
    """

    kind: Literal["adamw", "adam", "sgd", "gd"] = Field(
        default="adamw",
        description="Optimizer: adamw, adam, sgd (minibatch SGD, optional momentum), or gd "
        "(plain full-batch gradient descent: no momentum, batch_size full).",
    )
    lr: float = Field(default=1e-3, gt=0.0, description="Peak learning rate.")
    weight_decay: float = Field(default=1.0, ge=0.0, description="Weight decay coefficient.")
    betas: tuple[float, float] = Field(
        default=(0.9, 0.98), description="Adam(W) betas, each in [0, 1)."
    )
    momentum: float = Field(default=0.0, ge=0.0, lt=1.0, description="SGD momentum.")
    warmup_steps: int = Field(
        default=0, ge=0, description="Linear learning-rate warmup from 0 over this many steps."
    )
    groups: dict[str, ParameterGroupSpec] = Field(
        default_factory=dict,
        description="Per parameter group of the learner (e.g. an MLP with a learned embedding "
        "has `embedding` and `decoder`): lr and/or weight_decay for that group's parameters; "
        "the rest use the settings above. Validation rejects a group the learner does not "
        "declare. The warmup applies to every group.",
    )

    @model_validator(mode="after")
    def _gd_is_plain(self) -> OptimizerSpec:
        if self.kind != "gd":
            return self
        if self.momentum != 0.0:
            raise field_error(
                "momentum",
                f"momentum {self.momentum} turns gradient descent into the heavy-ball method; "
                "kind: gd is plain gradient descent (use momentum: 0, or kind: sgd)",
            )
        if "betas" in self.model_fields_set:
            raise field_error("betas", "betas are Adam's; kind: gd does not use them (remove)")
        return self

    @model_validator(mode="after")
    def _fields_the_kind_uses(self) -> OptimizerSpec:
        """``betas`` are Adam's and ``momentum`` is SGD's: set for another kind they would
        silently do nothing."""
        fields = self.model_fields_set
        if self.kind == "sgd" and "betas" in fields:
            raise field_error("betas", "betas are Adam's; kind: sgd does not use them "
                              "(remove, or use kind: adam / adamw)")
        if self.kind in ("adam", "adamw") and "momentum" in fields and self.momentum != 0.0:
            raise field_error("momentum", f"momentum is SGD's; kind: {self.kind} uses betas "
                              "(remove, or use kind: sgd)")
        return self

    @field_validator("betas")
    @classmethod
    def _betas_in_range(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not all(0.0 <= b < 1.0 for b in v):
            raise ValueError(f"betas must each be in [0, 1), got {list(v)}")
        return v


class StopSpec(StrictModel):
    """Stop early once test accuracy has held at or above a threshold."""

    test_acc: float = Field(default=0.99, gt=0.0, le=1.0, description="Accuracy threshold.")
    patience_evals: int = Field(
        default=10, ge=1, description="Consecutive evaluations at or above the threshold."
    )


class TrainSpec(StrictModel):
    """The optimisation loop. ``step`` everywhere means optimizer updates."""

    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec)
    loss: Literal["cross_entropy", "mse"] = Field(
        default="cross_entropy",
        description="cross_entropy, or mse on one-hot targets (Omnigrok, Fan et al.). "
        "Regression tasks always use mse.",
    )
    steps: int = Field(default=10_000, ge=1, description="Optimizer updates to run.")
    batch_size: int | Literal["full"] = Field(
        default="full", description="Minibatch size, or `full` for full-batch training."
    )
    last_batch: Literal["drop", "keep"] = Field(
        default="drop",
        description="Minibatches: drop the examples left over at the end of each shuffled "
        "epoch (every step sees batch_size examples), or keep them as a smaller last batch "
        "(torch.split over the epoch, as the Grokfast code's loop does).",
    )
    eval_every: int = Field(default=100, ge=1, description="Evaluate every N steps.")
    train_metrics: Literal["full", "batches"] = Field(
        default="full",
        description="Where `train/loss` and `train/acc` at an evaluation come from. full: a "
        "forward pass over the whole training set, in eval mode. batches: the mean over the "
        "training batches since the previous evaluation, from the training steps' own "
        "forward passes (train mode; weighted by rows), as the Grokfast and Power et al. "
        "loops report train accuracy: no extra forward, so evaluation costs only the test "
        "set. The step-0 evaluation (no batch yet) is full; per-subset train metrics "
        "(`train/acc_subclass/*`, corrupted labels) need full. Logging only: the training "
        "trajectory and the spec hash are the same either way.",
    )
    stop: StopSpec | None = Field(
        default=None, description="Stop once grokked; omit to always run `steps`."
    )
    fit_threshold: float = Field(
        default=0.99,
        gt=0.0,
        le=1.0,
        description="Accuracy at which train (test) counts as fit for grok/* events.",
    )
    grokfast: GrokfastSpec | None = Field(
        default=None,
        description="Grokfast gradient filter (Lee et al. 2024): amplify the slow gradient "
        "component to shorten the grokking delay. Omit for plain training.",
    )

    @model_validator(mode="after")
    def _gd_is_full_batch(self) -> TrainSpec:
        if self.optimizer.kind == "gd" and self.batch_size != "full":
            raise field_error(
                "batch_size",
                f"optimizer kind gd is full-batch gradient descent; batch_size "
                f"{self.batch_size} makes it minibatch SGD (use batch_size: full, or "
                "optimizer kind: sgd)",
            )
        return self

    @model_validator(mode="after")
    def _last_batch_applies(self) -> TrainSpec:
        if "last_batch" in self.model_fields_set and self.batch_size == "full":
            raise field_error("last_batch", "last_batch decides what happens to a minibatch "
                              "epoch's remainder; batch_size full has none (remove it)")
        return self

    @field_validator("batch_size")
    @classmethod
    def _positive_batch(cls, v: int | str) -> int | str:
        if isinstance(v, int) and v < 1:
            raise ValueError(f"batch_size must be >= 1 or 'full', got {v}")
        return v
