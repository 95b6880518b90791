"""``vectorize: auto``: batch a group of members only where a timing probe says it pays.

Why measure instead of a fixed rule: whether one vmapped step of N members beats N separate
steps depends on the model size, the batch size, N, the device and its thread count; on
CPU the measured ratio ranged from 0.45x to 2x over settings that a rule of thumb could not
tell apart. So before a batched sweep runs, :func:`decide` times the real training step
(the loop's learners, optimizer and Grokfast filter, on the real device) both ways:

- **alone**: a few steps of each of (up to) :data:`SAMPLE` members as single models, the
  mean step time times N;
- **batched**: the same number of steps of all N members as one stacked learner.

Both get :data:`WARMUP` untimed steps first (allocator, vmap tracing, kernel selection), and
the two sides alternate :data:`ROUNDS` times, the best round of each counting (a burst of
load from other processes then hits both). Times are process CPU time with one torch thread
on CPU (what the machine is charged; immune to other users' load), wall time (after a device
sync) otherwise. It batches when batched <= :data:`MARGIN` x alone, so that probe noise
cannot make ``auto`` choose the slower side. The verdict is cached per (what must agree for
batching, N, device): a phase diagram probes once.

What the probe leaves out: evaluation (per member either way, plus a copy of each member's
slice when batched) and process start-up; the bench (bench/sweep.py) measures end to end.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from grokspec.spec.experiment import Experiment
from grokspec.training.batched_optim import build_update
from grokspec.training.batches import Batch, BatchStream
from grokspec.training.grouping import batch_key

SAMPLE = 4  # members timed alone (they share the architecture: same cost each)
WARMUP = 3
STEPS = 8
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
    """Time the training step alone and batched (see the module docstring)."""
    from grokspec.training.batched import SingleLearner, StackedLearner
    from grokspec.training.runner import load_runner, runner_name

    exps = list(experiments)
    runner = load_runner(runner_name(exps[0]))
    data = exps[0].dataset.build(exps[0].seed)  # the split's contents do not change the cost
    tensors = {k: getattr(data, k).to(device) for k in ("x_train", "y_train")}
    train = exps[0].train

    def models() -> list[torch.nn.Module]:
        out = []
        for e in exps:
            torch.manual_seed(e.seed)
            out.append(runner.build(e, data).to(device))
        return out

    def batches(n: int) -> Callable[[], list[Batch]]:
        streams = [BatchStream(data.n_train, train.batch_size, e.seed, device) for e in exps[:n]]

        def draw() -> list[Batch]:
            out = []
            for s in streams:
                idx = s.next()
                x, y = (tensors["x_train"], tensors["y_train"]) if idx is None else (
                    tensors["x_train"][idx], tensors["y_train"][idx])
                out.append(Batch(idx, x, y, data, train))
            return out

        return draw

    built = models()
    sample = min(SAMPLE, len(exps))
    singles = [(SingleLearner(m, runner), [e.train]) for m, e in zip(built, exps, strict=False)]
    stacked = StackedLearner(built, runner, batches(1)()[0])
    sides: dict[str, list[tuple[object, list]]] = {
        "alone": singles[:sample],
        "batched": [(stacked, [e.train for e in exps])],
    }
    clock, now = _clock(device)
    best = {"alone": float("inf"), "batched": float("inf")}
    for _ in range(ROUNDS):
        for side, learners in sides.items():
            total = 0.0
            for learner, trains in learners:
                draw = batches(len(trains))
                step = step_function(learner, trains, draw)
                for _ in range(WARMUP):
                    step()
                t0 = now()
                for _ in range(STEPS):
                    step()
                total += (now() - t0) / STEPS
            best[side] = min(best[side], total)
    alone = best["alone"] / sample * len(exps)
    batched = best["batched"]
    return Verdict(batched <= MARGIN * alone, alone, batched, len(exps), str(device), clock)


def step_function(
    learner: object, trains: list, draw: Callable[[], list[Batch]]
) -> Callable[[], None]:
    """One training step composed as the loop composes it (:func:`grokspec.training.loop.train`:
    loss, backward, Grokfast, optimizer, schedule), without its evaluation and bookkeeping:
    what the probe and bench/gpu.py time."""
    params = learner.parameters()  # type: ignore[attr-defined]
    opt, sched, grokfast = build_update(params, trains)

    def step() -> None:
        losses = learner.losses(draw())  # type: ignore[attr-defined]
        opt.zero_grad(set_to_none=True)
        losses.sum().backward()
        grokfast()
        opt.step()
        sched.step()

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
