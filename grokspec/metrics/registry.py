"""The progress-measure registry: a measure is one object, declared in one module.

Each module of :mod:`grokspec.metrics.progress` registers one :class:`MeasureDef` when it is
imported: its name (what ``analysis.metrics`` lists), what it reads from a model (learner
contract capabilities, checked at validation), where it applies (a dataset check), its cost
class (the default fewest steps between two computations), whether a learner gets it without
asking, and ``build``, which makes the per-run callable. Validation
(:mod:`grokspec.metrics.spec`) and the run (:func:`grokspec.metrics.measures.build_measures`)
both read this table; nothing dispatches on a measure's name.

Adding a measure is one file in ``grokspec/metrics/progress/`` plus its test (see
``docs/architecture.md``). Declarations must not import torch at module level: validation
(``grokspec sweep --dry-run``) reads them without loading torch; ``build`` imports what it
computes with.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: ``(step, model) -> metrics``, called at evaluations (a "model" measure), or
#: ``(history) -> metrics``, called with the metric history (a "history" monitor).
Built = Callable[..., dict[str, float]]


@dataclass(frozen=True)
class Context:
    """What ``build`` gets: the run's experiment, dataset, device and the evaluation capture
    (:class:`grokspec.metrics.capture.EvalCapture`) through which a measure reads the
    evaluation's own forward pass instead of running the model again."""

    experiment: Any
    dataset: Any
    device: Any
    capture: Any


@dataclass(frozen=True)
class MeasureDef:
    name: str
    doc: str  # one paragraph for the JSON Schema and `analysis.metrics`'s description
    build: Callable[[Context], Built]
    order: int  # position among the measures (logging and checkpoint order)
    needs: frozenset[str] = frozenset()  # learner contract capabilities it reads
    interval: int = 0  # cost class: default fewest steps between computations (0: every eval)
    reads: str = "model"  # "model": (step, model) at evaluations; "history": (history)
    applies: Callable[[Any], str | None] | None = None  # dataset -> why not (None: it applies)
    default: bool = True  # on without asking, where it applies ...
    default_learners: frozenset[str] | None = None  # ... for these learner kinds only
    neural_only: bool = True  # ... and only for learners whose models have parameters


_REGISTRY: dict[str, MeasureDef] = {}
_DISCOVERED = False


def register(defn: MeasureDef) -> MeasureDef:
    """Called by each measure module at import; a second measure of one name is an error."""
    if defn.name in _REGISTRY and _REGISTRY[defn.name] is not defn:
        raise ValueError(f"two progress measures are named '{defn.name}'")
    _REGISTRY[defn.name] = defn
    return defn


def measures() -> dict[str, MeasureDef]:
    """Every registered measure, in ``order`` (imports :mod:`grokspec.metrics.progress`'s
    modules the first time)."""
    global _DISCOVERED
    if not _DISCOVERED:  # every module, even when one was imported directly before
        from grokspec.metrics import progress

        for mod in pkgutil.iter_modules(progress.__path__):
            importlib.import_module(f"{progress.__name__}.{mod.name}")
        _DISCOVERED = True
    return dict(sorted(_REGISTRY.items(), key=lambda kv: kv[1].order))


def get(name: str) -> MeasureDef:
    return measures()[name]
