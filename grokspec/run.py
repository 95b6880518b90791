"""Run one experiment end to end: build, train with its runner, log to MLflow, summarise.

Everything that can be wrong with a spec or its dataset fails *before* the MLflow run is
created, so a bad spec never leaves a half-logged run. Once the run exists, every way out of
training (finish, divergence, exception, Ctrl-C) closes it with a status and a reason.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass, field
from typing import Any

import yaml

import grokspec
from grokspec.analysis.plots import curves_figure, to_png
from grokspec.metrics import names
from grokspec.metrics.events import grok_events
from grokspec.metrics.measures import build_measures
from grokspec.metrics.summary import analyse, summary_metrics
from grokspec.spec.experiment import Experiment, flatten
from grokspec.tracking.tracker import Tracker, resolve_uri
from grokspec.training.evaluation import resolve_device
from grokspec.training.runner import Diverged, RunContext, Runner, load_runner, runner_name


@dataclass
class RunResult:
    run_id: str
    status: str  # FINISHED | FAILED | KILLED
    history: list[dict[str, float]]
    summary: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    artifacts: dict[str, Any] = field(default_factory=dict)


def summarize(experiment: Experiment, history: list[dict[str, float]]) -> dict[str, Any]:
    """Grokking events and final values from the metric history."""
    evals = [h for h in history if names.TRAIN_ACC in h and names.TEST_ACC in h]
    steps = [int(h["step"]) for h in evals]
    ev = grok_events(
        steps,
        [h[names.TRAIN_ACC] for h in evals],
        [h[names.TEST_ACC] for h in evals],
        experiment.train.fit_threshold,
    )
    last = evals[-1] if evals else {}
    return {
        "threshold": experiment.train.fit_threshold,
        **ev,
        **analyse(history, experiment.train.fit_threshold, experiment.analysis),
        "final_step": steps[-1] if steps else 0,
        "final": {k: v for k, v in last.items() if k != "step"},
    }


def history_csv(history: list[dict[str, float]]) -> str:
    keys = ["step", *sorted({k for h in history for k in h} - {"step"})]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys)
    writer.writeheader()
    writer.writerows(history)
    return buf.getvalue()


def split_fingerprint(dataset: Any) -> str:
    """Hash of the train/test tensors: runs with equal tags trained and tested on the same
    examples (what a cross-model comparison in one sweep relies on)."""
    h = hashlib.sha256()
    for t in (dataset.x_train, dataset.y_train, dataset.x_test, dataset.y_test):
        h.update(str((tuple(t.shape), str(t.dtype))).encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def run_tags(experiment: Experiment) -> dict[str, str]:
    tags = {
        "grokspec.learner": experiment.learner.kind,
        "grokspec.dataset": experiment.dataset.kind,
        "grokspec.spec_hash": experiment.spec_hash(),
        "grokspec.version": grokspec.__version__,
        "grokspec.runner": runner_name(experiment),
        **experiment.tracking.tags,
    }
    if experiment.description:
        tags["mlflow.note.content"] = experiment.description
    return tags


def run_experiment(
    experiment: Experiment,
    device: str = "auto",
    progress: bool = False,
    parent_run_id: str | None = None,
    runner: Runner | None = None,
    resume: bool = False,
) -> RunResult:
    """Train ``experiment`` and log it as one MLflow run. Raises on crash/Ctrl-C (after
    marking the run FAILED/KILLED); returns a FAILED result on divergence.

    ``runner`` replaces the entry-point runner (the vectorized seed batch hands each seed's
    run its share of one batched loop); ``resume`` lets the runner continue from the
    experiment's last checkpoint (see :mod:`grokspec.training.checkpoint`)."""
    dataset = experiment.dataset.build(experiment.seed)
    experiment.learner.check_dataset(dataset)
    runner = runner or load_runner(runner_name(experiment))
    dev = resolve_device(device)
    measures, monitors = build_measures(experiment, dataset, dev)

    tracker = Tracker(
        resolve_uri(experiment.tracking.uri),
        experiment.tracking.experiment,
        experiment.tracking.run_name or experiment.name,
        tags=run_tags(experiment),
        parent_run_id=parent_run_id,
    )
    tracker.log_params(flatten(experiment.resolved()))
    tracker.set_tags({"grokspec.device": str(dev), "grokspec.split": split_fingerprint(dataset)})
    bar = _progress_bar(experiment) if progress else None
    ctx = RunContext(experiment, dataset, dev, log=lambda m, s: tracker.log_metrics(m, s))
    ctx.resume = resume
    ctx.measures, ctx.monitors = measures, monitors
    if bar is not None:
        ctx.progress = bar.update_to
    last_step = lambda: int(ctx.history[-1]["step"]) if ctx.history else 0  # noqa: E731
    try:
        runner.run(ctx)
    except Diverged as exc:
        _safe_end(tracker, experiment, ctx.history, "FAILED", str(exc))
        return RunResult(tracker.run_id, "FAILED", ctx.history, reason=str(exc))
    except KeyboardInterrupt:
        reason = f"interrupted (Ctrl-C) after step {last_step()}"
        _safe_end(tracker, experiment, ctx.history, "KILLED", reason)
        raise
    except BaseException as exc:
        reason = f"{type(exc).__name__}: {exc} (after step {last_step()})"
        _safe_end(tracker, experiment, ctx.history, "FAILED", reason)
        raise
    finally:
        if bar is not None:
            bar.close()
    summary = summarize(experiment, ctx.history)
    tracker.log_metrics(summary_metrics(summary))
    tracker.set_tags({names.PHASE_TAG: summary["phase"]})
    tracker.log_json(summary["stages"], "grok/stages.json")
    _finish_artifacts(tracker, experiment, ctx.history, summary)
    tracker.end("FINISHED")
    return RunResult(tracker.run_id, "FINISHED", ctx.history, summary, artifacts=ctx.artifacts)


def _finish_artifacts(
    tracker: Tracker,
    experiment: Experiment,
    history: list[dict[str, float]],
    summary: dict[str, Any] | None = None,
) -> None:
    files = {
        "spec.yaml": yaml.safe_dump(experiment.resolved(), sort_keys=False).encode(),
        "history.csv": history_csv(history).encode(),
    }
    if summary is not None:
        files["summary.json"] = json.dumps(summary, indent=2).encode()
    if history:
        files["curves.png"] = to_png(curves_figure(history, experiment.name))
    tracker.log_files(files)


def _safe_end(
    tracker: Tracker, experiment: Experiment, history: list, status: str, reason: str
) -> None:
    """Close the run with a reason even if logging the partial artifacts fails too."""
    try:
        _finish_artifacts(tracker, experiment, history)
    except Exception:  # noqa: BLE001 - the original error is what matters
        pass
    tracker.end(status, reason)


class _Bar:
    """tqdm progress bar driven by evaluation callbacks (step, train acc, test acc, rate, ETA)."""

    def __init__(self, total: int, desc: str) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, desc=desc, unit="step", dynamic_ncols=True)
        self.n = 0

    def update_to(self, step: int, metrics: dict[str, float]) -> None:
        self.bar.update(step - self.n)
        self.n = step
        post = {}
        if names.TRAIN_ACC in metrics:
            post["train"] = f"{metrics[names.TRAIN_ACC]:.3f}"
        if names.TEST_ACC in metrics:
            post["test"] = f"{metrics[names.TEST_ACC]:.3f}"
        self.bar.set_postfix(post, refresh=False)

    def close(self) -> None:
        self.bar.close()


def _progress_bar(experiment: Experiment) -> _Bar:
    return _Bar(experiment.train.steps, experiment.name)
