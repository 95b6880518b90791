"""The ``analysis:`` section of a spec: which progress measures run, and the event thresholds.

Kept next to the measures it configures (not in :mod:`grokspec.spec.experiment`). The measures
themselves, their documentation, what they read from a model, where they apply and their
default intervals come from the registry (:mod:`grokspec.metrics.registry`): adding a measure
is one file in ``grokspec/metrics/progress/``, no edit here. Defaults are chosen so that the
measures a run gets without asking cost at most ~10% of its wall time at the default
evaluation interval (see bench/measures.py).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from grokspec.learners.contract import CAPABILITIES, PARAMETERS, ROUTING
from grokspec.metrics import registry
from grokspec.metrics.phases import PhaseRule
from grokspec.spec.base import StrictModel, field_error

#: The definitions of a measure that a spec can select (paper's first; see each field).
KeyFrequencies = Literal["nanda2023", "embedding_top_k"]
RankDefinition = Literal["fan2024", "centred_preactivation"]
PathwayPairs = Literal["li2025", "same_label"]

#: The registered measures (grokspec.metrics.progress), in their order.
MEASURES = registry.measures()
Measure = Literal[tuple(MEASURES)]  # type: ignore[valid-type]
MEASURE_DOCS: dict[str, str] = {name: d.doc for name, d in MEASURES.items()}
#: Default ``analysis.intervals``: fewest steps between two computations of a measure.
DEFAULT_INTERVALS: dict[str, int] = {name: d.interval for name, d in MEASURES.items()
                                     if d.interval}


class PhaseSpec(StrictModel):
    """Thresholds of the ``grokspec`` phase rule (:func:`grokspec.metrics.phases.phase_label`),
    at ``train.fit_threshold``. Liu et al.'s rule (``phase_rule: liu2022``) has its own."""

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
        description="Frequencies in the Fourier sparsity, and the most key frequencies logged "
        "as `progress/fourier_key_freq/<i>`: with key_frequencies embedding_top_k these are "
        "the key frequencies (Nanda et al. found 5 in their p=113 model); with nanda2023 the "
        "key set is every neuron frequency (counted in `progress/fourier_key_freq_count`) and "
        "this caps how many are logged.",
    )
    rank_tolerance: float = Field(
        default=1e-3,
        gt=0.0,
        lt=1.0,
        description="rank_definition centred_preactivation only: feature rank counts singular "
        "values of the centred pre-activations above this fraction of the largest one "
        "(eigenvalues of the covariance above its square). fan2024 uses the paper's "
        "max(n, d) * eps tolerance instead.",
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
    intervals: dict[Measure, Annotated[int, Field(ge=0)]] = Field(
        default_factory=dict,
        description="Fewest training steps between two computations of a measure (the first "
        "evaluation always computes it), per measure: the expensive measures run on their own "
        "schedule, so a frequent train.eval_every does not multiply their cost. A measure not "
        "listed here keeps its default ("
        + ", ".join(f"{k}: {v}" for k, v in DEFAULT_INTERVALS.items())
        + "; others 0); 0 computes it at every evaluation. With these, the default measures "
        "of a 1000-step quickstart-sized MLP cost ~6-7% of its CPU at eval_every 100 (the "
        "first evaluation computes them all) and under 10% at 25 (bench/measures.py).",
    )
    ntk_max_params: int = Field(
        default=300_000,
        ge=1,
        description="The NTK is skipped (with a tag) for models with more parameters.",
    )
    pathway_batch: int = Field(
        default=256, ge=2, description="Training inputs used for the MoE pathway metrics."
    )
    diagnostics: Literal["summary", "full"] = Field(
        default="summary",
        description="How many-valued diagnostics (per-dimension GP lengthscales "
        "`gp/lengthscale/<i>`, per-module norms `weights/l2_norm/<module>`) reach MLflow: "
        "`summary` logs each family as `<family>/min`, `/median`, `/max` (the chart view "
        "stays readable; every value is still in the run's history.csv artifact); `full` "
        "logs one metric per dimension/module.",
    )
    phase_rule: PhaseRule = Field(
        default="liu2022",
        description="The rule that labels a run comprehension / grokking / memorization / "
        "confusion (tag `grok.phase`; the tag `grok.phase_rule` records the rule). `liu2022`: "
        "Liu et al. 2022's rule as their code applies it: fit = first evaluation with "
        "accuracy >= 0.9 within 1e5 steps, grokking when test fit - train fit > 1000 steps, "
        "else comprehension; its thresholds are the paper's and ignore train.fit_threshold "
        "and analysis.phase. `grokspec`: grokspec's scale-free rule at train.fit_threshold "
        "with the thresholds in analysis.phase.",
    )
    phase: PhaseSpec = Field(
        default_factory=PhaseSpec,
        description="Thresholds of the `grokspec` phase rule (phase_rule: grokspec only).",
    )
    key_frequencies: KeyFrequencies = Field(
        default="nanda2023",
        description="How the `fourier` measure finds the key frequencies used by "
        "`progress/fourier_key_freq/<i>`, `progress/restricted_loss` and "
        "`progress/excluded_loss`. `nanda2023` (Nanda et al. 2023's code): each neuron of the "
        "first MLP layer gets the frequency whose linear and quadratic 2-D Fourier terms "
        "explain most of its (centred) activation over the full p x p input grid; the key "
        "frequencies are every frequency some neuron has (most neurons first; "
        "`progress/fourier_key_freq_count` counts them). `embedding_top_k`: the "
        "fourier_top_k frequencies with the largest norm in the operand embeddings.",
    )
    key_frequencies_at: Literal["final", "each_evaluation"] = Field(
        default="final",
        description="Whose key frequencies `progress/restricted_loss` and "
        "`progress/excluded_loss` use at every evaluation. `final` (Nanda et al. 2023's code: "
        "the final model's key frequencies over every saved checkpoint): the evaluations' "
        "logits are kept (train rows, plus their Fourier coefficients) and both losses are "
        "computed and logged at the end of the run, at their evaluation steps; a run that "
        "diverges gets none. `each_evaluation` (grokspec's variant): each evaluation's own "
        "key frequencies, logged as it goes.",
    )
    rank_definition: RankDefinition = Field(
        default="fan2024",
        description="How `feature_rank` counts a layer's rank. `fan2024` (Fan, Pascanu, "
        "Jaggi 2024): numerical rank of the covariance H^T H of the layer's output "
        "activations H (n x d, after the nonlinearity, not centred): singular values above "
        "max(n, d) * eps(dtype of H) times the largest (PyTorch matrix_rank's tolerance). "
        "`centred_preactivation`: singular values of the centred pre-activations above "
        "rank_tolerance times the largest.",
    )
    pathway_pairs: PathwayPairs = Field(
        default="li2025",
        description="The sample pairs `progress/pathway_distance` averages over. `li2025` "
        "(Li et al. 2025): all pairs of the pathway batch; `same_label`: pairs with the same "
        "label only.",
    )
    stages: StagesSpec = Field(
        default_factory=StagesSpec,
        description="Multi-stage detection, `grok/stages` (Fan et al. 2024).",
    )
    warning: WarningSpec = Field(
        default_factory=WarningSpec,
        description="The early-warning signal, `warning/*` and `grok/warning_lead`.",
    )

    def interval(self, measure: str) -> int:
        """Fewest steps between two computations of ``measure`` (0: every evaluation)."""
        return self.intervals.get(measure, DEFAULT_INTERVALS.get(measure, 0))  # type: ignore[call-overload]

    @field_validator("extra_thresholds")
    @classmethod
    def _in_unit_interval(cls, v: list[float]) -> list[float]:
        bad = [t for t in v if not 0.0 < t <= 1.0]
        if bad:
            raise ValueError(f"thresholds must be in (0, 1], got {bad}")
        return sorted(set(v))

    @model_validator(mode="after")
    def _rank_tolerance_used(self) -> AnalysisSpec:
        if self.rank_definition == "fan2024" and "rank_tolerance" in self.model_fields_set:
            raise field_error(
                "rank_tolerance",
                "rank_tolerance is the tolerance of rank_definition centred_preactivation; "
                "fan2024 uses Fan et al.'s max(n, d) * eps (set rank_definition: "
                "centred_preactivation, or remove rank_tolerance)",
            )
        return self

    @model_validator(mode="after")
    def _phase_thresholds_used(self) -> AnalysisSpec:
        # Liu's rule carries its own thresholds: analysis.phase would silently do nothing.
        if self.phase_rule == "liu2022" and "phase" in self.model_fields_set:
            raise field_error(
                "phase",
                "analysis.phase sets thresholds of the `grokspec` phase rule, but phase_rule is "
                "`liu2022`, whose thresholds are Liu et al.'s (accuracy 0.9, 1e5-step budget, "
                "1000-step delay) (set phase_rule: grokspec, or remove analysis.phase)",
            )
        return self

    @field_validator("metrics")
    @classmethod
    def _unique(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and len(set(v)) != len(v):
            dup = sorted({m for m in v if v.count(m) > 1})
            raise ValueError(f"measures listed twice: {dup} (list each once)")
        return v


#: Where a capability is found, for the error message.
_WHO_PROVIDES = {ROUTING: " (kind: moe_transformer)"}


def _provides(learner: Any) -> frozenset[str]:
    return frozenset(getattr(type(learner), "provides", frozenset()))


def _is_neural(learner: Any) -> bool:
    """A model trained by gradients, whose parameters the weight measures read."""
    return PARAMETERS in _provides(learner)


def not_applicable(measure: str, learner: Any, dataset: Any) -> str | None:
    """Why ``measure`` cannot run for this learner/dataset pair (None when it can)."""
    defn = MEASURES[measure]
    why = defn.applies(dataset) if defn.applies is not None else None
    if why is not None:
        return why
    missing = sorted(defn.needs - _provides(learner))
    if missing:
        what = "; ".join(CAPABILITIES[m] + _WHO_PROVIDES.get(m, "") for m in missing)
        kind = getattr(learner, "kind", type(learner).__name__)
        return f"needs a learner whose model provides {what}; the {kind} learner does not"
    return None


def resolve_measures(analysis: AnalysisSpec, learner: Any, dataset: Any) -> list[str]:
    """The measures that run: the listed ones, or the learner's applicable defaults."""
    if analysis.metrics is not None:
        return list(analysis.metrics)
    kind, neural = getattr(learner, "kind", ""), _is_neural(learner)
    return [name for name, d in MEASURES.items()
            if d.default and (d.default_learners is None or kind in d.default_learners)
            and (neural or not d.neural_only)
            and not_applicable(name, learner, dataset) is None]


def check_measures(analysis: AnalysisSpec, learner: Any, dataset: Any) -> None:
    """Reject, at validation, a listed measure that cannot run on this experiment, and
    ``key_frequencies_at`` set where no restricted/excluded loss is computed (it would do
    nothing)."""
    if "key_frequencies_at" in analysis.model_fields_set and (
            "fourier" not in resolve_measures(analysis, learner, dataset)
            or getattr(dataset, "op", None) not in ("x+y", "x-y")):
        raise field_error(
            "analysis.key_frequencies_at",
            "key_frequencies_at chooses the key frequencies of the restricted and excluded "
            "losses, which the fourier measure computes only on x+y and x-y modular data "
            "(add fourier to analysis.metrics on such data, or remove key_frequencies_at)")
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
