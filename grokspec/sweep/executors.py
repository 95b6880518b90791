"""Where the points of a sweep run: in this process, in a local process pool, or on Ray.

Every executor runs the same unit of work, :func:`run_task` (one point, or the seeds of one
point trained as one vectorized batch), and yields its outcomes as tasks complete. Workers
log straight to the MLflow store the orchestrator (:mod:`grokspec.sweep.launch`) prepared: the
SQLite database and the MLflow experiment exist before any worker starts, because several
processes creating a fresh SQLite store at once race on its schema migration and lock or
corrupt it. Points on *other machines* cannot reach a local SQLite file: run an MLflow
tracking server (``mlflow server --backend-store-uri sqlite:///mlflow.db --host 0.0.0.0``)
and give every spec ``tracking.uri: http://HOST:5000``.

A point that raises is reported as an outcome, never as an exception, so one failing point
leaves the others running; a worker that dies takes only its own task with it.

Stopping (issue 12): when the orchestrator is interrupted (Ctrl-C, SIGTERM, SIGHUP) it closes
the executor's generator; the process pool then cancels the queued points and sends SIGTERM
to every worker, which closes its running point KILLED (flushed, partial artifacts) and
exits instead of taking the next point; a worker still alive after ``STOP_GRACE_S`` is
killed and the orchestrator closes its run. Workers also get SIGTERM if the orchestrator
dies (Linux ``PR_SET_PDEATHSIG``), so a SIGKILLed sweep leaves no orphan training on.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Protocol

from grokspec.spec.experiment import Experiment
from grokspec.training.signals import raise_if_requested
from grokspec.training.threads import cores


@dataclass
class Task:
    """One unit of work: a point, or several seeds of one point when ``vectorize``."""

    experiments: list[Experiment]
    parent_run_id: str
    device: str = "auto"
    resume: bool = False
    threads: int | None = None
    vectorize: bool = False
    cwd: str | None = None  # checkpoints are relative to the sweep's working folder
    progress: bool = False  # the run's progress bar (serial sweeps on a terminal)


@dataclass
class Outcome:
    """What became of one point. ``run_id`` is None when no MLflow run could be made."""

    spec_hash: str
    run_id: str | None
    status: str  # FINISHED | FAILED | KILLED
    reason: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def _set_threads(threads: int | None) -> None:
    """Per-worker torch threads, so N workers share the cores instead of each taking all."""
    if not threads:
        return
    import torch

    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set in this process: harmless
        pass


STOP_GRACE_S = 30.0  # how long stopped workers get to close their runs
SETTLE_S = 2.0  # first, how long workers signalled with the driver get to exit by themselves
_IN_WORKER = False  # this process is a pool worker (set by _worker_init)
_BUSY = False  # a task is running in this worker


def _worker_init() -> None:
    """In each pool worker: a stop signal while a task runs ends that task's run KILLED and
    then the worker (see :func:`run_task`); while idle it just ends the worker. And the
    worker is told (SIGTERM) when the orchestrator dies."""
    global _IN_WORKER
    _IN_WORKER = True
    for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if s is not None:
            signal.signal(s, _worker_signal)
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PDEATHSIG
        except (OSError, AttributeError):
            pass


def _worker_signal(signum: int, frame: Any) -> None:
    from grokspec.training.signals import Terminated

    if not _BUSY:
        os._exit(128 + signum)  # idle: no run open, nothing to close
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Terminated(signum)


#: Seconds between two status lines of a parallel sweep.
STATUS_EVERY_S = 30.0


class StatusLine:
    """A periodic one-line status of a sweep whose points train in other processes (done,
    running, queued, elapsed), so it is not silent between two finished points. A serial
    sweep shows each point's own progress line instead."""

    def __init__(self, total: int, echo: Callable[[str], None] | None,
                 every: float | None = None) -> None:
        self.total, self.echo = total, echo
        self.every = STATUS_EVERY_S if every is None else every
        self.start = self.last = time.monotonic()
        self.done = 0

    def tick(self, running: list[str] | None, waiting: int) -> None:
        """``running``: labels of the points training now (None: not known, then
        ``waiting`` counts every point not done, running or queued)."""
        now = time.monotonic()
        if self.echo is None or now - self.last < self.every:
            return
        self.last = now
        head = f"[{_clock(now - self.start)}] {self.done}/{self.total} points done, "
        if running is None:
            self.echo(head + f"{waiting} running or queued")
            return
        names = ", ".join(running[:3]) + (f" +{len(running) - 3}" if len(running) > 3 else "")
        self.echo(head + f"{len(running)} running{f' ({names})' if names else ''}, "
                  f"{waiting} queued")


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}"


def _label(task: Task) -> str:
    exps = task.experiments
    name = exps[0].tracking.run_name or exps[0].name
    return name if len(exps) == 1 else f"{name} +{len(exps) - 1} batched"


def run_task(task: Task) -> list[Outcome]:
    """Run one task in this process; every exception becomes a FAILED outcome.

    In a pool worker, an interrupt (its run already closed KILLED by
    :func:`grokspec.run.run_experiment`) ends the worker process, so it never starts
    another queued point."""
    global _BUSY
    _BUSY = True
    # MLflow's telemetry thread races the first request on an offline machine (a child run
    # failed with '_MLFLOW_TELEMETRY_SESSION_ID', issue 19): off in every worker, as in the CLI
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    try:
        _set_threads(task.threads)
        if task.cwd and os.path.isdir(task.cwd):
            os.chdir(task.cwd)
        if task.vectorize and len(task.experiments) > 1:
            return run_batch_task(task)
        return [run_one(exp, task) for exp in task.experiments]
    except KeyboardInterrupt as exc:
        if _IN_WORKER:
            sys.stderr.flush()
            os._exit(getattr(exc, "exit_code", 130))
        raise
    finally:
        _BUSY = False


