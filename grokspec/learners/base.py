"""What every learner spec shares: the name of the runner that trains it by default."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from grokspec.spec.base import StrictModel

if TYPE_CHECKING:
    from torch import nn

    from grokspec.datasets.base import Dataset
    from grokspec.spec.experiment import Experiment


class LearnerSpecBase(StrictModel):
    """A learner spec knows how to build its model for a dataset.

    ``default_runner`` names the entry point in the ``grokspec.runners`` group that trains
    this learner unless the experiment names another (``runner:``).
    """

    default_runner: ClassVar[str] = "gradient"
    #: What the learner can consume; checked against the dataset family at validation.
    input_kinds: ClassVar[frozenset[str]] = frozenset({"tokens", "features"})
    tasks: ClassVar[frozenset[str]] = frozenset({"classification", "regression"})
    #: What the built model shows the progress measures (:mod:`grokspec.learners.contract`):
    #: validation rejects a measure whose needs are not in this set, before anything is built.
    provides: ClassVar[frozenset[str]] = frozenset()

    def parameter_groups(self) -> dict[str, str]:
        """The learner's named parameter groups, which ``train.optimizer.groups`` may give
        their own lr / weight decay: group name -> what it holds. The built model maps the
        same names to its parameters (``parameter_group_prefixes``, see
        :mod:`grokspec.learners.contract`). Default: none."""
        return {}

    def check_dataset(self, dataset: Dataset) -> None:
        """Raise ValueError with advice if this learner cannot consume ``dataset``."""

    def check_experiment(self, experiment: Experiment) -> None:
        """Raise ValueError (or :func:`grokspec.spec.base.field_error`, its path relative to the
        experiment: ``learner.readout``, ``train.loss``) if this learner cannot
        run under the rest of the experiment: the training settings, or the dataset's size
        where it is known before building (e.g. the GP's memory estimate). Called at
        validation, so a spec that cannot run is rejected before anything is built.
        """

    def build(self, dataset: Dataset) -> nn.Module:  # pragma: no cover - abstract
        raise NotImplementedError
