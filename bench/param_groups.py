"""Should a batched lr x wd grid use torch.optim with one param group per member instead of
grokspec's own BatchedOptimizer? (Issue 22: replace it if the batched step stays within 10%.)

Both sides train the same 4 x 4 lr x weight-decay grid (16 members of bench/sweep.py's MLP on
x+y mod 59) through the same vmapped forward/backward (grokspec's StackedLearner):

- **BatchedOptimizer** (today): each parameter is one stacked leaf tensor (members x ...),
  updated by per-member hyperparameter columns.
- **param groups** (the proposal, as nanoGPT groups its parameters): each member's parameters
  are leaves of their own, ``torch.stack``-ed for every forward (the gradient flows back to
  each member's leaves), and ``torch.optim.AdamW(foreach=True)`` with one param group per
  member (its lr and weight decay).

Process CPU time of ``--steps`` optimizer steps, one torch thread, the two sides alternating
``--repeats`` times, the best of each counting. Both sides' final losses are printed: they
must agree (same update rule).

    python bench/param_groups.py [--steps 300] [--repeats 3] [--batch 256|full]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch

from grokspec.spec.features import runner_name
from grokspec.spec.loading import validate_data
from grokspec.training.batched import StackedLearner
from grokspec.training.batches import Batch
from grokspec.training.optim import build_update
from grokspec.training.runner import load_runner

LRS = (1e-3, 2e-3, 3e-3, 5e-3)
WDS = (0.1, 0.3, 1.0, 3.0)


def grid(batch: int | str) -> list[Any]:
    return [validate_data({
        "name": "bench-groups", "seed": 0,
        "dataset": {"kind": "modular", "op": "x+y", "p": 59, "train_fraction": 0.5},
        "learner": {"kind": "mlp", "depth": 1, "width": 256, "activation": "quadratic"},
        "train": {"optimizer": {"kind": "adamw", "lr": lr, "weight_decay": wd},
                  "steps": 10, "batch_size": batch},
        "analysis": {"metrics": []}}) for lr in LRS for wd in WDS]


def setup(exps: list[Any]) -> tuple[StackedLearner, list[Batch]]:
    runner = load_runner(runner_name(exps[0]))
    data = exps[0].dataset.build(0)
    models = []
    for _e in exps:
        torch.manual_seed(0)
        models.append(runner.build(exps[0], data))
    size = exps[0].train.batch_size
    n = data.n_train if size == "full" else int(size)
    x, y = data.x_train[:n], data.y_train[:n]
    batch = Batch(None, x, y, data, exps[0].train)
    return StackedLearner(models, runner, batch), [batch] * len(exps)


def batched_optimizer(exps: list[Any], steps: int) -> tuple[float, float]:
    learner, batches = setup(exps)
    opt, sched, _ = build_update(learner.parameters(), [e.train for e in exps])
    t0 = time.process_time()
    for _ in range(steps):
        losses = learner.losses(batches)
        opt.zero_grad(set_to_none=True)
        losses.sum().backward()
        opt.step()
        sched.step()
    return time.process_time() - t0, float(losses[-1].detach())


def param_groups(exps: list[Any], steps: int) -> tuple[float, float]:
    learner, batches = setup(exps)
    names = list(learner.params)
    leaves = [{k: learner.params[k][j].detach().clone().requires_grad_() for k in names}
              for j in range(len(exps))]
    groups = [{"params": list(m.values()), "lr": e.train.optimizer.lr,
               "weight_decay": e.train.optimizer.weight_decay}
              for m, e in zip(leaves, exps, strict=True)]
    opt = torch.optim.AdamW(groups, betas=(0.9, 0.98), foreach=True)
    xb = torch.stack([b.x for b in batches])
    yb = torch.stack([b.y for b in batches])
    t0 = time.process_time()
    for _ in range(steps):
        stacked = {k: torch.stack([m[k] for m in leaves]) for k in names}
        losses = learner._losses(stacked, learner.buffers, xb, yb)
        opt.zero_grad(set_to_none=True)
        losses.sum().backward()
        opt.step()
    return time.process_time() - t0, float(losses[-1].detach())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", default="256")
    args = ap.parse_args()
    torch.set_num_threads(1)
    batch: int | str = "full" if args.batch == "full" else int(args.batch)
    exps = grid(batch)
    best = {"BatchedOptimizer": float("inf"), "param groups": float("inf")}
    loss = {}
    batched_optimizer(exps, 5), param_groups(exps, 5)  # warm-up outside the clock
    for _ in range(args.repeats):
        for name, fn in (("BatchedOptimizer", batched_optimizer), ("param groups", param_groups)):
            t, loss[name] = fn(exps, args.steps)
            best[name] = min(best[name], t)
    base = best["BatchedOptimizer"]
    print(f"16-member lr x wd grid, {args.steps} steps, batch {args.batch}, 1 thread")
    print("| side | CPU s | ms/step | vs BatchedOptimizer | last member's final loss |")
    print("|---|---|---|---|---|")
    for name, t in best.items():
        print(f"| {name} | {t:.2f} | {1000 * t / args.steps:.1f} | {t / base:.2f}x | "
              f"{loss[name]:.6f} |")


if __name__ == "__main__":
    main()
