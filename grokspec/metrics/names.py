"""The metric names every runner logs: defined once, so MLflow overlays any two learners.

``step`` is always the number of optimizer updates taken so far.
"""

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
