"""Run experiments end to end: open the MLflow run(s), train in the one loop, close them.

``open -> train -> close`` are separate steps so that N seeds trained as one vectorized
batch open N runs, train once (:func:`grokspec.training.loop.train` with N members) and close
N runs, all on one thread. Everything that can be wrong with a spec or its dataset fails
*before* a run is opened, so a bad spec never leaves a half-logged run. Once a run exists,
every way out (finish, divergence, exception, Ctrl-C, SIGTERM/SIGHUP) closes it with a status
and a reason.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import sys
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
from grokspec.spec.features import runner_name
from grokspec.tracking import tags as tag
from grokspec.tracking.checkpoints import mirror_for
from grokspec.tracking.tracker import Tracker, resolve_uri
from grokspec.training.grouping import why_not_batched
from grokspec.training.loop import Member, NotVectorizable, resolve_device, train
from grokspec.training.runner import Runner, load_runner
from grokspec.training.signals import interrupt_reason, terminate_as_interrupt


@dataclass
class RunResult:
    run_id: str
    status: str  # FINISHED | FAILED | KILLED
    history: list[dict[str, float]]
    summary: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    artifacts: dict[str, Any] = field(default_factory=dict)
    experiment_id: str | None = None  # the MLflow experiment (for the UI's address)


@dataclass
class OpenRun:
    """An MLflow run that exists and must be closed, with its member of the loop."""

    experiment: Experiment
    tracker: Tracker
    member: Member
    bar: Any = None


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
        tag.LEARNER: experiment.learner.kind,
        tag.DATASET: experiment.dataset.kind,
        tag.SPEC_HASH: experiment.spec_hash(),
        tag.VERSION: grokspec.__version__,
        tag.RUNNER: runner_name(experiment),
        **experiment.tracking.tags,
    }
    if experiment.description:
        tags[tag.NOTE] = experiment.description
    return tags


# -- open / close ---------------------------------------------------------------------------


def open_run(
    experiment: Experiment,
    device: Any,
    progress: bool = False,
    parent_run_id: str | None = None,
    threads: int | None = None,
) -> OpenRun:
    """Build and check the dataset, choose torch's threads (``threads``: as given), then
    create the MLflow run (params, tags, the split as its dataset input)."""
    dataset = experiment.dataset.build(experiment.seed)
    experiment.learner.check_dataset(dataset)
    n_threads = use_threads(experiment, dataset, threads)
    measures, monitors = build_measures(experiment, dataset, device)
    tracker = Tracker(
        resolve_uri(experiment.tracking.uri),
        experiment.tracking.experiment,
        experiment.tracking.run_name or experiment.name,
        tags=run_tags(experiment),
        parent_run_id=parent_run_id,
    )
    member = Member(experiment, dataset, log=tracker.log_metrics,
                    measures=measures, monitors=monitors)
    run = OpenRun(experiment, tracker, member)
    try:
        tracker.log_params(flatten(experiment.resolved()))
        fingerprint = split_fingerprint(dataset)
        tracker.set_tags({tag.DEVICE: str(device), tag.SPLIT: fingerprint,
                          tag.THREADS: str(n_threads)})
        tracker.log_experiment_input(experiment, dataset, fingerprint)
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM while the run was being set up
        _safe_end(run, "KILLED", interrupt_reason(exc, 0))
        raise
    except BaseException as exc:
        _safe_end(run, "FAILED", f"{type(exc).__name__}: {exc} (logging the spec)")
        raise
    if progress:
        run.bar = _Bar(experiment.train.steps, experiment.name)
        member.progress = run.bar.update_to
    return run


def close_run(run: OpenRun) -> RunResult:
    """Close a trained run: FAILED with the reason if it diverged, else summary, phase tag,
    artifacts and FINISHED."""
    m, tracker = run.member, run.tracker
    if run.bar is not None:
        run.bar.close()
    if m.error is not None:
        reason = str(m.error)
        _safe_end(run, "FAILED", reason)
        return RunResult(tracker.run_id, "FAILED", m.history, reason=reason,
                         experiment_id=tracker.experiment_id)
    try:  # anything failing while closing still closes the run (issue 12)
        summary = summarize(run.experiment, m.history)
        tracker.log_metrics(summary_metrics(summary))
        tracker.set_tags({names.PHASE_TAG: summary["phase"],
                          names.PHASE_RULE_TAG: summary["phase_rule"]})
        tracker.log_json(summary["stages"], "grok/stages.json")
        _finish_artifacts(tracker, run.experiment, m.history, summary)
        tracker.end("FINISHED")
    except KeyboardInterrupt as exc:
        _safe_end(run, "KILLED", f"{interrupt_reason(exc, m.last_step)}, while closing")
        raise
    except BaseException as exc:
        _safe_end(run, "FAILED", f"{type(exc).__name__}: {exc} (closing the run after "
                                 f"step {m.last_step})")
        raise
    return RunResult(tracker.run_id, "FINISHED", m.history, summary,
                     artifacts={"model": m.model}, experiment_id=tracker.experiment_id)


def train_and_close(
    runs: list[OpenRun], runner: Runner, device: Any, resume: bool = False
) -> list[RunResult]:
    """Train the open runs' members together, then close every run, whatever happened."""
    first = runs[0]
    mirror = mirror_for(first.tracker, first.experiment.spec_hash())
    try:
        train([r.member for r in runs], runner, device, resume, mirror)
    except NotVectorizable as exc:  # the built model cannot be batched: one after another
        print(f"vectorize: {exc}; running the seeds one after another", file=sys.stderr)
        return [res for r in runs for res in train_and_close([r], runner, device, resume)]
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM/SIGHUP (signals.Terminated)
        for r in runs:
            _safe_end(r, "KILLED", interrupt_reason(exc, r.member.last_step))
        raise
    except BaseException as exc:
        for r in runs:
            reason = f"{type(exc).__name__}: {exc} (after step {r.member.last_step})"
            _safe_end(r, "FAILED", reason)
        raise
    return _close_all(runs)


