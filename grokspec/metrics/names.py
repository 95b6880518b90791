"""The metric names every runner logs: defined once, so MLflow overlays any two learners.

``step`` is always the number of optimizer updates taken so far.
"""

from grokspec.tracking import tags

TRAIN_LOSS = "train/loss"
TRAIN_ACC = "train/acc"
TEST_LOSS = "test/loss"
TEST_ACC = "test/acc"
WEIGHT_NORM = "weights/l2_norm"

#: Logged at every evaluation by every learner (accuracy also for regression, as the
#: documented surrogate of the dataset family).
UNIFORM = (TRAIN_LOSS, TRAIN_ACC, TEST_LOSS, TEST_ACC, WEIGHT_NORM)

# Summary metrics, logged once at the end of a run (no step).
GROK_TRAIN_FIT_STEP = "grok/train_fit_step"
GROK_TEST_FIT_STEP = "grok/test_fit_step"
GROK_DELAY = "grok/delay"
GROK_DELAY_RATIO = "grok/delay_ratio"  # test_fit_step / train_fit_step
GROK_STAGES = "grok/stages"  # number of distinct test-accuracy jumps; details in grok/stages.json
GROK_WARNING_STEP = "grok/warning_step"  # first step the early-warning signal fired
GROK_WARNING_LEAD = "grok/warning_lead"  # test_fit_step - warning_step (steps of notice)


def grok_at(threshold: float, event: str) -> str:
    """Summary event at an extra threshold: ``grok/at_0.95/test_fit_step``."""
    return f"grok/at_{threshold:g}/{event}"


# Run tags written at the end of a run (the name is defined with every other tag).
PHASE_TAG = tags.PHASE  # comprehension | grokking | memorization | confusion
PHASE_RULE_TAG = tags.PHASE_RULE  # the rule that made grok.phase: liu2022 | grokspec

# Progress measures (logged at evaluation steps, see grokspec.metrics.measures).
WEIGHT_NORM_GROUP = "weights/l2_norm/{group}"  # per parameter group (module path)
FOURIER_SPARSITY = "progress/fourier_sparsity"
FOURIER_KEY_FREQ = "progress/fourier_key_freq/{i}"  # i = 0 is the strongest frequency
FOURIER_KEY_FREQ_COUNT = "progress/fourier_key_freq_count"  # nanda2023: distinct key freqs
FOURIER_NEURON_FRAC = "progress/fourier_neuron_frac_explained"  # nanda2023: mean over neurons
RESTRICTED_LOSS = "progress/restricted_loss"
EXCLUDED_LOSS = "progress/excluded_loss"
FEATURE_RANK = "progress/feature_rank/{layer}"
PARAM_MOVEMENT = "progress/param_movement"
NTK_CHANGE = "progress/ntk_change"
NTK_ALIGNMENT = "progress/ntk_alignment"
PATHWAY_DISTANCE = "progress/pathway_distance"
PATHWAY_CONSISTENCY = "progress/pathway_consistency"
WARNING_SCORE = "warning/score"
WARNING_FIRED = "warning/fired"
