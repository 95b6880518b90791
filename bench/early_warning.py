"""How early, and how falsely, the early-warning signal fires (grokspec.metrics.warning).

Trains each case (no MLflow; only the ``early_warning`` monitor switched on, so the runs are
as fast as they can be) and prints, per run: the step the warning first fired, the step test
accuracy reached the fit threshold, the lead (fit - warning). Then the totals over the
grokking runs (lead time, misses) and the runs that never grokked within their budget
(false alarms = the warning fired anyway).

Cases are the shipped specs that grok on a CPU in minutes, plus memorisation controls: the
same recipes with weight decay off or too little data, which fit the training set and do not
generalise within their step budget.

    python bench/early_warning.py               # all cases but the long transformer
    python bench/early_warning.py --long        # + specs/modadd_transformer.yaml (~10k steps)
    python bench/early_warning.py --only quickstart quickstart-wd0
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from grokspec.metrics import names
from grokspec.metrics.events import grok_events
from grokspec.metrics.warning import evaluate_warning, first_warning_step
from grokspec.spec.loading import load_spec
from grokspec.training.loop import fit as fit_run

SPECS = Path(__file__).resolve().parent.parent / "specs"
ONLY_WARNING = ["analysis.metrics=[early_warning]", "train.stop=null"]

#: name -> (spec file, --set overrides, expected to grok within its budget?)
CASES: dict[str, tuple[str, list[str]]] = {
    "quickstart": ("quickstart.yaml", ["train.steps=3000"]),
    "quickstart-p59": ("quickstart.yaml", ["dataset.p=59", "train.steps=3000"]),
    "miller-gp-parity": ("miller_gp_parity.yaml", []),
    "miller-gp-sine": ("miller_gp_sine.yaml", []),
    "bayesian-parity": ("bayesian_parity.yaml", []),
    "fan-deep-mlp": ("fan_deep_mlp.yaml", []),
    "linear-teacher": ("linear_teacher.yaml", []),
    # memorisation controls
    "quickstart-wd0": ("quickstart.yaml", ["train.optimizer.weight_decay=0", "train.steps=4000"]),
    "quickstart-frac0.15": ("quickstart.yaml", ["dataset.train_fraction=0.15",
                                                "train.steps=6000"]),
    "quickstart-p31-frac0.3": ("quickstart.yaml", ["dataset.p=31", "learner.width=256",
                                                   "train.steps=6000"]),
    "quickstart-p31-frac0.2": ("quickstart.yaml", ["dataset.p=31", "dataset.train_fraction=0.2",
                                                   "learner.width=256", "train.steps=6000"]),
    "quickstart-p31-wd0": ("quickstart.yaml", ["dataset.p=31", "dataset.train_fraction=0.5",
                                               "learner.width=256",
                                               "train.optimizer.weight_decay=0",
                                               "train.steps=4000"]),
}
_TF59 = ["dataset.p=59", "dataset.train_fraction=0.5", "learner.d_model=64", "learner.d_mlp=256",
         "train.eval_every=50", "train.optimizer.warmup_steps=0"]
LONG = {
    "modadd-transformer": ("modadd_transformer.yaml", ["train.steps=20000"]),
    # the slow test's run (groks at ~4150), and the same at lr 1e-3 (no grok within 6000)
    "transformer-p59-lr3e-3": ("modadd_transformer.yaml",
                               [*_TF59, "train.optimizer.lr=3e-3", "train.steps=4300"]),
    "transformer-p59-lr1e-3": ("modadd_transformer.yaml",
                               [*_TF59, "train.optimizer.lr=1e-3", "train.steps=6000"]),
}


def run_case(spec: str, overrides: list[str]) -> tuple[int | None, int | None, int, float]:
    exp = load_spec(SPECS / spec, [*overrides, *ONLY_WARNING])
    t = time.perf_counter()
    member = fit_run(exp, "cpu")
    h = [r for r in member.history if names.WARNING_SCORE in r]
    steps = [int(r["step"]) for r in h]
    warn = first_warning_step(steps, [r[names.WARNING_SCORE] for r in h])
    fit = grok_events(
        steps, [r[names.TRAIN_ACC] for r in h], [r[names.TEST_ACC] for r in h],
        exp.train.fit_threshold,
    )["test_fit_step"]
    return warn, fit, steps[-1] if steps else 0, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--long", action="store_true", help="include the transformers (long)")
    ap.add_argument("--only", nargs="+", help="run only these cases")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cases = {**CASES, **(LONG if args.long else {})}
    if args.only:
        cases = {k: v for k, v in cases.items() if k in args.only}
    results = {}
    print(f"{'case':<24} {'warn step':>9} {'fit step':>9} {'lead':>7} {'steps':>6} {'secs':>6}")
    for name, (spec, overrides) in cases.items():
        warn, fit, last, secs = run_case(spec, overrides)
        results[name] = (warn, fit)
        lead = fit - warn if warn is not None and fit is not None else None
        fmt = lambda v: "-" if v is None else str(v)  # noqa: E731
        print(f"{name:<24} {fmt(warn):>9} {fmt(fit):>9} {fmt(lead):>7} {last:>6} {secs:>6.0f}",
              flush=True)
    print(evaluate_warning(results))


if __name__ == "__main__":
    main()