def _close_all(runs: list[OpenRun]) -> list[RunResult]:
    """Close every run even when closing one of them raises (then re-raise the first)."""
    results, first = [], None
    for r in runs:
        try:
            results.append(close_run(r))
        except BaseException as exc:  # noqa: BLE001 - re-raised below, after the others
            first = first or exc
    if first is not None:
        raise first
    return results


# -- entry points -----------------------------------------------------------------------------


def run_experiment(
    experiment: Experiment,
    device: str = "auto",
    progress: bool = False,
    parent_run_id: str | None = None,
    runner: Runner | None = None,
    resume: bool = False,
    threads: int | None = None,
) -> RunResult:
    """Train ``experiment`` and log it as one MLflow run. Raises on crash, Ctrl-C or
    SIGTERM (after marking the run FAILED/KILLED); returns a FAILED result on divergence.
    ``threads``: torch's intra-op threads (default: chosen, see grokspec.training.threads)."""
    runner = runner or load_runner(runner_name(experiment))
    dev = resolve_device(device)
    with terminate_as_interrupt():
        run = open_run(experiment, dev, progress, parent_run_id, threads)
        return train_and_close([run], runner, dev, resume)[0]


def run_batch(
    experiments: list[Experiment],
    device: str = "auto",
    parent_run_id: str | None = None,
    resume: bool = False,
    threads: int | None = None,
) -> list[RunResult]:
    """The seeds of one spec as one vectorized computation: N runs opened, one loop, N runs
    closed. Falls back to one run after another (with a note) when they cannot be batched."""
    why = why_not_batched(experiments)
    if why:
        print(f"vectorize: {why}; running the seeds one after another", file=sys.stderr)
        return [run_experiment(e, device, parent_run_id=parent_run_id, resume=resume,
                               threads=threads) for e in experiments]
    runner = load_runner(runner_name(experiments[0]))
    dev = resolve_device(device)
    runs: list[OpenRun] = []
    with terminate_as_interrupt():
        try:
            for e in experiments:
                runs.append(open_run(e, dev, parent_run_id=parent_run_id, threads=threads))
        except BaseException as exc:  # close the runs already opened before re-raising
            for r in runs:
                _safe_end(r, "FAILED", f"a sibling in the batch failed to start: {exc}")
            raise
        return train_and_close(runs, runner, dev, resume)


# -- artifacts and progress -------------------------------------------------------------------


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
        files["curves.png"] = to_png(curves_figure(history, curves_title(experiment)))
    tracker.log_files(files)


def curves_title(experiment: Experiment) -> str:
    """``cross-model-parity / gp: gp on parity``: which run, and which learner on what."""
    name = experiment.name
    if experiment.tracking.run_name and experiment.tracking.run_name != name:
        name = f"{name} / {experiment.tracking.run_name}"
    return f"{name}: {experiment.learner.kind} on {experiment.dataset.kind}"


_announced: set[tuple[int, str]] = set()


def use_threads(experiment: Experiment, dataset: Any, requested: int | None) -> int:
    """Choose and set torch's intra-op threads for this run; say so (once per choice)."""
    from grokspec.training.threads import apply_threads, choose_threads

    n, why = choose_threads(experiment, dataset, requested)
    apply_threads(n)
    if (n, why) not in _announced:
        _announced.add((n, why))
        print(f"threads: {n} ({why})", file=sys.stderr)
    return n


def _safe_end(run: OpenRun, status: str, reason: str) -> None:
    """Close the run with a reason even if logging the partial artifacts fails too."""
    if run.bar is not None:
        run.bar.close()
    try:
        _finish_artifacts(run.tracker, run.experiment, run.member.history)
    except Exception:  # noqa: BLE001 - the original error is what matters
        pass
    run.tracker.end(status, reason)


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