def run_one(exp: Experiment, task: Task) -> Outcome:
    """One point as one MLflow run (see :func:`grokspec.run.run_experiment`)."""
    from grokspec.run import run_experiment

    start = time.monotonic()
    try:
        result = run_experiment(
            exp, device=task.device, parent_run_id=task.parent_run_id, resume=task.resume,
            threads=task.threads, progress=task.progress,
        )
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - a failing point must not stop the sweep
        reason = f"{type(exc).__name__}: {exc}"
        return Outcome(exp.spec_hash(), None, "FAILED", reason, seconds=time.monotonic() - start)
    return Outcome(
        exp.spec_hash(), result.run_id, result.status, result.reason, result.summary,
        time.monotonic() - start,
    )


def run_batch_task(task: Task) -> list[Outcome]:
    """The task's seeds as one vectorized computation (see :func:`grokspec.run.run_batch`)."""
    from grokspec.run import run_batch

    start = time.monotonic()
    try:
        results = run_batch(task.experiments, task.device, task.parent_run_id, task.resume,
                            threads=task.threads)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - the runs are closed FAILED already
        return failed(task, f"{type(exc).__name__}: {exc}")
    seconds = (time.monotonic() - start) / len(results)
    return [
        Outcome(e.spec_hash(), r.run_id, r.status, r.reason, r.summary, seconds)
        for e, r in zip(task.experiments, results, strict=True)
    ]


def failed(task: Task, reason: str) -> list[Outcome]:
    return [Outcome(e.spec_hash(), None, "FAILED", reason) for e in task.experiments]


class Executor(Protocol):
    def run(self, tasks: list[Task]) -> Iterable[tuple[Task, list[Outcome]]]:
        """Run the tasks; yield (task, outcomes) as each completes."""
        ...


class SerialExecutor:
    """One point after another in this process (the default; Ctrl-C marks the run KILLED)."""

    def __init__(self, threads: int | None = None, progress: bool = False) -> None:
        self.threads, self.progress = threads, progress

    def run(self, tasks: list[Task]) -> Iterator[tuple[Task, list[Outcome]]]:
        for task in tasks:
            task.threads = task.threads or self.threads
            task.progress = self.progress  # a point is not silent while it trains
            yield task, run_task(task)


class ProcessExecutor:
    """A local pool of ``workers`` processes, each with ``cores // workers`` torch threads
    (one per worker when there are as many workers as cores: tiny models oversubscribe).

    Processes are spawned (not forked): a fork after torch has started its OpenMP threads
    can deadlock. With one GPU every worker shares it; with several, the orchestrator
    spreads points over them round-robin.
    """

    def __init__(self, workers: int, threads: int | None = None) -> None:
        self.workers = workers
        self.threads = threads or max(1, cores() // workers)
        self.status: Callable[[str], None] | None = None  # the sweep's echo (run_sweep)

    def run(self, tasks: list[Task]) -> Iterator[tuple[Task, list[Outcome]]]:
        for task in tasks:
            task.threads = task.threads or self.threads
        ctx = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx,
                                   initializer=_worker_init)
        completed = False
        try:
            futures = {pool.submit(run_task, t): t for t in tasks}
            pending = set(futures)
            line = StatusLine(len(tasks), self.status)
            while pending:  # wake every second: a stop signal is never lost while waiting
                done, pending = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
                raise_if_requested()
                line.done += len(done)
                running = [_label(futures[f]) for f in pending if f.running()]
                line.tick(running, len(pending) - len(running))
                for fut in done:
                    task = futures[fut]
                    try:
                        yield task, fut.result()
                    except Exception as exc:  # noqa: BLE001 - the worker died (OOM, signal)
                        yield task, failed(task, "worker process died: "
                                           f"{type(exc).__name__}: {exc}")
            completed = True
        finally:
            if completed:
                pool.shutdown(wait=True)
            else:
                stop_pool(pool)


def stop_pool(pool: ProcessPoolExecutor, grace: float = STOP_GRACE_S) -> None:
    """Start nothing new; SIGTERM every worker (each closes its running point KILLED and
    exits); SIGKILL those still alive after ``grace`` seconds. Returns once all are gone."""
    workers = list((getattr(pool, "_processes", None) or {}).values())  # CPython's pool
    pool.shutdown(wait=False, cancel_futures=True)
    # Ctrl-C in a terminal reaches the workers too: give those a moment to close their runs
    # undisturbed (a SIGTERM on top would interrupt the closing; the driver would then close
    # the run instead, with its own reason).
    settle = time.monotonic() + SETTLE_S
    while any(p.is_alive() for p in workers) and time.monotonic() < settle:
        time.sleep(0.1)
    for proc in workers:
        if proc.is_alive():
            try:
                os.kill(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + grace
    for proc in workers:
        proc.join(timeout=max(0.0, deadline - time.monotonic()))
        if proc.is_alive():
            proc.kill()
            proc.join(timeout=10)
