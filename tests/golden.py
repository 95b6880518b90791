"""Golden metric histories: recorded before the one-loop redesign, compared after it.

``python -m tests.golden`` rewrites ``tests/fixtures/golden_histories.json`` (only do that
when a change of numbers is intended and explained); ``tests/test_golden.py`` re-runs the
same specs and compares. Only the uniform core metrics are recorded (no progress measures),
so analysis changes cannot move them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURE = Path(__file__).parent / "fixtures" / "golden_histories.json"
CORE = ["train/loss", "train/acc", "test/loss", "test/acc", "weights/l2_norm"]

_MLP = {
    "name": "golden-mlp",
    "seed": 0,
    "dataset": {"kind": "modular", "op": "x+y", "p": 31, "train_fraction": 0.5},
    "learner": {"kind": "mlp", "depth": 1, "width": 128, "activation": "quadratic"},
    "train": {
        "optimizer": {"kind": "adamw", "lr": 3e-3, "weight_decay": 1.0},
        "steps": 300,
        "eval_every": 50,
    },
    "analysis": {"metrics": []},
    "tracking": {"experiment": "golden"},
}

#: name -> (spec data, seeds run as one vectorized batch or None for a plain run)
CASES: dict[str, tuple[dict[str, Any], list[int] | None]] = {
    "quickstart_p31": (_MLP, None),
    "transformer": (
        {
            **_MLP,
            "name": "golden-transformer",
            "dataset": {"kind": "modular", "op": "x+y", "p": 13, "train_fraction": 0.5},
            "learner": {"kind": "transformer", "layers": 1, "d_model": 32, "heads": 2,
                        "d_mlp": 64},
            "train": {"optimizer": {"kind": "adamw", "lr": 1e-3, "weight_decay": 1.0},
                      "steps": 60, "eval_every": 20, "batch_size": 32},
        },
        None,
    ),
    "gp": (
        {
            "name": "golden-gp",
            "seed": 0,
            "dataset": {"kind": "parity", "n_bits": 8, "k": 2, "train_size": 40, "n_examples": 104},

            "learner": {"kind": "gp"},
            "train": {"optimizer": {"kind": "adam", "lr": 0.05, "weight_decay": 0.0},
                      "steps": 30, "eval_every": 10},
            "analysis": {"metrics": []},
            "tracking": {"experiment": "golden"},
        },
        None,
    ),
    "vectorized_2_seeds": (
        {**_MLP, "name": "golden-vec", "train": {**_MLP["train"], "batch_size": 64}},
        [0, 1],
    ),
    "grokfast": (
        {**_MLP, "name": "golden-grokfast",
         "train": {**_MLP["train"], "grokfast": {"filter": "ema", "alpha": 0.98, "lamb": 2.0}}},
        None,
    ),
}

def run_case(name: str) -> list[dict[str, list[list[float]]]]:
    """Run one case on CPU with one thread; per seed, metric -> [[step, value], ...]."""
    import torch
    from mlflow import MlflowClient

    from tests.golden_runner import run_plain, run_vectorized

    torch.set_num_threads(1)
    data, seeds = CASES[name]
    run_ids = run_plain(data) if seeds is None else run_vectorized(data, seeds)
    client = MlflowClient()
    out = []
    for run_id in run_ids:
        out.append({
            m: [[h.step, h.value] for h in client.get_metric_history(run_id, m)]
            for m in CORE
        })
    return out

def main() -> None:
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp}/mlflow.db"
        result = {name: run_case(name) for name in CASES}
    FIXTURE.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {FIXTURE}")

if __name__ == "__main__":
    main()
