"""Sweep execution speed: batched members vs one run per member, through the real loop.

Every row trains through :func:`grokspec.training.loop.train` (no copy of the loop here):

- **loop** rows: the training loop alone (members without MLflow, progress measures off,
  evaluation only at the first and last step): 16 seeds of one spec, and a 4 x 4 lr x weight
  decay grid (per-member optimizer settings: :mod:`grokspec.training.batched_optim`), at
  minibatch 256 and at full batch. Each row also shows what ``vectorize: auto`` decides for
  it (its timing probe, :mod:`grokspec.training.cost`) and whether that choice was the faster
  side in this measurement.
- **sweep** rows: the lr x wd grid as a real sweep (``grokspec.sweep.launch.run_sweep``: one
  MLflow parent, one child per point, in a throwaway SQLite store) with ``vectorize`` false,
  true and auto.
- **workers** row: ``--workers 2`` vs 1 (process pool).

Times are process CPU time with one torch thread (``torch.set_num_threads(1)``; the sweep's
children run in this process), the contenders alternating ``--repeats`` times and the best of
each counting. The machine this was written on is shared with other jobs and noisy: CPU time
is far steadier than wall time there, but ratios still move by ~10-20% between runs.

    python bench/sweep.py                  # loop + sweep rows (~5-10 min on a quiet core)
    python bench/sweep.py --only loop      # the loop rows only
    python bench/sweep.py --only workers   # --workers 2 vs 1 (wall time: two processes)
    python bench/sweep.py --smoke          # seconds: checks that every row runs
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from grokspec.metrics import names
from grokspec.spec.features import runner_name
from grokspec.spec.loading import validate_data
from grokspec.training import cost
from grokspec.training.cost import decide
from grokspec.training.loop import Member, train
from grokspec.training.runner import load_runner

BASE: dict[str, Any] = {
    "name": "bench-sweep",
    "dataset": {"kind": "modular", "op": "x+y", "p": 59, "train_fraction": 0.5},
    "learner": {"kind": "mlp", "depth": 1, "width": 256, "activation": "quadratic"},
    "train": {"optimizer": {"kind": "adamw", "lr": 3e-3, "weight_decay": 1.0}},
    "analysis": {"metrics": []},
    "tracking": {"experiment": "bench-sweep"},
}
LRS = (1e-3, 2e-3, 3e-3, 5e-3)
WDS = (0.1, 0.3, 1.0, 3.0)


def experiment(seed: int, batch_size: int | str, steps: int, lr: float = 3e-3,
               wd: float = 1.0) -> Any:
    train_spec = {"optimizer": {"kind": "adamw", "lr": lr, "weight_decay": wd},
                  "steps": steps, "eval_every": steps, "batch_size": batch_size}
    return validate_data({**BASE, "seed": seed, "train": train_spec})


def members_for(kind: str, n: int, batch_size: int | str, steps: int) -> list[Any]:
    """``seeds``: n seeds of one spec; ``grid``: an lr x wd grid (n = len(LRS) * len(WDS))."""
    if kind == "seeds":
        return [experiment(s, batch_size, steps) for s in range(n)]
    return [experiment(0, batch_size, steps, lr, wd) for lr in LRS for wd in WDS][:n]


def _train(exps: list[Any], batched: bool) -> tuple[float, list[float]]:
    """Process CPU seconds of the loop (datasets built outside the clock), final train loss."""
    data = [e.dataset.build(e.seed) for e in exps]
    runner = load_runner(runner_name(exps[0]))
    cpu = torch.device("cpu")
    groups = [list(range(len(exps)))] if batched else [[j] for j in range(len(exps))]
    members = [Member(e, d) for e, d in zip(exps, data, strict=True)]
    t0 = time.process_time()
    for g in groups:
        train([members[j] for j in g], runner, cpu)
    seconds = time.process_time() - t0
    bad = [str(m.error) for m in members if m.error is not None]
    assert not bad, bad
    return seconds, [m.history[-1][names.TRAIN_LOSS] for m in members]


def loop_row(kind: str, n: int, batch_size: int | str, steps: int, repeats: int) -> dict:
    exps = members_for(kind, n, batch_size, steps)
    best_seq = best_vec = float("inf")
    for _ in range(repeats):
        t_seq, loss_seq = _train(exps, batched=False)
        t_vec, loss_vec = _train(exps, batched=True)
        best_seq, best_vec = min(best_seq, t_seq), min(best_vec, t_vec)
    diff = max(abs(a - b) / max(abs(a), 1e-12) for a, b in zip(loss_seq, loss_vec, strict=True))
    verdict = decide(exps, torch.device("cpu"))
    label = {"seeds": f"{n} seeds", "grid": f"{len(LRS)}x{len(WDS)} lr x wd grid"}[kind]
    bs = "full batch" if batch_size == "full" else f"minibatch {batch_size}"
    return {"label": f"{label}, {bs}, {steps} steps, loop only", "seq": best_seq,
            "vec": best_vec, "auto": verdict, "diff": diff}


def sweep_rows(steps: int, batch_size: int | str, tmp: Path, repeats: int) -> list[dict]:
    """The lr x wd grid as a real sweep: vectorize false / true / auto, end to end."""
    from grokspec.sweep.executors import SerialExecutor
    from grokspec.sweep.expand import load_sweep
    from grokspec.sweep.launch import run_sweep

    times: dict[str, float] = {}
    # warm-up: the first sweep in a process pays MLflow's and matplotlib's first use
    warm = {**BASE, "train": {**BASE["train"], "steps": 2, "eval_every": 2, "batch_size": 256},
            "sweep": {"grid": {"train.optimizer.lr": list(LRS[:2])}, "vectorize": True}}
    (tmp / "warm.yaml").write_text(yaml.safe_dump(warm))
    for setting in (False, True):
        run_sweep(load_sweep(tmp / "warm.yaml", [f"sweep.vectorize={str(setting).lower()}"]),
                  SerialExecutor(1), device="cpu", fresh=True, echo=lambda m: None)
    for _ in range(repeats):  # alternating; the best of each counts
        for setting in (False, True, "auto"):
            spec = {**BASE, "train": {**BASE["train"], "steps": steps, "eval_every": steps,
                                       "batch_size": batch_size},
                    "sweep": {"grid": {"train.optimizer.lr": list(LRS),
                                       "train.optimizer.weight_decay": list(WDS)},
                              "vectorize": setting}}
            path = tmp / f"sweep-{setting}.yaml"
            path.write_text(yaml.safe_dump(spec))
            sweep = load_sweep(path)
            notes: list[str] = []
            cost._CACHE.clear()  # auto pays for its probe every time, as in a new process
            t0 = time.process_time()
            result = run_sweep(sweep, SerialExecutor(1), device="cpu", fresh=True,
                               echo=notes.append)
            seconds = time.process_time() - t0
            times[str(setting)] = min(times.get(str(setting), float("inf")), seconds)
            assert result.status == "FINISHED", (result.status, notes)
            if setting == "auto":
                print("  auto said: " + " | ".join(n for n in notes if "vectorize" in n))
    label = (f"{len(LRS)}x{len(WDS)} lr x wd sweep, minibatch {batch_size}, {steps} steps, "
             "end to end")
    return [{"label": f"{label} (true vs false)", "seq": times["False"], "vec": times["True"]},
            {"label": f"{label} (auto vs false)", "seq": times["False"], "vec": times["auto"]}]


def workers_row(points: int, steps: int, tmp: Path) -> dict:
    from grokspec.sweep.executors import ProcessExecutor, SerialExecutor
    from grokspec.sweep.expand import load_sweep
    from grokspec.sweep.launch import run_sweep

    spec = {**BASE, "train": {**BASE["train"], "steps": steps, "eval_every": 100},
            "sweep": {"grid": {"train.optimizer.weight_decay": {
                "log_range": [0.1, 1.0, points]}}}}
    path = tmp / "workers.yaml"
    path.write_text(yaml.safe_dump(spec))
    sweep = load_sweep(path)
    quiet = lambda m: None  # noqa: E731
    t0 = time.perf_counter()
    one = run_sweep(sweep, SerialExecutor(1), device="cpu", fresh=True, echo=quiet)
    t_one = time.perf_counter() - t0
    t0 = time.perf_counter()
    two = run_sweep(sweep, ProcessExecutor(2, threads=1), device="cpu", fresh=True, echo=quiet)
    t_two = time.perf_counter() - t0
    assert one.status == two.status == "FINISHED"
    return {"label": f"{points} points x {steps} steps: --workers 1 vs 2 (wall time)",
            "seq": t_one, "vec": t_two}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=["loop", "sweep", "workers"], default=None)
    ap.add_argument("--members", type=int, default=16)
    ap.add_argument("--steps-minibatch", type=int, default=400)
    ap.add_argument("--steps-full", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: checks every row runs")
    args = ap.parse_args()
    if args.smoke:
        args.members, args.steps_minibatch, args.steps_full, args.repeats = 4, 20, 3, 1
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, {os.cpu_count()} cores (shared, noisy), 1 torch thread, "
          f"process CPU time; load: {_load()}")
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp}/mlflow.db"
        os.chdir(tmp)
        print("running ...", flush=True)
        _train(members_for("seeds", 2, "full", 2), batched=True)  # warm-up: imports, caches
        n, mb, full = args.members, args.steps_minibatch, args.steps_full
        if args.only in (None, "loop"):
            for kind in ("seeds", "grid"):
                for bs, steps in ((256, mb), ("full", full)):
                    rows.append(loop_row(kind, n, bs, steps, args.repeats))
                    print("  " + _row(rows[-1]), flush=True)
        if args.only in (None, "sweep"):
            rows += sweep_rows(mb, 256, Path(tmp), args.repeats)
            print("  " + _row(rows[-2]) + "\n  " + _row(rows[-1]), flush=True)
        if args.only == "workers":
            rows.append(workers_row(8 if not args.smoke else 2, 1500 if not args.smoke else 5,
                                    Path(tmp)))
    print()
    print("| comparison | one after another (s) | batched (s) | speed-up | auto chose "
          "| auto's probe | max rel. diff of final train loss |")
    print("|---|---:|---:|---:|---|---:|---:|")
    for r in rows:
        print(_row(r))
    print(f"\nload after: {_load()}")
    return 0


def _row(r: dict) -> str:
    v = r.get("auto")
    chose = "-" if v is None else ("batched" if v.batch else "one after another")
    if v is not None and v.batch and r["vec"] > r["seq"]:
        chose += " (SLOWER here)"
    probe = "-" if v is None else f"{v.speedup:.2f}x"
    diff = f"{r['diff']:.1e}" if "diff" in r else "-"
    return (f"| {r['label']} | {r['seq']:.2f} | {r['vec']:.2f} | {r['seq'] / r['vec']:.2f}x "
            f"| {chose} | {probe} | {diff} |")


def _load() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"


if __name__ == "__main__":
    sys.exit(main())
