"""Cost of the default progress measures: the same run with measures on vs off.

The issue's budget: the measures a run gets by default cost at most 10% of its wall time at
the default evaluation interval (``train.eval_every: 100``). Each case is a full
``run_experiment`` (MLflow logging to a throw-away SQLite store included, as a user's run
would), measures on (``analysis.metrics`` omitted: the learner's defaults) and off
(``analysis.metrics: []``), interleaved on/off/on/off so that load from other processes on a
shared machine hits both alike; the table reports the median of each.

    python bench/measures.py                   # mlp + transformer, p=97, 1000 steps
    python bench/measures.py --steps 300 --repeats 1 --cases mlp
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from grokspec.loading import validate_data
from grokspec.metrics.spec import resolve_measures
from grokspec.run import run_experiment

CASES: dict[str, dict[str, Any]] = {
    # specs/quickstart.yaml's model (one-hot quadratic MLP, width 512, 150k parameters).
    "mlp": {"kind": "mlp", "depth": 1, "width": 512, "activation": "quadratic"},
    # Nanda et al.'s one-layer transformer (d_model 128, 4 heads, d_mlp 512).
    "transformer": {"kind": "transformer", "d_model": 128, "heads": 4, "d_mlp": 512},
    # A deeper MLP: feature rank on 4 layers.
    "mlp-depth4": {"kind": "mlp", "depth": 4, "width": 256, "activation": "relu"},
}


def spec(case: str, p: int, steps: int, metrics: list[str] | None, uri: str) -> Any:
    return validate_data(
        {
            "name": f"bench-{case}",
            "dataset": {"kind": "modular", "op": "x+y", "p": p, "train_fraction": 0.3},
            "learner": CASES[case],
            "train": {"optimizer": {"kind": "adamw", "lr": 1e-3}, "steps": steps},
            "analysis": {"metrics": metrics},
            "tracking": {"experiment": "bench-measures", "uri": uri},
        }
    )


def timed_run(experiment: Any) -> float:
    t = time.perf_counter()
    result = run_experiment(experiment, device="cpu")
    assert result.status == "FINISHED", result.reason
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", nargs="+", default=["mlp", "transformer"], choices=list(CASES))
    ap.add_argument("--p", type=int, default=97)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        timed_run(spec(args.cases[0], 11, 10, [], uri))  # create the store, warm imports
        for case in args.cases:
            on_spec = spec(case, args.p, args.steps, None, uri)
            off_spec = spec(case, args.p, args.steps, [], uri)
            on, off = [], []
            for _ in range(args.repeats):
                on.append(timed_run(on_spec))
                off.append(timed_run(off_spec))
            t_on, t_off = statistics.median(on), statistics.median(off)
            chosen = resolve_measures(on_spec.analysis, on_spec.learner, on_spec.dataset)
            rows.append((case, ",".join(chosen), t_off, t_on, t_on / t_off))
    print(
        f"\np={args.p}, {args.steps} steps, eval_every=100 (default), "
        f"{args.repeats} repeat(s), {args.threads} thread(s); median wall seconds"
    )
    print(f"{'case':<12} {'off (s)':>8} {'on (s)':>8} {'on/off':>7}  default measures")
    for case, chosen, t_off, t_on, ratio in rows:
        print(f"{case:<12} {t_off:>8.1f} {t_on:>8.1f} {ratio:>7.3f}  {chosen}")


if __name__ == "__main__":
    main()
