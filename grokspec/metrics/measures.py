"""Progress measures wired to a run: built from the spec, called at each evaluation.

:func:`build_measures` turns ``analysis.metrics`` into callables ``(step, model) -> metrics``
(the loop's ``Member.measures``) and history monitors (``Member.monitors``). The numbers come
from the pure functions of :mod:`grokspec.metrics` (fourier, rank, laziness, pathways,
warning); this module reads what they need from a model *only* through the learner contract
(:mod:`grokspec.learners.contract`: probe points, token embeddings, routing, parameters) and
keeps what must stay fixed across evaluations (the evaluation batch, theta_0, K_0). A model
that does not provide what a measure reads raises :class:`ContractError` naming it; spec
learners are checked at validation already (:func:`grokspec.metrics.spec.check_measures`).

Activations come from the evaluation's own forward pass where the loop wraps its evaluation
in :func:`capturing` (:mod:`grokspec.metrics.capture`), else from one pass of the measure's.

Measures run in eval mode under ``torch.no_grad`` (the NTK needs gradients and takes them
functionally), never touch the global RNG, and restore the model's train/eval mode, so a run
with measures trains exactly as one without.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from grokspec.datasets.base import Dataset
from grokspec.learners.contract import (
    PARAMETERS,
    PROBES,
    ROUTING,
    ContractError,
    require,
)
from grokspec.metrics import names
from grokspec.metrics.capture import EvalCapture
from grokspec.metrics.fourier_measure import FourierMeasure
from grokspec.metrics.laziness import (
    empirical_ntk,
    kernel_alignment,
    kernel_change,
    param_movement,
    projection_matrix,
    targets_matrix,
)
from grokspec.metrics.pathways import pathway_consistency, pathway_distance_by, pathways_of
from grokspec.metrics.rank import fan2024_rank, numerical_rank
from grokspec.metrics.spec import resolve_measures
from grokspec.metrics.warning import warning_from_history

Measure = Callable[[int, Any], dict[str, float]]
Monitor = Callable[[list[dict[str, float]]], dict[str, float]]
EVAL_CHUNK = 16384

__all__ = ["ContractError", "build_measures", "capturing"]


def _eval_forward(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Outputs on ``x`` in eval mode, chunked, without gradients; the mode is restored."""
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            return torch.cat([model(x[i : i + EVAL_CHUNK]) for i in range(0, len(x), EVAL_CHUNK)])
    finally:
        model.train(was)


# ------------------------------------------------------------------------------ weight norm


def group_norms(model: nn.Module) -> dict[str, float]:
    """L2 norm per parameter group: the module that owns the parameter (``net.0``, ``embed``),
    or the parameter itself when it sits on the root module (``pos``)."""
    sq: dict[str, float] = {}
    with torch.no_grad():
        for name, p in model.named_parameters():
            group = name.rsplit(".", 1)[0] if "." in name else name
            sq[group] = sq.get(group, 0.0) + float((p.detach().double() ** 2).sum())
    return {names.WEIGHT_NORM_GROUP.format(group=g): v**0.5 for g, v in sq.items()}


def weight_norm_measure() -> Measure:
    def measure(step: int, model: Any) -> dict[str, float]:
        require(model, {PARAMETERS}, "weight_norm")
        return group_norms(model)

    return measure


# ------------------------------------------------------------------------- param movement


def initial_parameters(experiment: Any, dataset: Dataset) -> list[torch.Tensor] | None:
    """theta_0 rebuilt from the seed, for a run resumed from a checkpoint (whose first
    evaluation is not step 0). The gradient runner seeds torch with the experiment seed and
    builds the model; this repeats that inside a forked RNG, so training is not disturbed."""
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(experiment.seed)
            model = experiment.learner.build(dataset)
        return [p.detach().clone() for p in model.parameters()]
    except Exception:  # noqa: BLE001 - a learner we cannot rebuild: no movement metric
        return None


