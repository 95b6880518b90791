"""Run a validated :class:`~grokspec.sweep.expand.Sweep`: one MLflow parent, one child a point.

The orchestrator lives in the calling process and is the only one that creates things in
the store: the SQLite database, the MLflow experiment and the parent run exist before any
worker starts (see :mod:`grokspec.sweep.executors` for why). Then:

- **Resume.** A sweep is identified by its hash (the set of its points' spec hashes); running
  the same sweep again reuses its parent run and skips every point that already has a
  FINISHED child (matched by the ``grokspec.spec_hash`` tag), re-running FAILED and KILLED
  ones. With ``resume=True`` those continue from their checkpoints. ``fresh=True`` starts a
  new parent and runs everything.
- **Failure.** A point that raises or diverges is a FAILED child with its reason (tag
  ``grokspec.failure_reason``); the others carry on; the parent ends FAILED saying how many.
- **Stopping.** SIGTERM/SIGINT/SIGHUP to the sweep stop it: the executor starts no new point
  and stops its workers (none orphaned), running children end KILLED with the reason, then
  the parent; the CLI exits 128 + the signal. A sweep (re-)run first closes the runs whose
  process died (a SIGKILLed earlier attempt's RUNNING children, see
  :mod:`grokspec.tracking.liveness`).
- **Report.** The parent carries the comparison (per-child summary metrics, the results
  table as its description, results.csv/.md, comparison.png): :mod:`grokspec.sweep.report`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grokspec.run import run_tags
from grokspec.sweep.executors import Executor, Outcome, SerialExecutor, Task
from grokspec.sweep.expand import Point, Sweep
from grokspec.sweep.report import markdown_table, report
from grokspec.tracking import tags
from grokspec.tracking.liveness import close_dead_in
from grokspec.tracking.store import RunStore
from grokspec.tracking.tracker import Tracker
from grokspec.training.signals import interrupt_reason, terminate_as_interrupt


@dataclass
class SweepResult:
    parent_run_id: str
    status: str
    outcomes: dict[int, Outcome] = field(default_factory=dict)  # point index -> outcome
    skipped: list[int] = field(default_factory=list)  # points already FINISHED earlier
    table: list[dict[str, Any]] = field(default_factory=list)
    experiment_id: str | None = None


def run_sweep(
    sweep: Sweep,
    executor: Executor | None = None,
    device: str = "auto",
    resume: bool = False,
    fresh: bool = False,
    echo: Callable[[str], None] = print,
) -> SweepResult:
    """Run every point not finished yet; returns when all are done (or raises on Ctrl-C)."""
    executor = executor or SerialExecutor()
    if hasattr(executor, "status"):  # parallel executors: a periodic one-line status
        executor.status = echo
    first = sweep.experiment.tracking
    store = RunStore(first.uri)
    uri = store.uri
    exp_id = store.experiment_id(first.experiment, create=True)  # before any worker
    assert exp_id is not None
    close_dead_in(uri, [first.experiment], echo)  # e.g. a SIGKILLed attempt's children
    parent_id = None if fresh else store.sweep_parent(exp_id, sweep.sweep_hash())
    if parent_id is None:
        parent = _create_parent(uri, first.experiment, sweep)
        parent_id = parent.run_id
    else:
        parent = Tracker.attach(uri, parent_id)
        parent.reopen()
        echo(f"resuming sweep '{sweep.name}' in parent run {parent_id}")
    since = int(time.time() * 1000)

    def this_attempt(run: Any) -> bool:
        return run.info.start_time >= since

    finished = store.finished_children(parent_id, exp_id)
    todo = [p for p in sweep.points if p.experiment.spec_hash() not in finished]
    result = SweepResult(parent_id, "RUNNING")
    result.skipped = [p.index for p in sweep.points if p.experiment.spec_hash() in finished]
    if result.skipped:
        echo(f"skipping {len(result.skipped)} finished point(s); {len(todo)} to run")
    tasks = plan_tasks(todo, sweep, parent_id, device, resume, uri, echo)
    by_hash = {p.experiment.spec_hash(): p for p in sweep.points}
    done = 0
    with terminate_as_interrupt():  # SIGTERM/SIGHUP stop the sweep like Ctrl-C
        outcomes_of = executor.run(tasks)
        try:
            for _task, outcomes in outcomes_of:
                for out in outcomes:
                    point = by_hash[out.spec_hash]
                    if out.run_id is None:  # the run never got made, or its worker died
                        out.run_id = _mark_failed(store, exp_id, point, parent_id, since,
                                                  out.reason)
                    result.outcomes[point.index] = out
                    done += 1
                    echo(_progress_line(done, len(todo), point, out))
                parent.beat()
        except KeyboardInterrupt as exc:
            why = interrupt_reason(exc, done).replace(f"after step {done}",
                                                      f"after {done} of {len(todo)} points")
            _stop(outcomes_of)
            close_running_children(store, parent_id, f"sweep {why}", "KILLED", exp_id,
                                   this_attempt, echo)
            parent.end("KILLED", why)
            raise
        except BaseException as exc:
            _stop(outcomes_of)
            close_running_children(store, parent_id,
                                   f"sweep failed: {type(exc).__name__}: {exc}", "KILLED",
                                   exp_id, this_attempt, echo)
            parent.end("FAILED", f"{type(exc).__name__}: {exc}")
            raise
    # A child still RUNNING now lost its worker (a node died, Ray retried the point as
    # another run): the point's outcome is that other run; this one is closed, not orphaned.
    close_running_children(store, parent_id, "its worker was lost (node died or killed); the "
                           "point's result is this sweep's other run of it", "FAILED", exp_id,
                           this_attempt, echo)
    result.table = report(store, parent, exp_id, sweep)
    n_bad = sum(1 for row in result.table if row["status"] != "FINISHED")
    result.status = "FINISHED" if n_bad == 0 else "FAILED"
    reason = None if n_bad == 0 else f"{n_bad} of {len(sweep.points)} points did not finish"
    parent.end(result.status, reason)
    result.experiment_id = exp_id
    return result


def plan_tasks(
    todo: list[Point],
    sweep: Sweep,
    parent_id: str,
    device: str,
    resume: bool,
    uri: str,
    echo: Callable[[str], None] = print,
) -> list[Task]:
    """One task per point, or per batch of points when ``vectorize`` says to batch them.

    Points that differ only in seed, optimizer settings (lr, weight decay, betas, momentum,
    warmup) or Grokfast settings form one batch (:func:`grokspec.training.grouping.
    batch_groups`: one vmapped computation, each point still its own child run).
    ``vectorize: auto`` batches a group only where a timing probe of one training step,
    batched vs alone on this device, says it pays (:mod:`grokspec.training.cost`), and
    prints the measurement it decided from.

    Every point gets the resolved tracking URI, so workers started elsewhere (Ray) log to
    the same store whatever their working folder or environment.
    """
    from grokspec.training.grouping import batch_groups, why_not_batched

    def pinned(p: Point) -> Any:
        tracking = p.experiment.tracking.model_copy(update={"uri": uri})
        return p.experiment.model_copy(update={"tracking": tracking})

    setting = sweep.spec.vectorize
    groups = batch_groups(todo, lambda p: p.experiment) if setting else [[p] for p in todo]
    n_gpus = _gpu_count() if device == "auto" else 0
    cwd = str(Path.cwd())
    tasks: list[Task] = []
    notes: list[str] = []
    for group in groups:
        why = why_not_batched([p.experiment for p in group]) if len(group) > 1 else "one point"
        if why is None and setting == "auto":
            why = _probe(group, device, notes)
        if why is not None and len(group) > 1:
            _note(notes, f"vectorize: not batching {len(group)} points: {why}")
        units = [group] if why is None else [[p] for p in group]
        for unit in units:  # several GPUs: spread the tasks over them round-robin
            dev = f"cuda:{len(tasks) % n_gpus}" if n_gpus > 1 else device
            tasks.append(Task([pinned(p) for p in unit], parent_id, dev, resume,
                              vectorize=len(unit) > 1, cwd=cwd))
    for note in notes:
        echo(note)
    return tasks


def _note(notes: list[str], text: str) -> None:
    if text not in notes:
        notes.append(text)


def _probe(group: list[Point], device: str, notes: list[str]) -> str | None:
    """``vectorize: auto``: time one step batched vs alone; None when batching pays."""
    from grokspec.training.cost import decide
    from grokspec.training.loop import resolve_device

    try:
        verdict = decide([p.experiment for p in group], resolve_device(device))
    except Exception as exc:  # noqa: BLE001 - cannot measure: do not batch
        return f"the timing probe failed ({type(exc).__name__}: {exc})"
    _note(notes, verdict.explain())
    return None if verdict.batch else "the timing probe measured no gain"


def _gpu_count() -> int:
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # noqa: BLE001 - no usable CUDA: run on CPU
        return 0


# ----------------------------------------------------------------------------- parent run


def _create_parent(uri: str, experiment: str, sweep: Sweep) -> Tracker:
    """The sweep's parent run: its axes as params and tags, the spec file as an artifact."""
    parent_tags = {
        tags.SWEEP_HASH: sweep.sweep_hash(),
        tags.SWEEP_ROLE: "parent",
        tags.SWEEP_AXES: json.dumps(sweep.axes),
        tags.SWEEP_SOURCE: sweep.source,
    }
    parent = Tracker(uri, experiment, sweep.name, tags=parent_tags)
    spec = sweep.spec
    params: dict[str, Any] = {"sweep.points": len(sweep.points),
                              "sweep.vectorize": spec.vectorize}
    params |= {f"sweep.grid.{k}": json.dumps(_values(v)) for k, v in spec.grid.items()}
    params |= {f"sweep.zip.{k}": json.dumps(_values(v)) for k, v in spec.zip.items()}
    if spec.seeds is not None:
        params["sweep.seeds"] = json.dumps(spec.seed_list(sweep.points[0].seed))
    if spec.variants:
        params["sweep.variants"] = json.dumps(list(spec.variants))
    parent.log_params(params)
    if Path(sweep.source).is_file():
        parent.log_file(sweep.source)
    return parent


