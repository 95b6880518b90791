"""Training throughput of every learner on its shipped spec: optimizer steps per second.

Each case loads a spec from specs/, runs its runner directly (no MLflow: this measures the
learner, not the tracking) for ``--steps`` steps with progress measures off, twice:

* ``train``: evaluating only at the first and last step (the update loop itself);
* ``with evals``: evaluating every ``train.eval_every`` steps as the spec does (what a user's
  run costs; for the GP and the Bayesian net an evaluation is a large share).

Cases run interleaved ``--repeats`` times and the table reports the median and, in brackets,
the range, so that load from other processes on a shared machine hits all alike and shows.
Where a spec's ``eval_every`` is not below ``--steps`` both columns run the same loop.
A one-step warm-up run first pays the one-off imports (torch's optimizer import pulls in
torch._dynamo, ~2 s).

    python bench/learners.py                         # all learners, 100 steps, CPU
    python bench/learners.py --steps 50 --cases gp-sine linear --device cuda
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from grokspec.spec.loading import load_spec
from grokspec.training.loop import fit

SPECS = Path(__file__).resolve().parent.parent / "specs"

#: case -> spec file (each learner's default spec; the transformer and quickstart MLP for scale)
CASES: dict[str, str] = {
    "mlp-deep": "fan_deep_mlp.yaml",
    "gp-sine": "miller_gp_sine.yaml",
    "gp-parity": "miller_gp_parity.yaml",
    "linear": "linear_teacher.yaml",
    "bayesian_mlp": "bayesian_parity.yaml",
    "moe_transformer": "moe_modadd.yaml",
    "transformer": "modadd_transformer.yaml",
    "mlp-quickstart": "quickstart.yaml",
}


def steps_per_second(spec: str, steps: int, evals: bool, device: str) -> float:
    every = "" if evals else f"train.eval_every={steps}"
    over = [f"train.steps={steps}", "train.stop=null", "analysis.metrics=[]"]
    exp = load_spec(SPECS / spec, [*over, *([every] if every else [])])
    data = exp.dataset.build(exp.seed)
    t = time.perf_counter()
    fit(exp, device, dataset=data, measures=False)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return steps / (time.perf_counter() - t)


def describe(spec: str) -> str:
    exp = load_spec(SPECS / spec)
    ds = exp.dataset.build(exp.seed)
    return f"{exp.learner.kind} on {exp.dataset.kind}, {ds.n_train} train"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    args = ap.parse_args()

    steps_per_second(CASES["linear"], 1, False, args.device)  # warm-up: one-off imports
    results: dict[tuple[str, bool], list[float]] = {}
    for _ in range(args.repeats):
        for case in args.cases:
            for evals in (False, True):
                rate = steps_per_second(CASES[case], args.steps, evals, args.device)
                results.setdefault((case, evals), []).append(rate)

    print(f"device: {args.device}, torch threads: {torch.get_num_threads()}, "
          f"{args.steps} steps, median of {args.repeats}")
    print("| case | spec | what | steps/s (train) | steps/s (with evals) |")
    print("|---|---|---|---:|---:|")
    for case in args.cases:
        cells = [cell(results[(case, evals)]) for evals in (False, True)]
        print(f"| {case} | {CASES[case]} | {describe(CASES[case])} | {cells[0]} | {cells[1]} |")


def cell(rates: list[float]) -> str:
    """Median, and the range over repeats: ``128.2 (121.0-135.1)``."""
    return f"{statistics.median(rates):.1f} ({min(rates):.1f}-{max(rates):.1f})"


if __name__ == "__main__":
    main()