class ParamMovement:
    """``||theta_t - theta_0|| / ||theta_0||``; theta_0 = parameters at step 0."""

    def __init__(self, experiment: Any, dataset: Dataset) -> None:
        self.experiment, self.dataset = experiment, dataset
        self.theta0: list[torch.Tensor] | None = None

    def __call__(self, step: int, model: Any) -> dict[str, float]:
        require(model, {PARAMETERS}, "param_movement")
        current = [p.detach() for p in model.parameters()]
        if self.theta0 is None:
            if step == 0:
                self.theta0 = [p.clone() for p in current]
            else:
                init = initial_parameters(self.experiment, self.dataset)
                if init is None or [t.shape for t in init] != [t.shape for t in current]:
                    return {}
                self.theta0 = [t.to(c.device, c.dtype) for t, c in zip(init, current, strict=True)]
        return {names.PARAM_MOVEMENT: param_movement(self.theta0, current)}


# ------------------------------------------------------------------------------------- NTK


class NTKMeasure:
    """Change of the empirical NTK since the first evaluation, and its target alignment."""

    def __init__(self, analysis: Any, dataset: Dataset, device: torch.device) -> None:
        n = min(analysis.ntk_batch, dataset.n_train)
        self.x = dataset.x_train[:n].to(device)
        self.targets = targets_matrix(dataset.y_train[:n], dataset.n_classes)
        self.m = analysis.ntk_projections
        self.max_params = analysis.ntk_max_params
        self.k0: torch.Tensor | None = None
        self.skip: str | None = None
        self.projection: torch.Tensor | None = None

    def __call__(self, step: int, model: Any) -> dict[str, float]:
        require(model, {PARAMETERS}, "ntk")
        if self.skip is not None:
            return {}
        n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
        if n_params > self.max_params:
            self.skip = f"{n_params} parameters > analysis.ntk_max_params={self.max_params}"
            print(f"grokspec: NTK measure skipped: {self.skip}", file=sys.stderr)
            return {}
        if self.projection is None and self.m > 0:
            n_out = _eval_forward(model, self.x[:1]).reshape(1, -1).shape[1]
            self.projection = projection_matrix(n_out, self.m) if self.m < n_out else None
        k = empirical_ntk(model, self.x, self.projection)
        if self.k0 is None:
            self.k0 = k  # resumed runs: the change is measured from the first evaluation
        return {
            names.NTK_CHANGE: kernel_change(self.k0, k),
            names.NTK_ALIGNMENT: kernel_alignment(k, self.targets),
        }


# --------------------------------------------------------------------------- feature rank


def preactivation_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The model's hidden layers' pre-activation probe points, by name (the contract's
    ``probes()``)."""
    require(model, {PROBES}, "feature_rank")
    return {name: probe.pre for name, probe in model.probes().items()}  # type: ignore[attr-defined]


class FeatureRank:
    """``progress/feature_rank/<layer>`` on the first ``rank_batch`` training inputs.

    ``analysis.rank_definition``: ``fan2024`` reads each layer's post-activations (Fan et al.
    2024), ``centred_preactivation`` its pre-activations (:mod:`grokspec.metrics.rank`).
    """

    def __init__(
        self, analysis: Any, dataset: Dataset, device: torch.device,
        capture: EvalCapture | None = None,
    ) -> None:
        self.x = dataset.x_train[: min(analysis.rank_batch, dataset.n_train)].to(device)
        self.tol = analysis.rank_tolerance
        self.fan = analysis.rank_definition == "fan2024"
        self.kind = "post" if self.fan else "pre"
        self.capture = capture if capture is not None else EvalCapture()
        self.capture.want_probes(self.kind, len(self.x))

    def __call__(self, step: int, model: Any) -> dict[str, float]:
        require(model, {PROBES}, "feature_rank")
        rec = self.capture.take(model, self.x, step)
        out = {}
        for name in model.probes():
            h = rec.probe(name, self.kind)
            if h is None:
                continue
            h = h.reshape(-1, h.shape[-1])
            if h.shape[0] < 2:
                continue
            rank = fan2024_rank(h) if self.fan else numerical_rank(h, self.tol)
            out[names.FEATURE_RANK.format(layer=name)] = float(rank)
        return out


# -------------------------------------------------------------------------------- Fourier


class PathwayMeasure:
    """Li et al. 2025 routing metrics, from the contract's ``routing(tokens)``."""

    def __init__(self, analysis: Any, dataset: Dataset, device: torch.device) -> None:
        n = min(analysis.pathway_batch, dataset.n_train)
        self.x = dataset.x_train[:n].to(device)
        self.y = dataset.y_train[:n].cpu()
        self.pairs = analysis.pathway_pairs  # li2025: all pairs; same_label: grokspec's

    def __call__(self, step: int, model: Any) -> dict[str, float]:
        require(model, {ROUTING}, "pathways")
        routes, outputs = pathways_of(model.routing(self.x))
        out = {names.PATHWAY_DISTANCE: pathway_distance_by(self.pairs, routes, self.y)}
        if len(outputs) >= 2:
            out[names.PATHWAY_CONSISTENCY] = pathway_consistency(outputs)
        return out


