"""The runner registry as validation needs it: which optional features exist, which a spec
uses, which a runner honours, and finding a runner class by name (entry points).

It lives in spec/ because validation asks these questions ("is every field this spec sets
applied by the runner that will run it?") and spec/ imports nothing from training/; the
runner interface itself is :class:`grokspec.training.runner.Runner`. Reading a runner's
``features`` loads its module, which keeps torch imports inside its methods, so this stays
cheap.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from grokspec.spec.experiment import Experiment

GROUP = "grokspec.runners"

#: Optional features of the loop, by name -> what in a spec (or on the command line) asks for it.
FEATURES: Mapping[str, str] = {
    "grokfast": "train.grokfast",
    "early_stop": "train.stop",
    "checkpoint": "tracking.checkpoint_every",
    "resume": "--resume",
    "vectorize": "sweep.vectorize",
    "train_metrics_from_batches": "train.train_metrics",
}


def used_features(experiment: Experiment) -> dict[str, str]:
    """Feature name -> the spec field that asks for it, for the features this spec uses."""
    used = {}
    if experiment.train.grokfast is not None and experiment.train.grokfast.lamb != 0.0:
        used["grokfast"] = FEATURES["grokfast"]
    if experiment.train.stop is not None:
        used["early_stop"] = FEATURES["early_stop"]
    if experiment.tracking.checkpoint_every is not None:
        used["checkpoint"] = FEATURES["checkpoint"]
    if experiment.train.train_metrics == "batches":
        used["train_metrics_from_batches"] = FEATURES["train_metrics_from_batches"]
    return used


def unsupported(runner_cls: Any, wanted: Mapping[str, str]) -> dict[str, str]:
    """The subset of ``wanted`` (feature -> field) that ``runner_cls`` does not honour."""
    have = getattr(runner_cls, "features", frozenset())
    return {f: field for f, field in wanted.items() if f not in have}


def feature_error(name: str, runner_cls: Any, feature: str) -> str:
    have = sorted(getattr(runner_cls, "features", frozenset()))
    return (
        f"runner '{name}' does not apply {FEATURES[feature]} ({feature}); it honours: "
        f"{', '.join(have) or 'none of the optional features'} "
        "(remove the field or pick another runner/learner)"
    )


def available_runners() -> dict[str, Any]:
    """Name -> entry point of every installed runner."""
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def runner_class(name: str) -> Any:
    """The runner class registered as ``name`` (LookupError naming the installed ones)."""
    eps = available_runners()
    if name not in eps:
        raise LookupError(
            f"no runner named '{name}' in entry-point group '{GROUP}' "
            f"(installed: {', '.join(sorted(eps)) or 'none'}; is grokspec installed with pip?)"
        )
    cls = eps[name].load()
    missing = [m for m in ("build", "loss", "evaluate") if not callable(getattr(cls, m, None))]
    if missing:
        raise LookupError(
            f"runner '{name}' ({cls.__module__}.{cls.__qualname__}) lacks {', '.join(missing)}: "
            "a runner supplies build(experiment, dataset), loss(model, batch) and "
            "evaluate(...), and the one training loop does the rest (docs/architecture.md)"
        )
    return cls


def runner_name(experiment: Experiment) -> str:
    return experiment.runner or type(experiment.learner).default_runner
