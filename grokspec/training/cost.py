"""``vectorize: auto``: batch a group of members only where a timing probe says it pays.

Why measure instead of a fixed rule: whether one vmapped step of N members beats N separate
steps depends on the model size, the batch size, N, the device and its thread count; on
CPU the measured ratio ranged from 0.45x to 2x over settings that a rule of thumb could not
tell apart. So before a batched sweep runs, :func:`decide` times the real
loop (:func:`grokspec.training.loop.train`, no MLflow) both ways on the real device:

- **alone**: (up to) :data:`SAMPLE` members, one run after another, their mean per member
  times N (the members share the architecture, so each costs the same);
- **batched**: all N members as one stacked computation.

Each is timed as a run of ``2 x STEPS`` steps minus a run of ``STEPS`` steps, so model building
and the first and last evaluation cancel and what remains is the loop's per-step cost with
all its bookkeeping (an earlier probe that timed only the bare step missed the per-step work
batching shares, and called a 1.3x case 0.85x). The two sides alternate :data:`ROUNDS` times
and the least disturbed run of each length counts (a burst of load from other processes then
hits both sides; taking the minimum of the *differences* instead was biased low). Times
are process CPU time with one torch thread on CPU (what the machine is charged; immune to
other users' load), wall time (after a device sync) otherwise. It batches when batched <=
:data:`MARGIN` x alone, so that probe noise cannot make ``auto`` choose the slower side. The
verdict is cached per (what must agree for batching, N, device): a phase diagram probes once.

What the probe leaves out: evaluation at ``eval_every`` (per member either way, plus a copy of
each member's slice when batched), MLflow and process start-up; bench/sweep.py measures end to
end.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from grokspec.spec.experiment import Experiment
from grokspec.training.batches import Batch
from grokspec.training.grouping import batch_key
from grokspec.training.optim import build_update
from grokspec.training.step import optimisation_step

SAMPLE = 4  # members timed alone (they share the architecture: same cost each)
STEPS = 15
ROUNDS = 2
MARGIN = 0.9


@dataclass(frozen=True)
class Verdict:
    """The probe's decision for one group, with the numbers it was made from."""

    batch: bool
    alone_s: float  # one step of every member, one after another (seconds)
    batched_s: float  # one step of all members as one batch (seconds)
    n: int
    device: str
    clock: str

    @property
    def speedup(self) -> float:
        return self.alone_s / self.batched_s if self.batched_s > 0 else float("inf")

    def explain(self) -> str:
        side = "batching" if self.batch else "one after another"
        return (
            f"vectorize: auto: {self.n} members, probe on {self.device} ({self.clock}): "
            f"batched {self.batched_s * 1e3:.2f} ms/step vs one after another "
            f"{self.alone_s * 1e3:.2f} ms/step ({self.speedup:.2f}x) -> {side} "
            f"(batches when >= {1 / MARGIN:.2f}x)"
        )


_CACHE: dict[tuple[str, int, str], Verdict] = {}


def decide(experiments: Sequence[Experiment], device: torch.device) -> Verdict:
    """Whether to train ``experiments`` (batchable together) as one batch on ``device``."""
    key = (batch_key(experiments[0]), len(experiments), str(device))
    if key not in _CACHE:
        _CACHE[key] = probe(experiments, device)
    return _CACHE[key]


def probe(experiments: Sequence[Experiment], device: torch.device) -> Verdict:
    """Time the real loop alone and batched (see the module docstring)."""
    from grokspec.spec.features import runner_name
    from grokspec.training.loop import Member, train
    from grokspec.training.runner import load_runner

    exps = list(experiments)
    runner = load_runner(runner_name(exps[0]))
    data = exps[0].dataset.build(exps[0].seed)  # the split's contents do not change the cost
    sample = min(SAMPLE, len(exps))
    clock, now = _clock(device)

    def seconds(group: list[Experiment], steps: int, batched: bool) -> float:
        short = [_short(e, steps) for e in group]
        members = [Member(e, data) for e in short]
        t0 = now()
        for unit in ([members] if batched else [[m] for m in members]):
            train(unit, runner, device)
        return now() - t0

    sides = {"alone": (exps[:sample], False), "batched": (exps, True)}
    best = {(side, n): float("inf") for side in sides for n in (STEPS, 2 * STEPS)}
    seconds(exps[:1], 1, False)  # first use of the runner in this process, outside the clock
    for _ in range(ROUNDS):  # the least disturbed run of each length counts
        for side, (group, batched) in sides.items():
            for n in (STEPS, 2 * STEPS):
                best[side, n] = min(best[side, n], seconds(group, n, batched))
    per = {side: (best[side, 2 * STEPS] - best[side, STEPS]) / STEPS for side in sides}
    if not all(v > 0 for v in per.values()):
        raise RuntimeError("the timing probe got no reading (the machine is too noisy)")
    alone = per["alone"] / sample * len(exps)
    batched = per["batched"]
    return Verdict(batched <= MARGIN * alone, alone, batched, len(exps), str(device), clock)


def _short(exp: Experiment, steps: int) -> Experiment:
    """``exp`` cut to ``steps`` steps, evaluated at the first and last only, no early stop
    and no checkpoint (its spec hash differs, so no real checkpoint is touched)."""
    train = exp.train.model_copy(update={"steps": steps, "eval_every": steps, "stop": None})
    tracking = exp.tracking.model_copy(update={"checkpoint_every": None})
    return exp.model_copy(update={"train": train, "tracking": tracking})


def step_function(
    learner: object, trains: list, draw: Callable[[], list[Batch]]
) -> Callable[[], None]:
    """One training step composed as the loop composes it (:func:`grokspec.training.loop.train`:
    loss, backward, Grokfast, optimizer, schedule), without its evaluation and bookkeeping:
    what the probe and bench/gpu.py time."""
    params = learner.parameters()  # type: ignore[attr-defined]
    opt, sched, grokfast = build_update(params, trains, learner.groups())  # type: ignore[attr-defined]

    def step() -> None:
        optimisation_step(learner, opt, sched, grokfast, draw())

    return step


def _clock(device: torch.device) -> tuple[str, Callable[[], float]]:
    if device.type == "cuda":
        def now() -> float:
            torch.cuda.synchronize(device)
            return time.perf_counter()

        return "wall time after cuda sync", now
    if torch.get_num_threads() == 1:
        return "process CPU time, 1 thread", time.process_time
    return f"wall time, {torch.get_num_threads()} threads", time.perf_counter
