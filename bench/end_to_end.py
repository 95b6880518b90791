"""The whole ``grokspec run specs/quickstart.yaml`` against a hand-written script, to grok.

Both are separate processes timed from interpreter start to exit (imports, data, training,
evaluations, MLflow logging and teardown included): process CPU time from
``resource.getrusage(RUSAGE_CHILDREN)`` around each, runs interleaved. The baseline is
bench/hand_mlp.py, a one-hot ``nn.Linear`` MLP script on the same split (saved from grokspec's
dataset once, outside the timing) with the same initial weights, stop rule (test accuracy
>= 0.99 held for 10 evaluations, every 25 steps) and one torch thread, so both train the
same number of steps. grokspec logs to a throw-away SQLite store created before the timing
(a user's first run pays for creating it once).

    python bench/end_to_end.py [--repeats 3] [--spec specs/quickstart.yaml]

Target (issue 14): grokspec's CPU to grok <= 0.8x the hand script's.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child_cpu(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    """(CPU seconds of the child process tree, its stdout)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stderr[-2000:]}")
    used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return used, out.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--spec", default="specs/quickstart.yaml")
    ap.add_argument("--grokspec-path", default=None,
                    help="PYTHONPATH for the grokspec process only (e.g. an exported older "
                    "tree, for a before/after table)")
    args = ap.parse_args()
    import torch

    from grokspec.spec.loading import load_spec

    exp = load_spec(ROOT / args.spec)
    data = exp.dataset.build(exp.seed)
    # What the `grokspec` console script runs, so --grokspec-path can point at another tree.
    grokspec_exe = [sys.executable, "-c",
                    "import sys; from grokspec.cli.main import main; sys.exit(main())"]
    with tempfile.TemporaryDirectory() as tmp:
        split = Path(tmp) / "split.pt"
        torch.save({k: getattr(data, k) for k in ("x_train", "y_train", "x_test", "y_test")},
                   split)
        uri = f"sqlite:///{tmp}/mlflow.db"
        env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
        ours_env = dict(env)
        if args.grokspec_path:
            ours_env["PYTHONPATH"] = args.grokspec_path
        ours_cmd = [*grokspec_exe, "run", str(ROOT / args.spec), "--set", f"tracking.uri={uri}"]
        stop = exp.train.stop
        hand_cmd = [sys.executable, str(ROOT / "bench/hand_mlp.py"), "--data", str(split),
                    "--p", str(exp.dataset.p), "--width", str(exp.learner.width),
                    "--lr", str(exp.train.optimizer.lr), "--steps", str(exp.train.steps),
                    "--eval-every", str(exp.train.eval_every),
                    "--threshold", str(stop.test_acc if stop else 2.0),
                    "--patience", str(stop.patience_evals if stop else 1)]
        child_cpu([*ours_cmd, "--set", "train.steps=1"], ours_env)  # create + migrate the store
        ours, hand = [], []
        ours_out = hand_out = ""
        for _ in range(args.repeats):
            t, ours_out = child_cpu(ours_cmd, ours_env)
            ours.append(t)
            t, hand_out = child_cpu(hand_cmd, env)
            hand.append(t)
    steps = re.search(r"steps run\s+(\d+)", ours_out)
    fit = re.search(r"test fit step\s+(\S+)", ours_out)
    print(f"{args.spec}: process CPU seconds to grok (startup and teardown included), "
          f"median of {args.repeats}, interleaved; shared machine: noisy")
    print(f"  {'process':<44}{'CPU s':>8}{'vs hand':>9}   steps / test fit step")
    h = statistics.median(hand)
    print(f"  {'hand-written one-hot nn.Linear script':<44}{h:>8.1f}{1.0:>8.2f}x   "
          f"{hand_out.split()[1]} / {hand_out.split()[3]}")
    o = statistics.median(ours)
    print(f"  {'grokspec run ' + args.spec:<44}{o:>8.1f}{o / h:>8.2f}x   "
          f"{steps.group(1) if steps else '?'} / {fit.group(1) if fit else '?'}")
    print(f"  all runs: hand {[round(x, 1) for x in hand]}, grokspec {[round(x, 1) for x in ours]}")


if __name__ == "__main__":
    main()
