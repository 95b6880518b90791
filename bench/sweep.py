"""Sweep execution speed: vectorized seeds vs one run per seed, and --workers 2 vs 1.

End to end, as a user gets it: every seed/point is a real MLflow child run in a throwaway
SQLite store (so run creation, logging and artifacts are in both sides of each ratio).
Progress measures are off and evaluation is sparse, so the training loop dominates.

    python bench/sweep.py                 # all three comparisons (~5-10 min on 2 idle cores)
    python bench/sweep.py --only vmap     # vectorized vs sequential seeds only
    python bench/sweep.py --only workers  # --workers 2 vs --workers 1 only

The machine's other users share its cores: a busy machine makes every ratio noisy (rerun
at a quiet moment; `uptime` before and after is printed).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

from grokspec.spec.loading import validate_data
from grokspec.sweep.executors import ProcessExecutor, SerialExecutor, Task, run_one
from grokspec.sweep.expand import load_sweep
from grokspec.sweep.launch import run_sweep
from grokspec.training.vectorized import run_seed_batch

BASE = {
    "name": "bench-sweep",
    "dataset": {"kind": "modular", "op": "x+y", "p": 59, "train_fraction": 0.5},
    "learner": {"kind": "mlp", "depth": 1, "width": 256, "activation": "quadratic"},
    "train": {"optimizer": {"kind": "adamw", "lr": 3e-3, "weight_decay": 1.0}},
    "analysis": {"metrics": []},
    "tracking": {"experiment": "bench-sweep"},
}


def experiment(seed: int, batch_size: int | str, steps: int) -> object:
    train = {**BASE["train"], "steps": steps, "eval_every": steps, "batch_size": batch_size}
    return validate_data({**BASE, "seed": seed, "train": train})


def vmap_rows(seeds: int, steps_mb: int, steps_full: int) -> list[tuple[str, float, float]]:
    rows = []
    for label, bs, steps in ((f"minibatch 256, {steps_mb} steps", 256, steps_mb),
                             (f"full batch, {steps_full} steps", "full", steps_full)):
        exps = [experiment(s, bs, steps) for s in range(seeds)]
        t0 = time.perf_counter()
        alone = [run_one(e, Task([], "", "cpu")) for e in exps]
        t_seq = time.perf_counter() - t0
        t0 = time.perf_counter()
        batched = run_seed_batch(exps, "cpu", None)
        t_vec = time.perf_counter() - t0
        bad = [(o.status, o.reason) for o in alone + batched if o.status != "FINISHED"]
        assert not bad, bad
        rows.append((f"{seeds} seeds, {label}", t_seq, t_vec))
    return rows


def loop_rows(
    seeds: int, steps_mb: int, steps_full: int, repeats: int = 3
) -> list[tuple[str, float, float]]:
    """The training loops alone (no evaluation, no MLflow): what vmap itself changes.

    Sequential and vectorized alternate ``repeats`` times and the best of each counts, so a
    burst of load from other users hits both sides rather than one."""
    rows = []
    for label, bs, steps in ((f"minibatch 256, {steps_mb} steps", 256, steps_mb),
                             (f"full batch, {steps_full} steps", "full", steps_full)):
        best_seq = best_vec = float("inf")
        for _ in range(repeats):
            t_seq, t_vec = _loops_once(seeds, bs, steps)
            best_seq, best_vec = min(best_seq, t_seq), min(best_vec, t_vec)
        rows.append((f"{seeds} seeds, {label}, training loop only", best_seq, best_vec))
    return rows


def _loops_once(seeds: int, bs: int | str, steps: int) -> tuple[float, float]:
    from torch.func import functional_call, stack_module_state, vmap

    from grokspec.training.evaluation import batches, build_optimizer, loss_fn

    cpu = torch.device("cpu")
    exps = [experiment(s, bs, steps) for s in range(seeds)]
    data = [e.dataset.build(e.seed) for e in exps]
    models = []
    for e, d in zip(exps, data, strict=True):
        torch.manual_seed(e.seed)
        models.append(e.learner.build(d))
    train = exps[0].train
    t0 = time.perf_counter()
    for e, d, m in zip(exps, data, models, strict=True):
        opt, _ = build_optimizer(list(m.parameters()), train.optimizer)
        stream = batches(d.n_train, bs, torch.Generator().manual_seed(e.seed), cpu)
        for _, idx in zip(range(steps), stream, strict=False):
            xb, yb = (d.x_train, d.y_train) if idx is None else (d.x_train[idx], d.y_train[idx])
            loss = loss_fn(m(xb), yb, d, train)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    t_seq = time.perf_counter() - t0
    params, buffers = stack_module_state(models)
    losses = vmap(_stacked_loss(models[0], data[0], train, functional_call, loss_fn))
    x_all = torch.stack([d.x_train for d in data])
    y_all = torch.stack([d.y_train for d in data])
    rows_idx = torch.arange(seeds)[:, None]
    streams = [batches(d.n_train, bs, torch.Generator().manual_seed(e.seed), cpu)
               for e, d in zip(exps, data, strict=True)]
    opt, _ = build_optimizer(list(params.values()), train.optimizer)
    t0 = time.perf_counter()
    for _ in range(steps):
        idx = [next(s) for s in streams]
        if idx[0] is None:
            xb, yb = x_all, y_all
        else:
            index = torch.stack(idx)
            xb, yb = x_all[rows_idx, index], y_all[rows_idx, index]
        opt.zero_grad(set_to_none=True)
        losses(params, buffers, xb, yb).sum().backward()
        opt.step()
    t_vec = time.perf_counter() - t0
    return t_seq, t_vec


def _stacked_loss(base, data0, train, functional_call, loss_fn):  # noqa: ANN001, ANN202
    def one(p, b, x, y):  # noqa: ANN001, ANN202
        return loss_fn(functional_call(base, (p, b), (x,)), y, data0, train)

    return one


def workers_row(
    points: int, steps: int, tmp: Path, threads: int | None
) -> tuple[str, float, float]:
    spec = {**BASE, "train": {**BASE["train"], "steps": steps, "eval_every": 100},
            "sweep": {"grid": {"train.optimizer.weight_decay": {
                "log_range": [0.1, 1.0, points]}}}}
    path = tmp / "workers.yaml"
    path.write_text(yaml.safe_dump(spec))
    sweep = load_sweep(path)
    quiet = lambda m: None  # noqa: E731
    t0 = time.perf_counter()
    one = run_sweep(sweep, SerialExecutor(threads), device="cpu", fresh=True, echo=quiet)
    t_one = time.perf_counter() - t0
    t0 = time.perf_counter()
    two = run_sweep(sweep, ProcessExecutor(2), device="cpu", fresh=True, echo=quiet)
    t_two = time.perf_counter() - t0
    assert one.status == two.status == "FINISHED"
    return (f"{points} points x {steps} steps: --workers 1 vs 2", t_one, t_two)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=["loop", "vmap", "workers"], default=None)
    ap.add_argument("--seeds", type=int, default=16)
    ap.add_argument("--steps-minibatch", type=int, default=400)
    ap.add_argument("--steps-full", type=int, default=150)
    ap.add_argument("--points", type=int, default=8)
    ap.add_argument("--steps-workers", type=int, default=1500)
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads in this process (default: torch's). On a busy machine "
                    "1 keeps OpenMP threads from thrashing and the ratios meaningful")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {os.cpu_count()} cores, torch threads "
          f"{torch.get_num_threads()}; load: {_load()}")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp}/mlflow.db"
        os.chdir(tmp)
        rows: list[tuple[str, float, float]] = []
        print("running ...", flush=True)
        run_one(experiment(0, "full", 2), Task([], "", "cpu"))  # warm-up: imports, caches
        if args.only in (None, "vmap", "loop"):
            rows += loop_rows(args.seeds, args.steps_minibatch, args.steps_full)
        if args.only in (None, "vmap"):
            rows += vmap_rows(args.seeds, args.steps_minibatch, args.steps_full)
        if args.only in (None, "workers"):
            rows.append(workers_row(args.points, args.steps_workers, Path(tmp), args.threads))
    print()
    print("| comparison | baseline (s) | faster side (s) | speed-up |")
    print("|---|---:|---:|---:|")
    for label, base, new in rows:
        side = "vectorized" if "seeds" in label else "--workers 2"
        label = label if "loop" in label or "workers" in label else f"{label}, end to end"
        print(f"| {label} ({side}) | {base:.1f} | {new:.1f} | {base / new:.2f}x |")
    print(f"\nload after: {_load()}")


def _load() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"


if __name__ == "__main__":
    sys.exit(main())