def _values(axis: Any) -> list[Any]:
    from grokspec.spec.sweep import axis_values

    return axis_values(axis)


def _mark_failed(
    store: RunStore,
    exp_id: str,
    point: Point,
    parent_id: str,
    since: int,
    reason: str | None,
) -> str:
    """Make sure a point that failed has a FAILED child run carrying the reason."""
    h = point.experiment.spec_hash()
    runs = [
        r for r in store.children(parent_id, exp_id)
        if r.data.tags.get(tags.SPEC_HASH) == h and r.info.start_time >= since
    ]
    reason = reason or "failed"
    if runs:  # the run exists: close it if its worker died while it was RUNNING
        run = runs[-1]
        if run.info.status == "RUNNING":
            Tracker.attach(store.uri, run.info.run_id).end("FAILED", reason)
        elif tags.FAILURE_REASON not in run.data.tags:
            Tracker.attach(store.uri, run.info.run_id).set_tags(
                {tags.FAILURE_REASON: reason[:5000]})
        return run.info.run_id
    exp = point.experiment
    tracker = Tracker(
        store.uri, exp.tracking.experiment, exp.tracking.run_name or exp.name,
        tags=run_tags(exp), parent_run_id=parent_id,
    )
    tracker.end("FAILED", reason)
    return tracker.run_id


