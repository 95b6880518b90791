"""The Ray executor: the points of a sweep as Ray tasks, on one machine or a cluster.

Separate from :mod:`grokspec.sweep.executors` (the unit of work and the local executors)
because what a cluster adds is its own concern: a lost node's point is re-queued by grokspec
as a resume (``max_retries=0``), the lost attempt's run is closed with the reason, a stop
cancels gracefully first. See docs/cluster.md and tests/test_ray_cluster.py.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

from grokspec.sweep.executors import STOP_GRACE_S, Outcome, StatusLine, Task, failed, run_task


class RayExecutor:
    """Ray tasks, one per point, with the sweep's ``resources`` (fractional GPUs allowed).

    ``address=None`` starts a local Ray instance (and stops it afterwards); ``auto`` or
    ``ray://host:10001`` joins a cluster, whose nodes must have grokspec installed and reach
    the tracking URI (a tracking server, not a SQLite file).
    """

    def __init__(
        self,
        address: str | None = None,
        cpus: float = 1.0,
        gpus: float = 0.0,
        init_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.address, self.cpus, self.gpus = address, cpus, gpus
        self.init_kwargs = init_kwargs or {}
        self.threads: int | None = None  # --threads; default: the task's CPUs
        self.status: Callable[[str], None] | None = None  # the sweep's echo (run_sweep)

    def run(self, tasks: list[Task]) -> Iterator[tuple[Task, list[Outcome]]]:
        try:
            import ray
        except ImportError:
            raise RuntimeError(
                "the ray executor needs Ray: pip install 'grokspec[ray]'"
            ) from None
        # Ray's periodic "[state-dump]" event statistics (C++ logging every 60 s) reached the
        # driver's stderr despite log_to_driver=False (issue 19): -1 turns the printing off in
        # this process and in a local instance ray.init starts
        os.environ.setdefault("RAY_event_stats_print_interval_ms", "-1")
        started = not ray.is_initialized()
        if started:
            kwargs = {"include_dashboard": False, "log_to_driver": False, **self.init_kwargs}
            ray.init(address=self.address, **kwargs)
        # max_retries=0: a point whose worker or node is lost is re-queued by grokspec
        # (below), as a resume, so it continues from its last checkpoint (mirrored through
        # the tracking server) and the lost attempt's run is closed with the reason.
        remote = ray.remote(run_task).options(num_cpus=self.cpus, num_gpus=self.gpus,
                                              max_retries=0)
        for task in tasks:
            task.threads = task.threads or self.threads or max(1, int(self.cpus))
        refs = {remote.remote(t): t for t in tasks}
        requeued: dict[int, int] = {}
        pending = list(refs)
        line = StatusLine(len(tasks), self.status)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1, timeout=1.0)
                line.tick(None, len(pending))  # Ray does not say cheaply which run
                if not done:
                    continue
                task = refs.pop(done[0])
                try:
                    outcomes = ray.get(done[0])
                except ray.exceptions.RayError as exc:
                    why = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
                    if _worker_lost(ray, exc) and requeued.get(id(task), 0) < RAY_REQUEUES:
                        requeued[id(task)] = requeued.get(id(task), 0) + 1
                        close_lost_runs(task, f"its Ray worker or node was lost ({why}); "
                                              f"the point was re-queued as a resume")
                        task.resume = True
                        ref = remote.remote(task)
                        refs[ref] = task
                        pending.append(ref)
                        continue
                    outcomes = failed(task, f"ray task failed: {why}")
                line.done += 1
                yield task, outcomes
        finally:
            # Graceful first: a KeyboardInterrupt in each task, whose run then flushes its
            # metrics, writes history.csv/curves.png and closes KILLED; forced after a grace.
            for ref in pending:
                ray.cancel(ref, force=False)
            if pending:
                _, stuck = ray.wait(pending, num_returns=len(pending), timeout=STOP_GRACE_S)
                for ref in stuck:
                    ray.cancel(ref, force=True)
            if started:
                ray.shutdown()


RAY_REQUEUES = 2  # times one point is re-queued after its worker or node was lost


def _worker_lost(ray: Any, exc: BaseException) -> bool:
    """The task died with its process or node (not an exception of the point's own)."""
    lost = tuple(getattr(ray.exceptions, n) for n in (
        "WorkerCrashedError", "NodeDiedError", "LocalRayletDiedError", "ObjectLostError",
        "OwnerDiedError") if hasattr(ray.exceptions, n))
    return isinstance(exc, lost)


def close_lost_runs(task: Task, reason: str) -> None:
    """The child runs a lost worker left RUNNING for this task's points end FAILED, with the
    reason, before the point is re-queued (no orphan waits for the heartbeat limit)."""
    from grokspec.sweep.launch import close_running_children
    from grokspec.tracking.store import RunStore
    from grokspec.tracking.tags import SPEC_HASH

    hashes = {e.spec_hash() for e in task.experiments}
    close_running_children(RunStore(task.experiments[0].tracking.uri), task.parent_run_id,
                           reason, "FAILED",
                           keep=lambda run: run.data.tags.get(SPEC_HASH) in hashes)
