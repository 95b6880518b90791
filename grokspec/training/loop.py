"""THE training loop. Every runner and every vectorized batch of seeds goes through it.

Read :func:`train` top to bottom: build the learner(s), optimizer, Grokfast filter and batch
streams; restore a checkpoint when resuming; evaluate at step 0; then per step: batches ->
runner's loss -> backward -> Grokfast -> optimizer -> NaN check -> (every ``eval_every``)
evaluation, measures, early stop and checkpoint. A runner supplies only ``build``, ``loss``
and ``evaluate`` (:mod:`grokspec.training.runner`); modes (one model or N stacked members,
CPU or GPU, resumed or fresh) are branches here, never copies of this loop.

A :class:`Member` is one MLflow run's share of the loop: its experiment, dataset, metric
history and callbacks. One member is a plain run; N members (seeds of one spec, or sweep
points that differ only in seed, optimizer or Grokfast settings: per-member hyperparameters in
:mod:`grokspec.training.batched_optim`) train as one vmapped computation
(:mod:`grokspec.training.batched`) and still record, stop and fail one by one. Nothing here
talks to MLflow: ``Member.log`` is handed in by :mod:`grokspec.run`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from grokspec.datasets.base import Dataset
from grokspec.metrics import names
from grokspec.metrics.measures import capturing
from grokspec.spec.experiment import Experiment
from grokspec.training.allocator import keep_freed_memory
from grokspec.training.batched import SingleLearner, StackedLearner
from grokspec.training.batches import Batch, BatchStream
from grokspec.training.checkpoint import (
    Checkpoint,
    Mirror,
    checkpoint_path,
    rng_state,
    set_rng_state,
)
from grokspec.training.evaluation import accuracy, loss_fn
from grokspec.training.grouping import why_not_batched
from grokspec.training.optim import build_update
from grokspec.training.runner import Runner
from grokspec.training.signals import raise_if_requested
from grokspec.training.step import optimisation_step

SPLITS = ("x_train", "y_train", "x_test", "y_test")


class Diverged(RuntimeError):
    """Training produced a non-finite loss."""

    def __init__(self, step: int) -> None:
        self.step = step
        super().__init__(f"diverged at step {step}: loss is not finite")


class NotVectorizable(ValueError):
    """The built model cannot run under vmap with the same numbers as alone."""


def _noop(*_: Any) -> None:
    return None


@dataclass
class Member:
    """One run's share of the loop: what it trains on, what it recorded, how it ended."""

    experiment: Experiment
    dataset: Dataset
    log: Callable[[dict[str, float], int], None] = _noop
    progress: Callable[[int, dict[str, float]], None] = _noop
    #: Progress measures, called at each evaluation as ``(step, model) -> metrics``.
    measures: list[Callable[[int, Any], dict[str, float]]] = field(default_factory=list)
    #: History monitors (e.g. the early warning), called after each evaluation on the history.
    monitors: list[Callable[[list[dict[str, float]]], dict[str, float]]] = field(
        default_factory=list
    )
    history: list[dict[str, float]] = field(default_factory=list)
    held: int = 0  # consecutive evaluations at or above train.stop.test_acc
    active: bool = True
    error: BaseException | None = None
    model: nn.Module | None = None  # the trained model, once train() returns

    @property
    def last_step(self) -> int:
        return int(self.history[-1]["step"]) if self.history else 0

    def fail(self, error: BaseException) -> None:
        self.active, self.error = False, error

    def record(self, step: int, metrics: dict[str, float], model: Any = None) -> None:
        """One evaluation: NaN check, measures, monitors, log, progress, early stop."""
        if not math.isfinite(metrics.get(names.TRAIN_LOSS, 0.0)):
            self.fail(Diverged(step))
            return
        if model is not None and self.measures:
            metrics = dict(metrics)
            for measure in self.measures:
                metrics.update(measure(step, model))
        self.history.append({"step": step, **metrics})
        if self.monitors:
            metrics = dict(metrics)
            for monitor in self.monitors:
                extra = monitor(self.history)
                metrics.update(extra)
                self.history[-1].update(extra)
        self.log(metrics, step)
        self.progress(step, metrics)
        stop = self.experiment.train.stop
        if stop is not None and names.TEST_ACC in metrics:
            self.held = self.held + 1 if metrics[names.TEST_ACC] >= stop.test_acc else 0
            if self.held >= stop.patience_evals:
                self.active = False

    def finish(self) -> None:
        """What measures decide once the run has ended (e.g. Nanda et al.'s restricted loss
        with the final model's key frequencies): into the history at their evaluation steps,
        and logged there. Not for a run that failed: its final model decides nothing."""
        if self.error is not None or self.model is None:
            return
        for measure in self.measures:
            fin = getattr(measure, "finish", None)
            late = fin(self.model, self.last_step) if fin is not None else {}
            for entry in self.history:
                metrics = late.get(int(entry["step"]))
                if metrics:
                    entry.update(metrics)
                    self.log(metrics, int(entry["step"]))

    def state_dict(self) -> dict[str, Any]:
        return {"held": self.held, "active": self.active,
                "history": [dict(h) for h in self.history],
                "measures": [m.state_dict() if hasattr(m, "state_dict") else None
                             for m in self.measures]}

    def restore(self, state: dict[str, Any]) -> None:
        """Take a checkpointed member's state; replay its history into the (new) run."""
        self.held, self.active = int(state["held"]), bool(state["active"])
        for measure, kept in zip(self.measures, state.get("measures", []), strict=False):
            if kept is not None:
                measure.load_state_dict(kept)  # type: ignore[attr-defined]
        for entry in state["history"]:
            metrics = {k: v for k, v in entry.items() if k != "step"}
            self.history.append(dict(entry))
            self.log(metrics, int(entry["step"]))
            self.progress(int(entry["step"]), metrics)


