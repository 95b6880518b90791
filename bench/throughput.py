"""Throughput of grokspec's training loop against the loop a researcher writes by hand.

Prints two tables, every ratio measured in this one process run:
1. steps/s of ``runners.gradient`` (through ``RunContext``, tracking off) vs a plain PyTorch
   loop on the same data and architecture (the plain loop runs every position of the
   transformer, as a hand-written model does), both evaluating every ``eval_every`` steps.
2. wall time of the same loop at eval_every=10 with its metrics logged to a real MLflow
   SQLite store (batched, as ``grokspec run`` does) vs logging off.

Usage: python bench/throughput.py [--steps 300] [--repeats 3] [--threads 2]
Targets (issue 2): >= 1.5x for the transformer spec, >= 1.0x for the MLP, logging <= 5%.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from grokspec.runners.gradient import GradientRunner

from grokspec.spec.experiment import Experiment
from grokspec.spec.loading import load_spec
from grokspec.tracking.tracker import Tracker
from grokspec.training.runner import RunContext

ROOT = Path(__file__).resolve().parents[1]


def plain_loop(exp: Experiment, steps: int, eval_every: int) -> float:
    """A hand-written loop: naive full-sequence model, full batch, eval with .item()."""
    torch.manual_seed(exp.seed)
    data = exp.dataset.build(exp.seed)
    learner = exp.learner
    if learner.kind == "transformer":
        learner = learner.model_copy(update={"last_position_only": False})
    model = learner.build(data)
    o = exp.train.optimizer
    opt = torch.optim.AdamW(model.parameters(), lr=o.lr, weight_decay=o.weight_decay, betas=o.betas)
    start = time.perf_counter()
    for step in range(1, steps + 1):
        loss = F.cross_entropy(model(data.x_train), data.y_train)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % eval_every == 0:
            with torch.no_grad():
                _ = (model(data.x_train).argmax(-1) == data.y_train).float().mean().item()
                _ = (model(data.x_test).argmax(-1) == data.y_test).float().mean().item()
                _ = F.cross_entropy(model(data.x_test), data.y_test).item()
    return steps / (time.perf_counter() - start)


def grokspec_loop(exp: Experiment, steps: int, eval_every: int) -> float:
    exp = exp.model_copy(deep=True)
    exp.train.steps, exp.train.eval_every, exp.train.stop = steps, eval_every, None
    data = exp.dataset.build(exp.seed)
    ctx = RunContext(exp, data, torch.device("cpu"))
    start = time.perf_counter()
    GradientRunner().run(ctx)
    return steps / (time.perf_counter() - start)


def logged_loop(exp: Experiment, steps: int, uri: str | None) -> float:
    """Seconds for the runner's loop at eval_every=10, metrics logged to MLflow or not.

    Only logging differs between the two: the same runner, evaluations and no progress
    measures; with ``uri`` each evaluation goes through ``Tracker.log_metrics`` (batched) and
    the final flush is inside the timing.
    """
    exp = exp.model_copy(deep=True)
    exp.train.steps, exp.train.eval_every, exp.train.stop = steps, 10, None
    data = exp.dataset.build(exp.seed)
    ctx = RunContext(exp, data, torch.device("cpu"))
    tracker = None
    if uri is not None:
        tracker = Tracker(uri, "bench", "bench")
        ctx.log = lambda m, s: tracker.log_metrics(m, s)
    start = time.perf_counter()
    GradientRunner().run(ctx)
    if tracker is not None:
        tracker.flush()
    elapsed = time.perf_counter() - start
    if tracker is not None:
        tracker.end()
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    specs = {
        "transformer (modadd_transformer.yaml)": ROOT / "specs/modadd_transformer.yaml",
        "mlp (quickstart.yaml)": ROOT / "specs/quickstart.yaml",
    }
    print(f"torch {torch.__version__}, {args.threads} threads, {args.steps} steps, "
          f"median of {args.repeats}, eval every 100 steps\n")
    print(f"{'spec':<40}{'plain steps/s':>15}{'grokspec steps/s':>18}{'ratio':>8}")
    for label, path in specs.items():
        exp = load_spec(path)
        plain, ours = [], []
        for _ in range(args.repeats):  # interleaved so drift hits both alike
            plain.append(plain_loop(exp, args.steps, 100))
            ours.append(grokspec_loop(exp, args.steps, 100))
        p, g = statistics.median(plain), statistics.median(ours)
        print(f"{label:<40}{p:>15.1f}{g:>18.1f}{g / p:>7.2f}x")

    print(f"\nMLflow logging overhead (eval_every=10, {args.steps} steps, SQLite store)")
    print(f"{'spec':<40}{'off (s)':>10}{'on (s)':>10}{'overhead':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{tmp}/mlflow.db"
        for label, path in specs.items():
            exp = load_spec(path)
            logged_loop(exp, 10, uri)  # create + migrate the store outside the timing
            off, on = [], []
            for _ in range(args.repeats):
                off.append(logged_loop(exp, args.steps, None))
                on.append(logged_loop(exp, args.steps, uri))
            a, b = statistics.median(off), statistics.median(on)
            print(f"{label:<40}{a:>10.2f}{b:>10.2f}{(b - a) / a:>9.1%}")


if __name__ == "__main__":
    main()
