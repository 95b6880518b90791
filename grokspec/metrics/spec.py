"""The ``analysis:`` section of a spec: which progress measures run, and the event thresholds.

Kept next to the measures it configures (not in :mod:`grokspec.spec.experiment`) so that adding a
measure is one edit in ``grokspec/metrics/``. Defaults are chosen so that the measures a run
gets without asking cost at most ~10% of its wall time at the default evaluation interval
(see bench/measures.py).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from grokspec.spec.base import StrictModel, field_error

Measure = Literal[
    "weight_norm",
    "fourier",
    "feature_rank",
    "param_movement",
    "ntk",
    "pathways",
    "early_warning",
]

MEASURE_DOCS: dict[str, str] = {
    "weight_norm": "L2 norm of each parameter group, `weights/l2_norm/<module>` (Power et al. "
    "2022; Liu et al. 2023 Omnigrok). The total is always logged as `weights/l2_norm`.",
    "fourier": "modular datasets only (Nanda et al. 2023): `progress/fourier_sparsity` "
    "(fraction of the operand embeddings' squared norm in the top-k frequencies), "
    "`progress/fourier_key_freq/<i>`, and for x+y / x-y `progress/restricted_loss` and "
    "`progress/excluded_loss`.",
    "feature_rank": "rank of the covariance of each hidden layer's pre-activations on a fixed "
    "batch of training inputs, `progress/feature_rank/<layer>` (Fan et al. 2024).",
    "param_movement": "||theta_t - theta_0|| / ||theta_0||, `progress/param_movement` "
    "(Kumar et al. 2024: small while training is lazy).",
    "ntk": "empirical NTK on a fixed batch: `progress/ntk_change` = ||K_t - K_0||_F/||K_0||_F "
    "and `progress/ntk_alignment` = <K, Y Y^T>_F / (||K||_F ||Y Y^T||_F) with centred "
    "targets Y (Kumar et al. 2024). Skipped for models above `ntk_max_params`.",
    "pathways": "mixture-of-experts learners only (Li et al. 2025): "
    "`progress/pathway_distance` and `progress/pathway_consistency`.",
    "early_warning": "from the metric history alone: `warning/score` in [0, 1] and "
    "`warning/fired` (0/1), a running estimate that a grok is coming.",
}


class PhaseSpec(StrictModel):
    """Thresholds of the phase label ``grok.phase`` (Liu et al. 2022), at the fit threshold."""

    grokking_min_ratio: float = Field(
        default=3.0,
        ge=1.0,
        description="A run whose test accuracy fits is `grokking` when test_fit_step / "
        "train_fit_step is at least this (and the delay spans grokking_min_evals), else "
        "`comprehension`. Runs whose train accuracy fits but test never does are "
        "`memorization`; runs whose train accuracy never fits are `confusion`.",
    )
    grokking_min_evals: int = Field(
        default=4,
        ge=1,
        description="A `grokking` delay must also span at least this many evaluations "
        "(after the train fit, up to the test fit): a fit at the first evaluations must not "
        "read as a large ratio, whatever the step scale (a GP evaluated every 5 steps that "
        "groks 50 steps after fitting is grokking).",
    )


class StagesSpec(StrictModel):
    """Multi-stage detection (Fan et al. 2024): distinct jumps of test accuracy."""

    min_jump: float = Field(
        default=0.1,
        gt=0.0,
        le=1.0,
        description="A jump is a rise of at least this much test accuracy within `window`.",
    )
    window: float = Field(
        default=2.0,
        gt=1.0,
        description="Jump window as a factor in steps: the rise at step t is measured "
        "against step t / window. Pauses shorter than this factor merge two rises.",
    )
    smooth: int = Field(
        default=3, ge=1, description="Running-median window (evaluations) against noise."
    )


class WarningSpec(StrictModel):
    """The early-warning signal ``warning/*`` (grokspec.metrics.warning), from the history."""

    window: float = Field(
        default=2.0,
        gt=1.0,
        description="Look-back window as a factor in steps: at step t the test loss is "
        "compared with its maximum over steps t / window .. t.",
    )
    min_drop: float = Field(
        default=0.3,
        gt=0.0,
        description="Fire when ln(test loss) sits this far below that maximum (0.3: ~26% "
        "lower) while train accuracy is fitted and test accuracy is not.",
    )


class AnalysisSpec(StrictModel):
    """What is computed about a run besides the uniform metrics: events, phase, measures."""

    extra_thresholds: list[float] = Field(
        default_factory=lambda: [0.5, 0.95],
        description="Accuracy thresholds at which grok events are also logged, as "
        "`grok/at_<t>/{train_fit_step,test_fit_step,delay,delay_ratio}` (partial grokking "
        "shows at 0.5 long before 0.99). The main threshold is train.fit_threshold.",
    )
    metrics: list[Measure] | None = Field(
        default=None,
        description="Progress measures computed at each evaluation. Omit for the learner's "
        "defaults (mlp: weight_norm, fourier, feature_rank, param_movement, ntk, "
        "early_warning; transformer: the same without ntk; moe_transformer: the "
        "transformer's plus pathways; other gradient-trained learners: weight_norm, fourier, "
        "param_movement, early_warning; gp: early_warning. fourier only on modular data, ntk "
        "only up to ntk_max_params). `[]` switches all off. Each: "
        + "; ".join(f"`{k}`: {v}" for k, v in MEASURE_DOCS.items()),
    )
    measure_every: int = Field(
        default=1,
        ge=1,
        description="Compute the progress measures at every N-th evaluation only (cost).",
    )
    fourier_top_k: int = Field(
        default=5,
        ge=1,
        description="Number of key frequencies (Nanda et al. found 5 in their p=113 model).",
    )
    rank_tolerance: float = Field(
        default=1e-3,
        gt=0.0,
        lt=1.0,
        description="Feature rank counts singular values of the centred pre-activations above "
        "this fraction of the largest one (eigenvalues of the covariance above its square).",
    )
    rank_batch: int = Field(
        default=512, ge=2, description="Training inputs (the first N) used for feature rank."
    )
    ntk_batch: int = Field(
        default=32, ge=2, description="Training inputs (the first N) on which the NTK is taken."
    )
    ntk_projections: int = Field(
        default=8,
        ge=0,
        description="The NTK of an m-dimensional fixed random projection of the outputs "
        "(an unbiased estimate of the trace NTK at 1/C of the cost for C outputs); 0: exact.",
    )
    ntk_every: int = Field(
        default=10,
        ge=1,
        description="Take the NTK at every N-th evaluation only (and at the first): it costs "
        "~n x m backward passes of an n-batch, the dearest default measure; at 10 the "
        "defaults stay under 10% of a run at eval_every 100 (bench/measures.py).",
    )
    ntk_max_params: int = Field(
        default=300_000,
        ge=1,
        description="The NTK is skipped (with a tag) for models with more parameters.",
    )
    pathway_batch: int = Field(
        default=256, ge=2, description="Training inputs used for the MoE pathway metrics."
    )
    phase: PhaseSpec = Field(
        default_factory=PhaseSpec,
        description="Thresholds of the `grok.phase` tag (Liu et al. 2022).",
    )
    stages: StagesSpec = Field(
        default_factory=StagesSpec,
        description="Multi-stage detection, `grok/stages` (Fan et al. 2024).",
    )
    warning: WarningSpec = Field(
        default_factory=WarningSpec,
        description="The early-warning signal, `warning/*` and `grok/warning_lead`.",
    )

    @field_validator("extra_thresholds")
    @classmethod
    def _in_unit_interval(cls, v: list[float]) -> list[float]:
        bad = [t for t in v if not 0.0 < t <= 1.0]
        if bad:
            raise ValueError(f"thresholds must be in (0, 1], got {bad}")
        return sorted(set(v))

    @field_validator("metrics")
    @classmethod
    def _unique(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and len(set(v)) != len(v):
            dup = sorted({m for m in v if v.count(m) > 1})
            raise ValueError(f"measures listed twice: {dup} (list each once)")
        return v


#: Measures a learner gets when ``analysis.metrics`` is omitted (filtered by applicability).
DEFAULT_MEASURES: dict[str, tuple[str, ...]] = {
    "mlp": ("weight_norm", "fourier", "feature_rank", "param_movement", "ntk", "early_warning"),
    "transformer": ("weight_norm", "fourier", "feature_rank", "param_movement", "early_warning"),
    "moe_transformer": (
        "weight_norm", "fourier", "feature_rank", "param_movement", "pathways", "early_warning"
    ),
}
NEURAL_FALLBACK = ("weight_norm", "fourier", "param_movement", "early_warning")
OTHER_FALLBACK = ("early_warning",)


def _is_neural(learner: Any) -> bool:
    """Trained by the gradient runner: a torch network whose layers measures can hook."""
    return getattr(type(learner), "default_runner", "") == "gradient"


def not_applicable(measure: str, learner: Any, dataset: Any) -> str | None:
    """Why ``measure`` cannot run for this learner/dataset pair (None when it can)."""
    if measure == "fourier" and getattr(dataset, "kind", None) != "modular":
        return "needs a modular dataset (kind: modular)"
    if measure == "pathways" and not getattr(type(learner), "routes_tokens", False) and (
        getattr(learner, "kind", None) != "moe_transformer"
    ):
        return "needs a mixture-of-experts learner (kind: moe_transformer)"
    if measure in ("ntk", "feature_rank") and not _is_neural(learner):
        return "needs a neural learner trained by the gradient runner"
    return None


def resolve_measures(analysis: AnalysisSpec, learner: Any, dataset: Any) -> list[str]:
    """The measures that run: the listed ones, or the learner's applicable defaults."""
    if analysis.metrics is not None:
        return list(analysis.metrics)
    kind = getattr(learner, "kind", "")
    default = DEFAULT_MEASURES.get(kind) or (
        NEURAL_FALLBACK if _is_neural(learner) else OTHER_FALLBACK
    )
    return [m for m in default if not_applicable(m, learner, dataset) is None]


def check_measures(analysis: AnalysisSpec, learner: Any, dataset: Any) -> None:
    """Reject, at validation, a listed measure that cannot run on this experiment."""
    if analysis.metrics is None:
        return
    problems = []
    for m in analysis.metrics:
        why = not_applicable(m, learner, dataset)
        if why is not None:
            problems.append(f"'{m}' {why}")
    if problems:
        ok = [m for m in MEASURE_DOCS if not_applicable(m, learner, dataset) is None]
        raise field_error(
            "analysis.metrics",
            f"{'; '.join(problems)} (measures that apply here: {ok})",
        )
