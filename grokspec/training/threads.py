"""How many intra-op threads torch gets for a run, chosen deliberately and said out loud.

torch's default is one thread per core. For the small models of grokking experiments that
is a loss: each step's matrix products are too small to split, the threads spin and
synchronise, and when several runs share the machine (sweep workers, other jobs) they
oversubscribe the cores: a 3-point 200-step sweep took 172 s with the default threads and
33 s with one thread on a busy 2-core machine (issue 13). So:

- ``--threads N`` (``grokspec run`` / ``sweep``) is used as given;
- when ``sharing`` runs share the machine (a sweep's workers), each gets
  ``max(1, cores // sharing)`` — one per worker on a machine with as many cores as workers;
- otherwise the model's size decides: the work of one step, parameters x rows per step,
  under :data:`SMALL_WORK` gets one thread (bench/threads.py measures the quickstart), a
  larger model up to :data:`MAX_THREADS`.
"""

from __future__ import annotations

import os
from typing import Any

#: parameters x rows per step below which one thread is faster (bench/threads.py: the
#: quickstart MLP, 150k parameters x 2823 rows = 4e8, runs fastest on one thread).
SMALL_WORK = 2e9
MAX_THREADS = 8


def cores() -> int:
    """The cores this process may run on (its affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def count_parameters(experiment: Any, dataset: Any) -> int | None:
    """The learner's parameter count, built on torch's meta device (no memory, no compute);
    None when the learner cannot be built that way."""
    import torch

    try:
        with torch.device("meta"):
            model = experiment.learner.build(dataset)
        return sum(p.numel() for p in model.parameters())
    except Exception:  # noqa: BLE001 - e.g. a learner that computes on its data when built
        return None


def choose_threads(
    experiment: Any, dataset: Any, requested: int | None = None, sharing: int = 1
) -> tuple[int, str]:
    """(threads, why): see the module docstring for the rule."""
    n_cores = cores()
    if requested:
        return requested, "--threads"
    if sharing > 1:
        return max(1, n_cores // sharing), f"{sharing} runs share {n_cores} cores"
    params = count_parameters(experiment, dataset)
    batch = experiment.train.batch_size
    rows = dataset.n_train if batch == "full" else min(int(batch), dataset.n_train)
    if params is None:
        return min(n_cores, MAX_THREADS), "model size unknown: one per core"
    work = params * rows
    if work < SMALL_WORK:
        return 1, f"small model: {params:,} params x {rows:,} rows per step"
    return min(n_cores, MAX_THREADS), f"{params:,} params x {rows:,} rows per step"


def apply_threads(threads: int) -> None:
    """Set torch's intra-op threads (and one inter-op thread, where still settable)."""
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set, or parallel work already ran: harmless
        pass