def train(
    members: list[Member], runner: Runner, device: torch.device, resume: bool = False,
    mirror: Mirror | None = None,
) -> None:
    """Train the members to the end (or early stop); each ends active=False or with error.
    ``mirror``: where checkpoints are also kept for other machines (a tracking server).

    Raises only for what ends every member at once (an exception in the loop, Ctrl-C); a
    member's divergence is recorded in ``member.error`` and the others go on.
    """
    spec = members[0].experiment.train
    if device.type == "cpu":
        keep_freed_memory()  # no page faults for the step's MiB-sized tensors (allocator.py)
    models = []
    for m in members:
        torch.manual_seed(m.experiment.seed)  # init depends on the member's seed only
        models.append(runner.build(m.experiment, m.dataset).to(device))
    tensors = [{k: getattr(m.dataset, k).to(device) for k in SPLITS} for m in members]
    streams = [BatchStream(m.dataset.n_train, spec.batch_size, m.experiment.seed, device,
                           spec.last_batch)
               for m in members]
    from_batches = spec.train_metrics == "batches"  # batch members agree (batch_key)
    if len(members) == 1:
        learner: SingleLearner | StackedLearner = SingleLearner(models[0], runner,
                                                                from_batches)
    else:
        why = why_not_batched([m.experiment for m in members], models[0])
        if why:
            raise NotVectorizable(why)
        template = Batch(None, tensors[0]["x_train"], tensors[0]["y_train"],
                         members[0].dataset, spec)
        learner = StackedLearner(models, runner, template, from_batches)
    # torch's optimizer and GradFilter, or per-member ones when the members' settings differ
    trains = [m.experiment.train for m in members]
    opt, sched, grokfast = build_update(learner.parameters(), trains, learner.groups())
    ckpt = Checkpoint(checkpoint_path([m.experiment for m in members]),
                      members[0].experiment.tracking.checkpoint_every, mirror)
    parts: dict[str, Any] = {"learner": learner, "optimizer": opt, "scheduler": sched,
                             "grokfast": grokfast}

    # train.train_metrics: batches -> per member: summed loss, summed correct, rows, of the
    # training batches since the last evaluation (tensors: no device sync per step)
    seen: list[list[Any]] = [[0.0, 0.0, 0] for _ in members]

    def evaluate(step: int) -> None:
        for j, m in enumerate(members):
            if m.active:
                model = learner.member_model(j)
                batch_side = from_batches and seen[j][2] > 0
                on = ({k: v for k, v in tensors[j].items() if not k.endswith("_train")}
                      if batch_side else tensors[j])
                # The measures read this evaluation's forward pass (outputs, probe points)
                # instead of running the model again (grokspec.metrics.capture).
                with capturing(model, m.measures):
                    metrics = runner.evaluate(model, m.dataset, spec, on)
                if batch_side:
                    loss_sum, correct, rows = seen[j]
                    metrics[names.TRAIN_LOSS] = float(loss_sum) / rows
                    metrics[names.TRAIN_ACC] = float(correct) / rows
                    seen[j] = [0.0, 0.0, 0]
                m.record(step, metrics, model)
                if not m.active and len(members) > 1:  # the batch trains on: keep its state
                    m.model = copy.deepcopy(model)

    start = 0
    state = ckpt.load(device) if resume else None
    if state is not None:
        for key, part in parts.items():
            part.load_state_dict(state[key])
        set_rng_state(state["rng"])
        for s, m, st, ms in zip(streams, members, state["batches"], state["members"],
                                strict=True):
            s.load_state_dict(st)
            m.restore(ms)
        start = int(state["step"])
    else:
        evaluate(0)

    check_every_step = device.type == "cpu"  # a NaN check costs a device sync on GPU
    for step in range(start + 1, spec.steps + 1):
        raise_if_requested()  # a SIGTERM whose exception a __del__ swallowed (signals.py)
        if not any(m.active for m in members):
            break
        batches = []
        for s, t in zip(streams, tensors, strict=True):
            idx = s.next()
            x, y = (t["x_train"], t["y_train"]) if idx is None else (
                t["x_train"][idx], t["y_train"][idx])
            batches.append(Batch(idx, x, y, members[0].dataset, spec))
        losses = optimisation_step(learner, opt, sched, grokfast, batches)
        if from_batches:
            for j, (b, out) in enumerate(zip(batches, learner.outputs, strict=True)):
                n = int(b.y.shape[0])
                seen[j][0] += loss_fn(out, b.y, members[j].dataset, spec) * n
                seen[j][1] += accuracy(out, b.y, members[j].dataset).sum()
                seen[j][2] += n
        if check_every_step:
            for m, value in zip(members, losses.tolist(), strict=True):
                if m.active and not math.isfinite(value):
                    m.fail(Diverged(step))
        if step % spec.eval_every == 0 or step == spec.steps:
            evaluate(step)
            if ckpt.due(step):
                ckpt.save(step, {
                    **{key: part.state_dict() for key, part in parts.items()},
                    "rng": rng_state(),
                    "batches": [s.state_dict() for s in streams],
                    "members": [m.state_dict() for m in members],
                })
    for j, m in enumerate(members):
        m.active = False
        if m.model is None:
            m.model = learner.member_model(j)
        m.finish()
    ckpt.delete()


def fit(
    experiment: Experiment,
    device: str | torch.device = "cpu",
    dataset: Dataset | None = None,
    measures: bool = True,
) -> Member:
    """Train one experiment without MLflow (tests, benches, notebooks); returns its member.

    Divergence is recorded in ``member.error``, as in a tracked run.
    """
    from grokspec.metrics.measures import build_measures
    from grokspec.spec.features import runner_name
    from grokspec.training.runner import load_runner

    dev = torch.device(device) if isinstance(device, str) else device
    data = dataset if dataset is not None else experiment.dataset.build(experiment.seed)
    member = Member(experiment, data)
    if measures:
        member.measures, member.monitors = build_measures(experiment, data, dev)
    train([member], load_runner(runner_name(experiment)), dev)
    return member


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> cuda when present, else cpu."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