def _stop(outcomes_of: Any) -> None:
    """Close the executor's generator now: its ``finally`` starts no new point and stops the
    workers (see :mod:`grokspec.sweep.executors`); a second signal meanwhile is ignored."""
    import signal

    from grokspec.training.signals import CAUGHT

    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (*CAUGHT, signal.SIGINT)}
    try:
        outcomes_of.close()
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def close_running_children(
    store: RunStore, parent_id: str, reason: str, status: str = "KILLED",
    exp_id: str | None = None, keep: Callable[[Any], bool] = lambda run: True,
    echo: Callable[[str], None] | None = None,
) -> None:
    """Children of the sweep still RUNNING whose worker is gone (stopped, killed, or lost
    with its node) end ``status`` with ``reason``; ``keep`` picks which (this attempt's, a
    lost task's points)."""
    for run in store.children(parent_id, exp_id, status="RUNNING"):
        if keep(run):
            Tracker.attach(store.uri, run.info.run_id).end(status, reason)
            if echo is not None:
                echo(f"closed child run {run.info.run_id} {status}: {reason}")


def _progress_line(done: int, total: int, point: Point, out: Outcome) -> str:
    s = out.summary or {}
    extra = ""
    if out.status == "FINISHED":
        from grokspec.metrics.summary import phase_fit

        thr, tr, te = phase_fit(s)
        at = f"@{thr:g}" if thr is not None else ""
        extra = (f"fit{at} {tr}, grok{at} {te}, {s.get('phase', '')} "
                 f"({s.get('phase_rule', '?')} rule)")
    else:
        extra = (out.reason or "").splitlines()[0][:120] if out.reason else ""
    head = f"[{done}/{total}] {out.status:<8} #{point.index} {point.label}"
    return f"{head}: {extra} ({out.seconds:.1f}s)"


__all__ = ["SweepResult", "close_running_children", "markdown_table", "plan_tasks", "run_sweep"]