# -------------------------------------------------------------------------------- builder


class MeasureList(list):
    """The measures of one run (a plain list of callables), with the :class:`EvalCapture`
    they share: the loop records the evaluation through it (:func:`capturing`)."""

    def __init__(self, measures: list[Measure], capture: EvalCapture) -> None:
        super().__init__(measures)
        self.capture = capture


@contextlib.contextmanager
def capturing(model: Any, measures: list[Measure]) -> Iterator[None]:
    """Around the loop's evaluation of ``model``: record what ``measures`` will read (the
    outputs, the probe points' activations) from that forward pass, so they need no pass of
    their own. A no-op for measures that read nothing, or a model that is not a module."""
    capture = measures.capture if isinstance(measures, MeasureList) else None
    if capture is None or not capture.active or not isinstance(model, nn.Module):
        yield
        return
    with capture.recording(model):
        yield


class Scheduled:
    """A measure run at every ``every``-th evaluation (``analysis.measure_every``), and only
    once ``min_steps`` training steps have passed since it last ran (``analysis.intervals``);
    the first evaluation always runs it. Deterministic: depends on the evaluation steps only.
    Passes on the measure's end-of-run step (``finish``) and its checkpointed state."""

    def __init__(self, measure: Measure, every: int, min_steps: int) -> None:
        self.measure, self.every, self.min_steps = measure, max(every, 1), min_steps
        self.evals = 0  # evaluations seen
        self.last: int | None = None  # the step it last ran at

    def __call__(self, step: int, model: Any) -> dict[str, float]:
        i = self.evals
        self.evals += 1
        if i % self.every or (self.last is not None and step - self.last < self.min_steps):
            return {}
        self.last = step
        return self.measure(step, model)

    def finish(self, model: Any, step: int) -> dict[int, dict[str, float]]:
        """Metrics the measure decides only once the run has ended, {step: metrics}."""
        fin = getattr(self.measure, "finish", None)
        return fin(model, step) if fin is not None else {}

    def state_dict(self) -> dict[str, Any]:
        own = getattr(self.measure, "state_dict", None)
        return {"evals": self.evals, "last": self.last,
                "measure": own() if callable(own) else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.evals, self.last = int(state["evals"]), state["last"]
        if state.get("measure") is not None:
            self.measure.load_state_dict(state["measure"])  # type: ignore[attr-defined]


def build_measures(
    experiment: Any, dataset: Dataset, device: torch.device
) -> tuple[list[Measure], list[Monitor]]:
    """The experiment's progress measures (model -> metrics) and history monitors."""
    analysis = experiment.analysis
    chosen = resolve_measures(analysis, experiment.learner, experiment.dataset)
    capture = EvalCapture()
    measures: list[tuple[str, Measure]] = []
    monitors: list[Monitor] = []
    for name in chosen:
        if name == "weight_norm":
            measures.append((name, weight_norm_measure()))
        elif name == "param_movement":
            measures.append((name, ParamMovement(experiment, dataset)))
        elif name == "ntk":
            measures.append((name, NTKMeasure(analysis, dataset, device)))
        elif name == "feature_rank":
            measures.append((name, FeatureRank(analysis, dataset, device, capture)))
        elif name == "fourier":
            measures.append((name, FourierMeasure(experiment, dataset, device, capture)))
        elif name == "pathways":
            measures.append((name, PathwayMeasure(analysis, dataset, device)))
        elif name == "early_warning":
            w, threshold = analysis.warning, experiment.train.fit_threshold
            monitors.append(
                lambda history, w=w, t=threshold: warning_from_history(
                    history, t, w.window, w.min_drop
                )
            )
    scheduled: list[Measure] = [
        Scheduled(m, analysis.measure_every, analysis.interval(name)) for name, m in measures
    ]
    return MeasureList(scheduled, capture), monitors
