"""Cost of the default progress measures: the same run with measures on vs off.

The budget (issue 14): the measures a run gets by default cost at most 5% of its CPU time at
``train.eval_every: 100`` and at most 10% at 25. Each case is a full ``run_experiment`` (MLflow
logging to a throw-away SQLite store included, as a user's run would), measures on
(``analysis.metrics`` omitted: the learner's defaults, with their default
``analysis.intervals``) and off (``analysis.metrics: []``), interleaved on/off/on/off, at
each ``--eval-every``. The measures read the evaluation's own forward pass
(grokspec.metrics.capture), so their cost is what they add to it.

Three numbers per case, because on a shared machine wall time is noisy:

- ``cpu on/off``: process CPU time with measures on over off (median over repeats; with one
  torch thread this is the wall time an idle machine would see);
- ``wall on/off``: the same for wall time;
- ``share``: time spent *inside* the measures (timed around each call, in the "on" run)
  over the rest of that run: the overhead measured within one process under one load, the
  most robust of the three. The per-measure split is printed below the table.

    python bench/measures.py              # mlp + transformer, p=97, 1000 steps, eval 100 and 25
    python bench/measures.py --steps 300 --repeats 1 --cases mlp --eval-every 25
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch

import grokspec.run
from grokspec.metrics.measures import MeasureList, build_measures
from grokspec.metrics.spec import resolve_measures
from grokspec.run import run_experiment
from grokspec.spec.loading import validate_data

#: seconds spent inside each measure during the current run (filled by the timing wrapper)
SPENT: dict[str, float] = defaultdict(float)


def _timed(fn: Any, name: str) -> Any:
    def wrapped(*args: Any) -> Any:
        t = time.perf_counter()
        try:
            return fn(*args)
        finally:
            SPENT[name] += time.perf_counter() - t

    return wrapped


def timed_build_measures(experiment: Any, dataset: Any, device: Any) -> Any:
    """build_measures, with every measure and monitor timed into SPENT."""
    measures, monitors = build_measures(experiment, dataset, device)
    names = [m for m in resolve_measures(experiment.analysis, experiment.learner,
                                         experiment.dataset) if m != "early_warning"]
    timed = [_timed(m, n) for m, n in zip(measures, names, strict=True)]
    return (
        MeasureList(timed, measures.capture),  # keep the capture: the loop records through it
        [_timed(m, "early_warning") for m in monitors],
    )


grokspec.run.build_measures = timed_build_measures  # type: ignore[assignment]

CASES: dict[str, dict[str, Any]] = {
    # specs/quickstart.yaml's model (one-hot quadratic MLP, width 512, 150k parameters).
    "mlp": {"kind": "mlp", "depth": 1, "width": 512, "activation": "quadratic"},
    # Nanda et al.'s one-layer transformer (d_model 128, 4 heads, d_mlp 512).
    "transformer": {"kind": "transformer", "d_model": 128, "heads": 4, "d_mlp": 512},
    # A deeper MLP: feature rank on 4 layers.
    "mlp-depth4": {"kind": "mlp", "depth": 4, "width": 256, "activation": "relu"},
}


def spec(case: str, p: int, steps: int, metrics: list[str] | None, uri: str,
         eval_every: int = 100) -> Any:
    return validate_data(
        {
            "name": f"bench-{case}",
            "dataset": {"kind": "modular", "op": "x+y", "p": p, "train_fraction": 0.3},
            "learner": CASES[case],
            "train": {"optimizer": {"kind": "adamw", "lr": 1e-3}, "steps": steps,
                      "eval_every": eval_every},
            "analysis": {"metrics": metrics},
            "tracking": {"experiment": "bench-measures", "uri": uri},
        }
    )


def timed_run(experiment: Any) -> tuple[float, float, float]:
    """(wall seconds, process CPU seconds, seconds inside measures) of one full run."""
    SPENT.clear()
    w, c = time.perf_counter(), time.process_time()
    result = run_experiment(experiment, device="cpu")
    assert result.status == "FINISHED", result.reason
    return time.perf_counter() - w, time.process_time() - c, sum(SPENT.values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", nargs="+", default=["mlp", "transformer"], choices=list(CASES))
    ap.add_argument("--p", type=int, default=97)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--eval-every", type=int, nargs="+", default=[100, 25])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows, splits = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        timed_run(spec(args.cases[0], 11, 10, [], uri))  # create the store, warm imports
        for case, every in ((c, e) for c in args.cases for e in args.eval_every):
            on_spec = spec(case, args.p, args.steps, None, uri, every)
            off_spec = spec(case, args.p, args.steps, [], uri, every)
            on, off, shares = [], [], []
            for _ in range(args.repeats):
                on.append(timed_run(on_spec))
                splits[f"{case}@{every}"] = dict(SPENT)
                shares.append(on[-1][2] / (on[-1][0] - on[-1][2]))
                off.append(timed_run(off_spec))
            med = lambda runs, i: statistics.median(r[i] for r in runs)  # noqa: E731
            chosen = resolve_measures(on_spec.analysis, on_spec.learner, on_spec.dataset)
            rows.append((f"{case}@{every}", med(off, 0), med(on, 0), med(off, 1), med(on, 1),
                         statistics.median(shares), ",".join(chosen)))
    print(
        f"\np={args.p}, {args.steps} steps, case@eval_every, "
        f"{args.repeats} repeat(s), {args.threads} torch thread(s); medians; shared machine: noisy"
    )
    print(f"{'case':<16} {'wall off':>8} {'wall on':>8} {'wall on/off':>11} {'cpu off':>8} "
          f"{'cpu on':>7} {'cpu on/off':>10} {'share':>6}  default measures")
    for case, w_off, w_on, c_off, c_on, share, chosen in rows:
        print(f"{case:<16} {w_off:>8.1f} {w_on:>8.1f} {w_on / w_off:>11.3f} {c_off:>8.1f} "
              f"{c_on:>7.1f} {c_on / c_off:>10.3f} {share:>6.1%}  {chosen}")
    print("\nseconds inside each measure (last 'on' run):")
    for case, split in splits.items():
        print(f"  {case}: " + ", ".join(f"{k} {v:.2f}" for k, v in split.items()))


if __name__ == "__main__":
    main()
