"""How many metric keys (= charts in MLflow's chart view) one run of each learner has, with
``analysis.diagnostics: summary`` (the default) and ``full``.

Runs the variants of the two cross-model specs for a few steps (default progress measures
on) into a temporary SQLite store and counts each run's metric keys, read back through the
run store. The ``grok/*`` summary keys depend on which events a run reached in its few
steps (a longer run adds a few); the rest does not depend on the length.

Usage: python bench/metric_keys.py [--steps 20]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPECS = {"cross_model_parity.yaml": ["dataset.n_examples=400", "dataset.train_size=200"],
         "cross_model_modadd.yaml": []}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    import torch

    from grokspec.sweep.expand import load_sweep
    from grokspec.sweep.launch import run_sweep
    from grokspec.tracking.store import RunStore

    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        uri = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        for spec, extra in SPECS.items():
            counts: dict[str, dict[str, int]] = {}
            for mode in ("summary", "full"):
                sweep0 = load_sweep(ROOT / "specs" / spec, [f"tracking.uri={uri}"])
                over = [f"tracking.uri={uri}", f"tracking.experiment=keys-{mode}",
                        f"analysis.diagnostics={mode}", f"train.steps={args.steps}",
                        "train.eval_every=10", *extra]
                for v in sweep0.spec.variants:
                    over += [f"sweep.variants.{v}.train.steps={args.steps}",
                             f"sweep.variants.{v}.train.eval_every=10"]
                sweep = load_sweep(ROOT / "specs" / spec, over)
                result = run_sweep(sweep, device="cpu", echo=lambda _: None)
                store = RunStore(uri)
                for run in store.children(result.parent_run_id):
                    name = f"{run.info.run_name} ({run.data.tags['grokspec.learner']})"
                    counts.setdefault(name, {})[mode] = len(run.data.metrics)
                parent = store.run(result.parent_run_id)
                counts.setdefault("(parent run)", {})[mode] = len(parent.data.metrics)
            rows += [(spec, name, c["summary"], c["full"]) for name, c in counts.items()]
    print("| spec | run (learner) | metric keys, summary (default) | metric keys, full |")
    print("|---|---|---|---|")
    for spec, name, summary, full in rows:
        print(f"| {spec} | {name} | {summary} | {full} |")


if __name__ == "__main__":
    main()
